/* The log writer's side of campusgate.observe._rowpack: chunks read back into
 * rows (unpack) or straight into the record's columns (finish). */
#include "_rowpack.h"

/* ---- reading chunks ------------------------------------------------------------ */

typedef struct {
    const unsigned char *p, *end;
    PyObject **table;                /* the chunk's strings, in order */
    Py_ssize_t strings, room;
    PyObject *names;                 /* canonical strings across chunks (a dict), or NULL */
    PyObject *last[NFIELDS];         /* each field's int or str of the row before */
    long long last_n[NFIELDS];       /* (an int's value) */
} Reader;

/* The most strings `names` holds: past it, it starts again (client addresses
 * are not kept in it, but a flood of new hosts or credentials could be many). */
#define NAMES_MAX 4096

static void
reader_clear(Reader *r)
{
    for (Py_ssize_t i = 0; i < r->strings; i++)
        Py_DECREF(r->table[i]);
    PyMem_Free(r->table);
    r->table = NULL;
    r->strings = r->room = 0;
    for (int i = 0; i < NFIELDS; i++)
        Py_CLEAR(r->last[i]);
}

/* The row before's object of `field` when it was this int, else a new one (which
 * the next row may take): a worker's id, a response's size, a path repeat from
 * row to row, and each would otherwise be an object per record. */
static PyObject *
int_of(Reader *r, int field, long long n)
{
    PyObject *last = r->last[field];
    if (last != NULL && r->last_n[field] == n && PyLong_CheckExact(last))
        return Py_NewRef(last);
    PyObject *v = PyLong_FromLongLong(n);
    if (v != NULL) {
        Py_XSETREF(r->last[field], Py_NewRef(v));
        r->last_n[field] = n;
    }
    return v;
}

static int
malformed(const char *what)
{
    PyErr_Format(PyExc_ValueError, "a malformed chunk of rows: %s", what);
    return -1;
}

/* Start reading `chunk` (a bytes object): its row count, or -1. */
static Py_ssize_t
reader_open(Reader *r, PyObject *chunk)
{
    if (!PyBytes_Check(chunk)) {
        PyErr_SetString(PyExc_TypeError, "a chunk of rows is bytes");
        return -1;
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(chunk);
    Py_ssize_t len = PyBytes_GET_SIZE(chunk);
    if (len < HEADER || memcmp(buf, MAGIC, 4) != 0 || buf[4] != VERSION
            || buf[5] != NFIELDS)
        return malformed("not a chunk of this version");
    uint32_t count;
    memcpy(&count, buf + 6, 4);
    if (count > (len - HEADER) / NFIELDS)  /* every value takes a byte at least */
        return malformed("more rows than the chunk could hold");
    r->p = buf + HEADER;
    r->end = buf + len;
    return count;
}

/* A value as read: numbers and bytes stay C values unless an object is wanted;
 * strings (which join the string table) and marshalled values are objects. */
typedef struct {
    unsigned char tag;
    double d;                        /* FLOAT */
    long long n;                     /* INT */
    const char *data;                /* BYTES */
    uint32_t size;
    PyObject *obj;                   /* a new reference, or NULL */
} Cell;

/* A str of `size` ASCII bytes (ValueError when one is not ASCII). */
static PyObject *
ascii_str(const char *data, uint32_t size)
{
    PyObject *v = PyUnicode_New(size, 127);
    if (v == NULL || size == 0)
        return v;
    memcpy(PyUnicode_1BYTE_DATA(v), data, size);
    uint64_t high = 0, word;
    uint32_t i = 0;
    for (; i + 8 <= size; i += 8) {
        memcpy(&word, data + i, 8);
        high |= word;
    }
    for (; i < size; i++)
        high |= (unsigned char)data[i];
    if (high & 0x8080808080808080ULL) {
        Py_DECREF(v);
        malformed("a string that is not ASCII");
        return NULL;
    }
    return v;
}

/* read_cell's values with a length (strings, bytes, marshalled values), out of
 * line: the cases it inlines are most of a row's. */
static int
read_sized(Reader *r, Cell *c, int field, int want, int canon, unsigned char tag,
           uint32_t size)
{
    if ((size_t)(r->end - r->p) < size)
        return malformed("a value cut short");
    const char *data = c->data = (const char *)r->p;
    c->size = size;
    r->p += size;
    if (tag == TAG_BYTES) {
        if (want && (c->obj = PyBytes_FromStringAndSize(data, size)) == NULL)
            return -1;
        return 0;
    }
    if (tag == TAG_MARSHAL)
        return (c->obj = PyMarshal_ReadObjectFromString(data, size)) == NULL ? -1 : 0;
    PyObject *last = r->last[field];
    if (last != NULL && PyUnicode_CheckExact(last) && PyUnicode_IS_COMPACT_ASCII(last)
            && PyUnicode_GET_LENGTH(last) == size
            && memcmp(PyUnicode_1BYTE_DATA(last), data, size) == 0)
        c->obj = Py_NewRef(last);  /* the row before's (canonical when it was) */
    else if ((c->obj = ascii_str(data, size)) == NULL)
        return -1;
    if (canon && r->names != NULL && c->obj != last) {  /* one object per name */
        if (PyDict_GET_SIZE(r->names) >= NAMES_MAX)
            PyDict_Clear(r->names);
        PyObject *known = PyDict_SetDefault(r->names, c->obj, c->obj);
        if (known == NULL) {
            Py_CLEAR(c->obj);
            return -1;
        }
        if (known != c->obj)
            Py_SETREF(c->obj, Py_NewRef(known));
    }
    if (c->obj != last)
        Py_XSETREF(r->last[field], Py_NewRef(c->obj));
    if (r->strings == r->room) {
        Py_ssize_t room = r->room ? r->room * 2 : 64;
        PyObject **table = PyMem_Realloc(r->table, room * sizeof(PyObject *));
        if (table == NULL) {
            Py_CLEAR(c->obj);
            PyErr_NoMemory();
            return -1;
        }
        r->table = table;
        r->room = room;
    }
    r->table[r->strings++] = Py_NewRef(c->obj);
    return 0;
}

/* The next value (of `field`) into `c` (an object in c->obj when `want`); -1 on
 * error, with nothing to release.  Inlined in the row's loop: a call per value
 * cost more than most values' work (about 540 instructions a row). */
static inline __attribute__((always_inline)) int
read_cell(Reader *r, Cell *c, int field, int want, int canon)
{
    c->obj = NULL;
    if (r->p >= r->end)
        return malformed("a row cut short");
    unsigned char tag = c->tag = *r->p++;
    if (tag == TAG_NONE) {
        if (want)
            c->obj = Py_NewRef(Py_None);
        return 0;
    }
    if (tag == TAG_FLOAT || tag == TAG_INT) {
        if (r->end - r->p < 8)
            return malformed("a number cut short");
        if (tag == TAG_FLOAT) {
            memcpy(&c->d, r->p, 8);
            if (want && (c->obj = PyFloat_FromDouble(c->d)) == NULL)
                return -1;
        }
        else {
            memcpy(&c->n, r->p, 8);
            if (want && (c->obj = int_of(r, field, c->n)) == NULL)
                return -1;
        }
        r->p += 8;
        return 0;
    }
    if (tag > TAG_MARSHAL)
        return malformed("an unknown tag");
    uint32_t size;
    if (r->end - r->p < 4)
        return malformed("a length cut short");
    memcpy(&size, r->p, 4);
    r->p += 4;
    if (tag == TAG_REF) {
        if (size >= r->strings)
            return malformed("a reference to no string");
        c->obj = Py_NewRef(r->table[size]);
        return 0;
    }
    return read_sized(r, c, field, want, canon, tag, size);
}

/* The cell's value as an object (borrowed from the cell, made on first use). */
static PyObject *
cell_object(Cell *c)
{
    if (c->obj != NULL)
        return c->obj;
    switch (c->tag) {
    case TAG_FLOAT:
        return c->obj = PyFloat_FromDouble(c->d);
    case TAG_INT:
        return c->obj = PyLong_FromLongLong(c->n);
    case TAG_BYTES:
        return c->obj = PyBytes_FromStringAndSize(c->data, c->size);
    default:
        return c->obj = Py_NewRef(Py_None);
    }
}

static void
cells_clear(Cell *cells)
{
    for (int i = 0; i < NFIELDS; i++)
        Py_CLEAR(cells[i].obj);
}

/* Read one row's NFIELDS values into `cells` (objects where `want[i]`, or all when
 * `want` is NULL); -1 on error, with nothing left to release. */
static int
read_row(Reader *r, Cell *cells, const char *want, const char *canon)
{
    for (int i = 0; i < NFIELDS; i++) {
        if (read_cell(r, &cells[i], i, want == NULL || want[i], canon != NULL && canon[i]) < 0) {
            while (i--)
                Py_CLEAR(cells[i].obj);
            return -1;
        }
    }
    return 0;
}

PyObject *
unpack(PyObject *module, PyObject *chunk)
{
    Reader r = {0};
    Py_ssize_t count = reader_open(&r, chunk);
    if (count < 0)
        return NULL;
    PyObject *rows = PyList_New(count);
    Cell cells[NFIELDS];
    if (rows == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (read_row(&r, cells, NULL, NULL) < 0)
            goto fail;
        PyObject *row = PyTuple_New(NFIELDS);
        if (row == NULL) {
            cells_clear(cells);
            goto fail;
        }
        for (int i = 0; i < NFIELDS; i++)
            PyTuple_SET_ITEM(row, i, cells[i].obj);  /* the row takes them */
        PyList_SET_ITEM(rows, k, row);
    }
    if (r.p != r.end) {
        malformed("bytes after the last row");
        goto fail;
    }
    reader_clear(&r);
    return rows;
fail:
    Py_XDECREF(rows);
    reader_clear(&r);
    return NULL;
}

/* ---- finishing chunks into columns ---------------------------------------------- */

/* A row's values (Capture.row's order). */
enum {
    R_STARTED, R_ENDED, R_UP_STARTED, R_UP_ENDED, R_REQUEST_ID, R_TARGET, R_CREDENTIAL,
    R_CLIENT_IP, R_METHOD, R_HOST, R_PATH, R_STATUS, R_BYTES_IN, R_BYTES_OUT, R_RETRIES,
    R_RATE_LIMIT, R_ERROR, R_OFFSET, R_LISTENER, R_WORKER, R_TRACE_ID, R_SPAN_ID,
    R_PARENT_ID, R_ROUTE, R_SERVICE, R_CONSUMER, R_HEAD, R_AGENT, R_AI, R_BODIES
};
/* The record's columns (observe/record.py FIELDS) worked out here; the rest (the
 * AI call's and the bodies' fields) are None, filled in by Python when a row has
 * them. */
enum {
    C_TIME, C_REQUEST_ID, C_TRACE_ID, C_SPAN_ID, C_PARENT_ID, C_LISTENER, C_WORKER,
    C_ROUTE, C_SERVICE, C_UPSTREAM, C_CONSUMER, C_CREDENTIAL, C_CLIENT_IP, C_METHOD,
    C_HOST, C_PATH, C_STATUS, C_BYTES_IN, C_BYTES_OUT, C_LATENCY, C_UP_LATENCY,
    C_OVERHEAD, C_RETRIES, C_RATE_LIMIT, C_ERROR, C_USER_AGENT, NCOMPUTED
};

static PyObject *UPSTREAM_STATUS, *INTERNAL, *FIVE_HUNDRED, *ZERO;

/* The row's values finish_row reads as C values only (the rest are objects). */
static const char WANTED[NFIELDS] = {
    [R_REQUEST_ID] = 1, [R_TARGET] = 1, [R_CREDENTIAL] = 1, [R_CLIENT_IP] = 1,
    [R_METHOD] = 1, [R_HOST] = 1, [R_PATH] = 1, [R_STATUS] = 1, [R_BYTES_OUT] = 1,
    [R_RETRIES] = 1, [R_RATE_LIMIT] = 1, [R_ERROR] = 1, [R_LISTENER] = 1, [R_WORKER] = 1,
    [R_TRACE_ID] = 1, [R_SPAN_ID] = 1, [R_PARENT_ID] = 1, [R_ROUTE] = 1, [R_SERVICE] = 1,
    [R_CONSUMER] = 1, [R_AI] = 1, [R_BODIES] = 1};

/* The row's names: strings that repeat from chunk to chunk (the chunk's string
 * table has them once each, but every chunk makes its own).  One object each
 * across batches lets the writer's stages find a batch's groups by identity
 * (`list.count`, the segment's tables) instead of comparing strings. */
static const char CANON[NFIELDS] = {
    [R_TARGET] = 1, [R_CREDENTIAL] = 1, [R_METHOD] = 1, [R_HOST] = 1, [R_RATE_LIMIT] = 1,
    [R_ERROR] = 1, [R_LISTENER] = 1, [R_ROUTE] = 1, [R_SERVICE] = 1, [R_CONSUMER] = 1};

/* A time stamp (or the clock offset) as a double, and whether it is set (Python's
 * truth of the value). */
static int
stamp(Cell *c, double *d, int *set)
{
    if (c->tag == TAG_FLOAT)
        *d = c->d;
    else if (c->tag == TAG_INT)
        *d = (double)c->n;
    else if (c->tag == TAG_NONE)
        *d = 0.0;
    else if (c->obj != NULL && (PyFloat_Check(c->obj) || PyLong_Check(c->obj))) {
        *d = PyFloat_AsDouble(c->obj);
        if (*d == -1.0 && PyErr_Occurred())
            return -1;
    }
    else {
        PyErr_SetString(PyExc_TypeError, "a time stamp that is not a number");
        return -1;
    }
    *set = *d != 0.0;  /* NaN is true, as in Python */
    return 0;
}

/* bytes in: the request head's size and its body's */
static PyObject *
bytes_in(Cell *head, Cell *body)
{
    long long sum;
    if (head->tag == TAG_INT && body->tag == TAG_INT
            && !__builtin_add_overflow(head->n, body->n, &sum))
        return PyLong_FromLongLong(sum);
    PyObject *a = cell_object(head), *b = cell_object(body);
    return a == NULL || b == NULL ? NULL : PyNumber_Add(a, b);
}

/* `c` compared with `than` (an int): c->n when it is one, else Python's compare. */
static int
compare(Cell *c, long long than, PyObject *than_object, int op)
{
    if (c->tag == TAG_INT)
        return op == Py_GE ? c->n >= than : c->n < than;
    return PyObject_RichCompareBool(c->obj, than_object, op);
}

/* The record's computed values of one row (new references in `out`, NCOMPUTED of
 * them), as capture.finish_rows works them out; -1 with nothing in `out`. */
static int
finish_row(Cell *v, double now, PyObject **out)
{
    double started, ended, up_started, up_ended, offset;
    int set, ended_set, up_started_set, up_ended_set;
    if (v[R_STARTED].tag == TAG_NONE) {
        PyErr_SetString(PyExc_TypeError, "a row without its start");
        return -1;
    }
    if (stamp(&v[R_STARTED], &started, &set) < 0 || stamp(&v[R_ENDED], &ended, &ended_set) < 0
            || stamp(&v[R_UP_STARTED], &up_started, &up_started_set) < 0
            || stamp(&v[R_UP_ENDED], &up_ended, &up_ended_set) < 0
            || stamp(&v[R_OFFSET], &offset, &set) < 0)
        return -1;
    if (!ended_set)  /* still running (a stream cut at shutdown): ended now */
        ended = now;
    double latency = (ended - started) * 1000.0, upstream = 0.0, overhead = latency;
    if (up_started_set) {
        upstream = ((up_ended_set ? up_ended : ended) - up_started) * 1000.0;
        if (upstream < 0.0)
            upstream = 0.0;
        overhead = latency - upstream;
    }
    /* a 5xx with no class yet: the upstream's own, or the gateway's */
    PyObject *error = v[R_ERROR].obj;
    if (error == Py_None) {
        int failed = compare(&v[R_STATUS], 500, FIVE_HUNDRED, Py_GE);
        if (failed < 0)
            return -1;
        if (failed)
            error = up_ended_set ? UPSTREAM_STATUS : INTERNAL;
    }
    int negative = compare(&v[R_BYTES_OUT], 0, ZERO, Py_LT);
    if (negative < 0)
        return -1;
    Cell *agent = &v[R_AGENT];
    const char *agent_data = agent->data;
    Py_ssize_t agent_size = agent->size;
    if (agent->tag == TAG_MARSHAL && PyBytes_Check(agent->obj)) {
        agent_data = PyBytes_AS_STRING(agent->obj);
        agent_size = PyBytes_GET_SIZE(agent->obj);
    }
    else if (agent->tag != TAG_NONE && agent->tag != TAG_BYTES) {
        PyErr_SetString(PyExc_TypeError, "a user agent that is not bytes");
        return -1;
    }
    out[C_TIME] = PyFloat_FromDouble(started + offset);
    out[C_LATENCY] = PyFloat_FromDouble(latency);
    out[C_UP_LATENCY] = up_started_set ? PyFloat_FromDouble(upstream) : Py_NewRef(Py_None);
    out[C_OVERHEAD] = PyFloat_FromDouble(overhead);
    out[C_BYTES_IN] = bytes_in(&v[R_HEAD], &v[R_BYTES_IN]);
    out[C_BYTES_OUT] = Py_NewRef(negative ? ZERO : v[R_BYTES_OUT].obj);
    out[C_ERROR] = Py_NewRef(error);
    out[C_USER_AGENT] = agent->tag == TAG_NONE ? Py_NewRef(Py_None)
        : PyUnicode_DecodeLatin1(agent_data, agent_size, NULL);
    /* the values taken as they are */
    static const int TAKEN[][2] = {
        {C_REQUEST_ID, R_REQUEST_ID}, {C_TRACE_ID, R_TRACE_ID}, {C_SPAN_ID, R_SPAN_ID},
        {C_PARENT_ID, R_PARENT_ID}, {C_LISTENER, R_LISTENER}, {C_WORKER, R_WORKER},
        {C_ROUTE, R_ROUTE}, {C_SERVICE, R_SERVICE}, {C_UPSTREAM, R_TARGET},
        {C_CONSUMER, R_CONSUMER}, {C_CREDENTIAL, R_CREDENTIAL}, {C_CLIENT_IP, R_CLIENT_IP},
        {C_METHOD, R_METHOD}, {C_HOST, R_HOST}, {C_PATH, R_PATH}, {C_STATUS, R_STATUS},
        {C_RETRIES, R_RETRIES}, {C_RATE_LIMIT, R_RATE_LIMIT}};
    for (size_t i = 0; i < sizeof(TAKEN) / sizeof(TAKEN[0]); i++)
        out[TAKEN[i][0]] = Py_NewRef(v[TAKEN[i][1]].obj);
    for (int i = 0; i < NCOMPUTED; i++) {
        if (out[i] == NULL) {  /* an allocation failed, or bytes_in's addition */
            for (int j = 0; j < NCOMPUTED; j++)
                Py_CLEAR(out[j]);
            return -1;
        }
    }
    return 0;
}

/* finish(chunks, now) -> (columns, extras): the records of the chunks' rows as
 * NCOLUMNS columns, and (index, ai, bodies) of each row that carries an AI call or
 * captured bodies (Python fills those fields in). */
PyObject *
finish(PyObject *module, PyObject *args)
{
    PyObject *chunks, *seq = NULL, *columns[NCOMPUTED] = {NULL}, *nothing = NULL,
             *extras = NULL, *result = NULL, *names = Py_None;
    double now;
    if (!PyArg_ParseTuple(args, "Od|O", &chunks, &now, &names))
        return NULL;
    if (names != Py_None && !PyDict_CheckExact(names)) {
        PyErr_SetString(PyExc_TypeError, "names must be a dict or None");
        return NULL;
    }
    if ((seq = PySequence_Fast(chunks, "chunks must be a sequence")) == NULL)
        return NULL;
    Py_ssize_t nchunks = PySequence_Fast_GET_SIZE(seq), total = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        Reader r = {0};
        Py_ssize_t count = reader_open(&r, items[c]);
        if (count < 0)
            goto done;
        total += count;
    }
    for (int i = 0; i < NCOMPUTED; i++)
        if ((columns[i] = PyList_New(total)) == NULL)
            goto done;
    if ((extras = PyList_New(0)) == NULL || (nothing = PyTuple_New(total)) == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < total; k++)
        PyTuple_SET_ITEM(nothing, k, Py_NewRef(Py_None));
    Py_ssize_t k = 0;
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        Reader r = {0};
        r.names = names == Py_None ? NULL : names;
        Py_ssize_t count = reader_open(&r, items[c]);
        for (Py_ssize_t n = 0; n < count; n++, k++) {
            Cell cells[NFIELDS];
            PyObject *out[NCOMPUTED] = {NULL}, *ai, *bodies;
            if (read_row(&r, cells, WANTED, CANON) < 0) {
                reader_clear(&r);
                goto done;
            }
            int err = finish_row(cells, now, out);
            ai = cells[R_AI].obj;
            bodies = cells[R_BODIES].obj;
            if (!err && (ai != Py_None || bodies != Py_None)) {
                PyObject *extra = Py_BuildValue("(nOO)", k, ai, bodies);
                err = extra == NULL || PyList_Append(extras, extra) < 0;
                Py_XDECREF(extra);
            }
            cells_clear(cells);
            if (err) {
                for (int i = 0; i < NCOMPUTED; i++)
                    Py_XDECREF(out[i]);
                reader_clear(&r);
                goto done;
            }
            for (int i = 0; i < NCOMPUTED; i++)
                PyList_SET_ITEM(columns[i], k, out[i]);
        }
        int trailing = r.p != r.end;
        reader_clear(&r);
        if (trailing) {
            malformed("bytes after the last row");
            goto done;
        }
    }
    PyObject *all = PyList_New(NCOLUMNS);
    if (all == NULL)
        goto done;
    for (int i = 0; i < NCOLUMNS; i++)
        PyList_SET_ITEM(all, i, Py_NewRef(i < NCOMPUTED ? columns[i] : nothing));
    result = Py_BuildValue("(NO)", all, extras);
done:
    for (int i = 0; i < NCOMPUTED; i++)
        Py_XDECREF(columns[i]);
    Py_XDECREF(nothing);
    Py_XDECREF(extras);
    Py_DECREF(seq);
    return result;
}

int
read_init(void)
{
    if ((UPSTREAM_STATUS = PyUnicode_InternFromString("upstream_status")) == NULL
            || (INTERNAL = PyUnicode_InternFromString("internal")) == NULL
            || (FIVE_HUNDRED = PyLong_FromLong(500)) == NULL
            || (ZERO = PyLong_FromLong(0)) == NULL)
        return -1;
    return 0;
}
