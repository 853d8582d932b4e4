/* campusgate.observe._rowpack: access-record rows packed in C.
 *
 * The worker's log phase hands each finished RequestContext to Packer.record,
 * which writes the same 30 values Capture.row makes (observe/capture.py; a test
 * checks they stay the same) straight into a growing buffer: no tuple, no
 * marshal, nothing kept alive after the context goes.  Packer.cut hands the
 * buffer over as one chunk, which the shipper sends to the log writer as a
 * frame; unpack() there turns a chunk back into the rows marshal would have
 * given.  See docs/observability.md, "Rows packed in C".
 *
 * A chunk: MAGIC (4 bytes), version, field count, row count (u32), then the rows,
 * each value a tag byte and its payload (native byte order: both ends are on
 * the same machine):
 *   NONE; FLOAT 8 bytes; INT 8 bytes; STR u32 length + ASCII bytes (and it
 *   joins the chunk's string table); REF u32 index into that table; BYTES u32
 *   length + bytes; MARSHAL u32 length + marshal data (any other value).
 * A value marshal cannot write leaves its row out (counted in Packer.broken),
 * as the marshal path does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <math.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define VERSION 1
#define NFIELDS 30
#define HEADER 10
#define CACHE 64
#define AGENT_LIMIT 512
#define FIXED 9          /* the most a None, number or string reference takes */
#define MARSHAL_VERSION 4

static const char MAGIC[4] = {'\0', 'C', 'G', 'R'};

enum { TAG_NONE = 0, TAG_FLOAT, TAG_INT, TAG_STR, TAG_REF, TAG_BYTES, TAG_MARSHAL };

/* The context's slots the row reads, in this order. */
enum {
    S_STARTED, S_ENDED, S_UP_STARTED, S_UP_ENDED, S_REQUEST_ID, S_TARGET,
    S_CREDENTIAL, S_CLIENT_IP, S_METHOD, S_HOST, S_PATH, S_STATUS, S_BYTES_IN,
    S_BYTES_OUT, S_RETRIES, S_RATE_LIMIT, S_ERROR, S_TRACE, S_ROUTE, S_SERVICE,
    S_CONSUMER, S_QUERY, S_HEADERS, S_VARS, NSLOTS
};
static const char *SLOT_NAMES[NSLOTS] = {
    "started", "ended", "upstream_started", "upstream_ended", "request_id",
    "upstream_target", "credential", "client_ip", "method", "host", "path", "status",
    "bytes_in", "bytes_out", "retries", "rate_limit", "error", "trace", "route",
    "service", "consumer", "query", "headers", "vars"};
enum { TR_ID, TR_SPAN, TR_PARENT, NTRACE };
static const char *TRACE_NAMES[NTRACE] = {"trace_id", "span_id", "parent_id"};

typedef struct {
    PyObject *obj;   /* a strong reference while cached */
    uint32_t index;
} CacheEntry;

/* The name of a route, service or consumer object, remembered while the chunk
 * lasts: only for objects of a frozen dataclass (the snapshot's), whose name
 * cannot change; the entry holds both, so the address is not reused meanwhile. */
typedef struct {
    PyObject *obj, *name;
} NameEntry;
#define NAMES 16

typedef struct {
    PyObject_HEAD
    PyTypeObject *ctx_type;
    PyTypeObject *trace_type;
    Py_ssize_t offsets[NSLOTS];      /* -1: read by getattr */
    Py_ssize_t trace_offsets[NTRACE];
    PyObject *slot_names[NSLOTS];
    PyObject *trace_names[NTRACE];
    PyObject *name, *key_ai, *key_bodies;
    PyObject *offset, *listener, *worker;
    PyObject *on_full, *trace_of;
    Py_ssize_t chunk;                /* rows per chunk: then on_full() */
    char *buf;
    Py_ssize_t len, cap;
    Py_ssize_t count, broken;
    uint32_t strings;                /* the chunk's string table, so far */
    CacheEntry cache[CACHE];
    NameEntry names[NAMES];
    PyObject *frozen_types;          /* a dict: type -> whether names are cached */
} Packer;

/* ---- the buffer ---------------------------------------------------------- */

static int
reserve(Packer *self, Py_ssize_t more)
{
    if (self->len + more <= self->cap)
        return 0;
    Py_ssize_t cap = self->cap ? self->cap : 4096;
    while (cap < self->len + more)
        cap *= 2;
    char *buf = PyMem_Realloc(self->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->buf = buf;
    self->cap = cap;
    return 0;
}

static void
clear_cache(Packer *self)
{
    for (int i = 0; i < CACHE; i++)
        Py_CLEAR(self->cache[i].obj);
    for (int i = 0; i < NAMES; i++) {
        Py_CLEAR(self->names[i].obj);
        Py_CLEAR(self->names[i].name);
    }
}

static int
start_chunk(Packer *self)
{
    clear_cache(self);
    self->len = 0;
    self->count = 0;
    self->strings = 0;
    if (reserve(self, HEADER) < 0)
        return -1;
    memcpy(self->buf, MAGIC, 4);
    self->buf[4] = VERSION;
    self->buf[5] = NFIELDS;
    memset(self->buf + 6, 0, 4);  /* the row count, written by cut() */
    self->len = HEADER;
    return 0;
}

static inline void
put_tag(Packer *self, char tag)
{
    self->buf[self->len++] = tag;
}

static inline void
put_u32(Packer *self, uint32_t n)
{
    memcpy(self->buf + self->len, &n, 4);
    self->len += 4;
}

static int
put_blob(Packer *self, char tag, const char *data, Py_ssize_t size)
{
    if (size > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a value over 4 GiB");
        return -2;
    }
    if (reserve(self, 5 + size + NFIELDS * FIXED) < 0)  /* and the row's other values */
        return -1;
    put_tag(self, tag);
    put_u32(self, (uint32_t)size);
    memcpy(self->buf + self->len, data, size);
    self->len += size;
    return 0;
}

/* ---- values --------------------------------------------------------------- */

/* 0: written; -1: an error to raise; -2: a value that cannot be written (the row
 * is left out and counted, the error cleared by the caller).  The caller has
 * reserved FIXED bytes for it: None and numbers need no more. */
static inline int
put_value(Packer *self, PyObject *v, int cached)
{
    if (v == Py_None) {
        put_tag(self, TAG_NONE);
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        put_tag(self, TAG_FLOAT);
        memcpy(self->buf + self->len, &d, 8);
        self->len += 8;
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow) {
            if (n == -1 && PyErr_Occurred())
                return -1;
            put_tag(self, TAG_INT);
            memcpy(self->buf + self->len, &n, 8);
            self->len += 8;
            return 0;
        }
    }
    else if (PyUnicode_CheckExact(v) && PyUnicode_IS_COMPACT_ASCII(v)) {
        CacheEntry *entry = NULL;
        if (cached) {
            uintptr_t p = (uintptr_t)v;
            entry = &self->cache[((p >> 4) ^ (p >> 10)) & (CACHE - 1)];
            if (entry->obj == v) {
                put_tag(self, TAG_REF);
                put_u32(self, entry->index);
                return 0;
            }
        }
        int err = put_blob(self, TAG_STR, (const char *)PyUnicode_DATA(v),
                           PyUnicode_GET_LENGTH(v));
        if (err)
            return err;
        if (entry != NULL) {
            Py_INCREF(v);
            Py_XSETREF(entry->obj, v);
            entry->index = self->strings;
        }
        self->strings++;
        return 0;
    }
    else if (PyBytes_CheckExact(v)) {
        return put_blob(self, TAG_BYTES, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
    }
    PyObject *data = PyMarshal_WriteObjectToString(v, MARSHAL_VERSION);
    if (data == NULL)
        return PyErr_ExceptionMatches(PyExc_ValueError) ? -2 : -1;
    int err = put_blob(self, TAG_MARSHAL, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    return err;
}

/* ---- reading the context ---------------------------------------------------- */

/* A new reference to slot `i` of the context, or NULL with an error set. */
static PyObject *
read_slot(PyObject *obj, Py_ssize_t offset, PyObject *name)
{
    if (offset < 0)
        return PyObject_GetAttr(obj, name);
    PyObject *v = *(PyObject **)((char *)obj + offset);
    if (v == NULL) {
        PyErr_SetObject(PyExc_AttributeError, name);
        return NULL;
    }
    return Py_NewRef(v);
}

/* The instance offset of `cls`'s slot `name` (a member descriptor), or -1. */
static Py_ssize_t
slot_offset(PyTypeObject *cls, PyObject *name)
{
    PyObject *d = PyObject_GetAttr((PyObject *)cls, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)d)->d_member;
        if (member->type == T_OBJECT_EX && !(member->flags & READ_RESTRICTED))
            offset = member->offset;
    }
    Py_DECREF(d);
    return offset;
}

/* Whether objects of `type` keep their name for good (a frozen dataclass). */
static int
names_frozen(Packer *self, PyTypeObject *type)
{
    PyObject *known = PyDict_GetItemWithError(self->frozen_types, (PyObject *)type);
    if (known != NULL)
        return known == Py_True;
    if (PyErr_Occurred())
        return -1;
    int frozen = 0;
    PyObject *params = PyObject_GetAttrString((PyObject *)type, "__dataclass_params__");
    if (params == NULL)
        PyErr_Clear();
    else {
        PyObject *flag = PyObject_GetAttrString(params, "frozen");
        Py_DECREF(params);
        if (flag == NULL)
            PyErr_Clear();
        else {
            frozen = flag == Py_True;
            Py_DECREF(flag);
        }
    }
    if (PyDict_SetItem(self->frozen_types, (PyObject *)type, frozen ? Py_True : Py_False) < 0)
        return -1;
    return frozen;
}

/* The name of `obj` (a route, service or consumer), None when obj is None. */
static int
put_name(Packer *self, PyObject *obj)
{
    if (obj == Py_None)
        return put_value(self, Py_None, 0);
    uintptr_t p = (uintptr_t)obj;
    NameEntry *entry = &self->names[((p >> 4) ^ (p >> 9)) & (NAMES - 1)];
    if (entry->obj == obj)
        return put_value(self, entry->name, 1);
    PyObject *name = PyObject_GetAttr(obj, self->name);
    if (name == NULL)
        return -1;
    int frozen = names_frozen(self, Py_TYPE(obj));
    if (frozen < 0) {
        Py_DECREF(name);
        return -1;
    }
    if (frozen) {
        Py_XSETREF(entry->obj, Py_NewRef(obj));
        Py_XSETREF(entry->name, Py_NewRef(name));
    }
    int err = put_value(self, name, 1);
    Py_DECREF(name);
    return err;
}

static PyObject *
extra(Packer *self, PyObject *vars, PyObject *key)
{
    if (PyDict_CheckExact(vars)) {
        PyObject *v = PyDict_GetItemWithError(vars, key);
        if (v == NULL)
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        return Py_NewRef(v);
    }
    return PyObject_CallMethod(vars, "get", "O", key);
}

static inline Py_ssize_t
length(PyObject *v)
{
    if (PyBytes_CheckExact(v))
        return PyBytes_GET_SIZE(v);
    if (PyUnicode_CheckExact(v))
        return PyUnicode_GET_LENGTH(v);
    return PyObject_Length(v);
}

/* The request head's size (request line, headers, blank line, as received) and
 * the User-Agent (its first AGENT_LIMIT bytes), as Capture.row works them out. */
static int
head_of(PyObject *method, PyObject *path, PyObject *query, PyObject *headers,
        long long *head, PyObject **agent)
{
    Py_ssize_t n;
    *agent = NULL;
    if ((n = length(method)) < 0)
        return -1;
    *head = n + 13;
    if ((n = length(path)) < 0)
        return -1;
    *head += n;
    int has_query = PyUnicode_CheckExact(query) ? PyUnicode_GET_LENGTH(query) != 0
        : PyObject_IsTrue(query);
    if (has_query < 0)
        return -1;
    if (has_query) {
        if ((n = length(query)) < 0)
            return -1;
        *head += n + 1;
    }
    PyObject *seq = PySequence_Fast(headers, "the headers are not a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = items[i];
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a header is not a (name, value) pair");
            goto fail;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t a = length(name), b = length(value);
        if (a < 0 || b < 0)
            goto fail;
        *head += a + b + 4;
        if (*agent == NULL && a == 10 && PyBytes_Check(name)
                && memcmp(PyBytes_AS_STRING(name), "user-agent", 10) == 0) {
            if (PyBytes_CheckExact(value) && b <= AGENT_LIMIT)
                *agent = Py_NewRef(value);
            else
                *agent = PySequence_GetSlice(value, 0, AGENT_LIMIT);
            if (*agent == NULL)
                goto fail;
        }
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_CLEAR(*agent);
    Py_DECREF(seq);
    return -1;
}

/* ---- Packer ----------------------------------------------------------------- */

static int
Packer_traverse(Packer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ctx_type);
    Py_VISIT(self->trace_type);
    Py_VISIT(self->on_full);
    Py_VISIT(self->trace_of);
    Py_VISIT(self->frozen_types);
    for (int i = 0; i < NAMES; i++)
        Py_VISIT(self->names[i].obj);
    return 0;
}

static int
Packer_clear(Packer *self)
{
    clear_cache(self);
    Py_CLEAR(self->ctx_type);
    Py_CLEAR(self->trace_type);
    Py_CLEAR(self->on_full);
    Py_CLEAR(self->trace_of);
    Py_CLEAR(self->frozen_types);
    return 0;
}

static void
Packer_dealloc(Packer *self)
{
    PyObject_GC_UnTrack(self);
    Packer_clear(self);
    for (int i = 0; i < NSLOTS; i++)
        Py_XDECREF(self->slot_names[i]);
    for (int i = 0; i < NTRACE; i++)
        Py_XDECREF(self->trace_names[i]);
    Py_XDECREF(self->name);
    Py_XDECREF(self->key_ai);
    Py_XDECREF(self->key_bodies);
    Py_XDECREF(self->offset);
    Py_XDECREF(self->listener);
    Py_XDECREF(self->worker);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Packer_init(Packer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"context_type", "trace_type", "offset", "listener", "worker",
                             "chunk", "on_full", "trace_of", NULL};
    PyObject *ctx_type, *trace_type, *offset, *listener, *worker, *on_full, *trace_of;
    Py_ssize_t chunk;
    if (self->ctx_type != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Packer is made once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOnOO", kwlist, &PyType_Type,
                                     &ctx_type, &PyType_Type, &trace_type, &offset,
                                     &listener, &worker, &chunk, &on_full, &trace_of))
        return -1;
    if (chunk < 1) {
        PyErr_SetString(PyExc_ValueError, "chunk must be at least 1");
        return -1;
    }
    if (!PyCallable_Check(on_full) || !PyCallable_Check(trace_of)) {
        PyErr_SetString(PyExc_TypeError, "on_full and trace_of must be callable");
        return -1;
    }
    self->ctx_type = (PyTypeObject *)Py_NewRef(ctx_type);
    self->trace_type = (PyTypeObject *)Py_NewRef(trace_type);
    self->offset = Py_NewRef(offset);
    self->listener = Py_NewRef(listener);
    self->worker = Py_NewRef(worker);
    self->on_full = Py_NewRef(on_full);
    self->trace_of = Py_NewRef(trace_of);
    self->chunk = chunk;
    for (int i = 0; i < NSLOTS; i++) {
        if ((self->slot_names[i] = PyUnicode_InternFromString(SLOT_NAMES[i])) == NULL)
            return -1;
        self->offsets[i] = slot_offset(self->ctx_type, self->slot_names[i]);
    }
    for (int i = 0; i < NTRACE; i++) {
        if ((self->trace_names[i] = PyUnicode_InternFromString(TRACE_NAMES[i])) == NULL)
            return -1;
        self->trace_offsets[i] = slot_offset(self->trace_type, self->trace_names[i]);
    }
    if ((self->frozen_types = PyDict_New()) == NULL)
        return -1;
    if ((self->name = PyUnicode_InternFromString("name")) == NULL
            || (self->key_ai = PyUnicode_InternFromString("ai")) == NULL
            || (self->key_bodies = PyUnicode_InternFromString("log.bodies")) == NULL)
        return -1;
    return start_chunk(self);
}

/* Write the row of `ctx`: 0, -1 (error set), -2 (a value that cannot be written). */
static int
pack(Packer *self, PyObject *ctx)
{
    PyObject *slots[NSLOTS] = {NULL};
    PyObject *trace = NULL, *tr[NTRACE] = {NULL}, *agent = NULL, *ai = NULL,
             *bodies = NULL;
    int err = -1;
    int exact = Py_IS_TYPE(ctx, self->ctx_type);
    for (int i = 0; i < NSLOTS; i++) {
        slots[i] = read_slot(ctx, exact ? self->offsets[i] : -1, self->slot_names[i]);
        if (slots[i] == NULL)
            goto done;
    }
    if (slots[S_TRACE] == Py_None)  /* not propagated: worked out here */
        trace = PyObject_CallOneArg(self->trace_of, ctx);
    else
        trace = Py_NewRef(slots[S_TRACE]);
    if (trace == NULL)
        goto done;
    int trace_exact = Py_IS_TYPE(trace, self->trace_type);
    for (int i = 0; i < NTRACE; i++) {
        tr[i] = read_slot(trace, trace_exact ? self->trace_offsets[i] : -1,
                          self->trace_names[i]);
        if (tr[i] == NULL)
            goto done;
    }
    long long head;
    if (head_of(slots[S_METHOD], slots[S_PATH], slots[S_QUERY], slots[S_HEADERS], &head,
                &agent) < 0)
        goto done;
    PyObject *vars = slots[S_VARS];
    int any = PyDict_CheckExact(vars) ? PyDict_GET_SIZE(vars) != 0 : PyObject_IsTrue(vars);
    if (any < 0)
        goto done;
    if (any) {
        if ((ai = extra(self, vars, self->key_ai)) == NULL
                || (bodies = extra(self, vars, self->key_bodies)) == NULL)
            goto done;
    }
    /* The row, in Capture.row's order: room for every value's fixed part at once
     * (a string or bytes value reserves its own length). */
    if (reserve(self, NFIELDS * FIXED) < 0)
        goto done;
#define PUT(v, cached) if ((err = put_value(self, (v), (cached))) != 0) goto done
    PUT(slots[S_STARTED], 0);
    PUT(slots[S_ENDED], 0);
    PUT(slots[S_UP_STARTED], 0);
    PUT(slots[S_UP_ENDED], 0);
    PUT(slots[S_REQUEST_ID], 0);
    PUT(slots[S_TARGET], 1);
    PUT(slots[S_CREDENTIAL], 1);
    PUT(slots[S_CLIENT_IP], 1);
    PUT(slots[S_METHOD], 1);
    PUT(slots[S_HOST], 1);
    PUT(slots[S_PATH], 0);
    PUT(slots[S_STATUS], 0);
    PUT(slots[S_BYTES_IN], 0);
    PUT(slots[S_BYTES_OUT], 0);
    PUT(slots[S_RETRIES], 0);
    PUT(slots[S_RATE_LIMIT], 1);
    PUT(slots[S_ERROR], 1);
    PUT(self->offset, 0);
    PUT(self->listener, 1);
    PUT(self->worker, 0);
    PUT(tr[TR_ID], 0);
    PUT(tr[TR_SPAN], 0);
    PUT(tr[TR_PARENT], 0);
    if ((err = put_name(self, slots[S_ROUTE])) != 0
            || (err = put_name(self, slots[S_SERVICE])) != 0
            || (err = put_name(self, slots[S_CONSUMER])) != 0)
        goto done;
    put_tag(self, TAG_INT);
    memcpy(self->buf + self->len, &head, 8);
    self->len += 8;
    PUT(agent ? agent : Py_None, 0);
    PUT(ai ? ai : Py_None, 0);
    PUT(bodies ? bodies : Py_None, 0);
#undef PUT
    err = 0;
done:
    for (int i = 0; i < NSLOTS; i++)
        Py_XDECREF(slots[i]);
    for (int i = 0; i < NTRACE; i++)
        Py_XDECREF(tr[i]);
    Py_XDECREF(trace);
    Py_XDECREF(agent);
    Py_XDECREF(ai);
    Py_XDECREF(bodies);
    return err;
}

static PyObject *
Packer_record(Packer *self, PyObject *ctx)
{
    Py_ssize_t start = self->len;
    uint32_t strings = self->strings;
    int err = pack(self, ctx);
    if (err) {
        /* Left out whole: the buffer and the string table as they were (the
         * cache may point into the part taken back). */
        self->len = start;
        self->strings = strings;
        clear_cache(self);
        if (err == -1)
            return NULL;
        PyErr_Clear();
        self->broken++;
        Py_RETURN_NONE;
    }
    if (++self->count >= self->chunk) {
        PyObject *r = PyObject_CallNoArgs(self->on_full);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyObject *
Packer_cut(Packer *self, PyObject *Py_UNUSED(ignored))
{
    uint32_t count = (uint32_t)self->count;
    memcpy(self->buf + 6, &count, 4);
    PyObject *data = PyBytes_FromStringAndSize(self->buf, self->len);
    if (data == NULL)
        return NULL;
    PyObject *result = Py_BuildValue("(Nn)", data, self->count);
    if (result == NULL)
        return NULL;
    if (start_chunk(self) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyMethodDef Packer_methods[] = {
    {"record", (PyCFunction)Packer_record, METH_O,
     "record(ctx): pack the finished request's row."},
    {"cut", (PyCFunction)Packer_cut, METH_NOARGS,
     "cut() -> (chunk, rows): the rows packed so far, as one chunk; a new chunk starts."},
    {NULL}
};

static PyMemberDef Packer_members[] = {
    {"count", T_PYSSIZET, offsetof(Packer, count), READONLY, "rows in the chunk"},
    {"broken", T_PYSSIZET, offsetof(Packer, broken), READONLY,
     "rows left out: a value that cannot be written"},
    {"size", T_PYSSIZET, offsetof(Packer, len), READONLY, "bytes in the chunk"},
    {NULL}
};

static PyTypeObject PackerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "campusgate.observe._rowpack.Packer",
    .tp_doc = "Access-record rows of finished requests, packed into chunks.",
    .tp_basicsize = sizeof(Packer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Packer_init,
    .tp_dealloc = (destructor)Packer_dealloc,
    .tp_traverse = (traverseproc)Packer_traverse,
    .tp_clear = (inquiry)Packer_clear,
    .tp_methods = Packer_methods,
    .tp_members = Packer_members,
};

/* ---- reading chunks ------------------------------------------------------------ */

typedef struct {
    const unsigned char *p, *end;
    PyObject **table;                /* the chunk's strings, in order */
    Py_ssize_t strings, room;
} Reader;

static void
reader_clear(Reader *r)
{
    for (Py_ssize_t i = 0; i < r->strings; i++)
        Py_DECREF(r->table[i]);
    PyMem_Free(r->table);
    r->table = NULL;
    r->strings = r->room = 0;
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

/* The next value into `c` (an object in c->obj when `want`); -1 on error, with
 * nothing to release. */
static int
read_cell(Reader *r, Cell *c, int want)
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
            if (want && (c->obj = PyLong_FromLongLong(c->n)) == NULL)
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
    if ((c->obj = ascii_str(data, size)) == NULL)
        return -1;
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
read_row(Reader *r, Cell *cells, const char *want)
{
    for (int i = 0; i < NFIELDS; i++) {
        if (read_cell(r, &cells[i], want == NULL || want[i]) < 0) {
            while (i--)
                Py_CLEAR(cells[i].obj);
            return -1;
        }
    }
    return 0;
}

static PyObject *
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
        if (read_row(&r, cells, NULL) < 0)
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
#define NCOLUMNS 36

static PyObject *UPSTREAM_STATUS, *INTERNAL, *FIVE_HUNDRED, *ZERO;

/* The row's values finish_row reads as C values only (the rest are objects). */
static const char WANTED[NFIELDS] = {
    [R_REQUEST_ID] = 1, [R_TARGET] = 1, [R_CREDENTIAL] = 1, [R_CLIENT_IP] = 1,
    [R_METHOD] = 1, [R_HOST] = 1, [R_PATH] = 1, [R_STATUS] = 1, [R_BYTES_OUT] = 1,
    [R_RETRIES] = 1, [R_RATE_LIMIT] = 1, [R_ERROR] = 1, [R_LISTENER] = 1, [R_WORKER] = 1,
    [R_TRACE_ID] = 1, [R_SPAN_ID] = 1, [R_PARENT_ID] = 1, [R_ROUTE] = 1, [R_SERVICE] = 1,
    [R_CONSUMER] = 1, [R_AI] = 1, [R_BODIES] = 1};

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
static PyObject *
finish(PyObject *module, PyObject *args)
{
    PyObject *chunks, *seq = NULL, *columns[NCOMPUTED] = {NULL}, *nothing = NULL,
             *extras = NULL, *result = NULL;
    double now;
    if (!PyArg_ParseTuple(args, "Od", &chunks, &now))
        return NULL;
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
        Py_ssize_t count = reader_open(&r, items[c]);
        for (Py_ssize_t n = 0; n < count; n++, k++) {
            Cell cells[NFIELDS];
            PyObject *out[NCOMPUTED] = {NULL}, *ai, *bodies;
            if (read_row(&r, cells, WANTED) < 0) {
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

/* ---- histogram counts for the writer's stages ----------------------------------- */

/* The values of a sequence as doubles (a new PyMem array), or NULL. */
static double *
doubles_of(PyObject *values, Py_ssize_t *count)
{
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = *count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    double *out = PyMem_Malloc((n ? n : 1) * sizeof(double));
    if (out == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        out[i] = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : PyFloat_AsDouble(v);
        if (out[i] == -1.0 && PyErr_Occurred()) {
            PyMem_Free(out);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    return out;
}

/* log_counts(values, min_ms, inv_min, inv_log_gamma, max_index, target): one count
 * per value into `target` (a dict: bucket -> count), the bucket being
 * histogram.bucket_of's (the same libm log, the same arithmetic); a NaN or an
 * infinity counts in the last bucket. */
static PyObject *
log_counts(PyObject *module, PyObject *args)
{
    PyObject *values, *target;
    double min_ms, inv_min, inv_log_gamma;
    long max_index;
    if (!PyArg_ParseTuple(args, "OdddlO!", &values, &min_ms, &inv_min, &inv_log_gamma,
                          &max_index, &PyDict_Type, &target))
        return NULL;
    if (max_index < 1 || max_index > 100000) {
        PyErr_SetString(PyExc_ValueError, "max_index out of range");
        return NULL;
    }
    Py_ssize_t n;
    double *xs = doubles_of(values, &n);
    if (xs == NULL)
        return NULL;
    Py_ssize_t *counts = PyMem_Calloc(max_index + 1, sizeof(Py_ssize_t));
    if (counts == NULL) {
        PyMem_Free(xs);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double ms = xs[i];
        long index;
        if (ms < min_ms)
            index = 0;
        else {
            double x = log(ms * inv_min) * inv_log_gamma;
            index = x < (double)max_index ? (long)x + 1 : max_index;
            if (index > max_index)
                index = max_index;
        }
        counts[index]++;
    }
    PyMem_Free(xs);
    for (long index = 0; index <= max_index; index++) {
        if (!counts[index])
            continue;
        PyObject *key = PyLong_FromLong(index), *now = NULL, *sum = NULL;
        int err = key == NULL;
        if (!err) {
            now = PyDict_GetItemWithError(target, key);
            err = now == NULL && PyErr_Occurred();
        }
        if (!err) {
            PyObject *add = PyLong_FromSsize_t(counts[index]);
            sum = add == NULL ? NULL : now == NULL ? Py_NewRef(add) : PyNumber_Add(now, add);
            Py_XDECREF(add);
            err = sum == NULL || PyDict_SetItem(target, key, sum) < 0;
        }
        Py_XDECREF(key);
        Py_XDECREF(sum);
        if (err) {
            PyMem_Free(counts);
            return NULL;
        }
    }
    PyMem_Free(counts);
    Py_RETURN_NONE;
}

/* le_counts(values, bounds, acc, first): for each value, one more in
 * acc[first + bisect_left(bounds, value)] (Prometheus' "le" buckets; bounds
 * increasing, acc a list with room for len(bounds) + 1 slots from `first`). */
static PyObject *
le_counts(PyObject *module, PyObject *args)
{
    PyObject *values, *bounds_seq, *acc;
    Py_ssize_t first;
    if (!PyArg_ParseTuple(args, "OOO!n", &values, &bounds_seq, &PyList_Type, &acc, &first))
        return NULL;
    Py_ssize_t n, nb;
    double *bounds = doubles_of(bounds_seq, &nb);
    if (bounds == NULL)
        return NULL;
    if (first < 0 || first + nb + 1 > PyList_GET_SIZE(acc)) {
        PyMem_Free(bounds);
        PyErr_SetString(PyExc_ValueError, "acc has no room for the buckets");
        return NULL;
    }
    double *xs = doubles_of(values, &n);
    Py_ssize_t *counts = xs == NULL ? NULL : PyMem_Calloc(nb + 1, sizeof(Py_ssize_t));
    if (counts == NULL) {
        PyMem_Free(bounds);
        PyMem_Free(xs);
        return xs == NULL ? NULL : PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = xs[i];
        Py_ssize_t lo = 0, hi = nb;
        while (lo < hi) {  /* bisect_left */
            Py_ssize_t mid = (lo + hi) / 2;
            if (bounds[mid] < x)
                lo = mid + 1;
            else
                hi = mid;
        }
        counts[lo]++;
    }
    PyMem_Free(xs);
    PyMem_Free(bounds);
    for (Py_ssize_t b = 0; b <= nb; b++) {
        if (!counts[b])
            continue;
        PyObject *add = PyLong_FromSsize_t(counts[b]);
        PyObject *sum = add == NULL ? NULL
            : PyNumber_Add(PyList_GET_ITEM(acc, first + b), add);
        Py_XDECREF(add);
        if (sum == NULL) {
            PyMem_Free(counts);
            return NULL;
        }
        PyList_SetItem(acc, first + b, sum);  /* steals sum */
    }
    PyMem_Free(counts);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"unpack", unpack, METH_O,
     "unpack(chunk) -> list of rows: what Packer.record packed, as tuples."},
    {"finish", finish, METH_VARARGS,
     "finish(chunks, now) -> (columns, extras): the chunks' records as columns."},
    {"log_counts", log_counts, METH_VARARGS,
     "log_counts(values, min_ms, inv_min, inv_log_gamma, max_index, target)."},
    {"le_counts", le_counts, METH_VARARGS, "le_counts(values, bounds, acc, first)."},
    {NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "campusgate.observe._rowpack",
    .m_doc = "Access-record rows packed in C (docs/observability.md).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__rowpack(void)
{
    if (PyType_Ready(&PackerType) < 0)
        return NULL;
    if ((UPSTREAM_STATUS = PyUnicode_InternFromString("upstream_status")) == NULL
            || (INTERNAL = PyUnicode_InternFromString("internal")) == NULL
            || (FIVE_HUNDRED = PyLong_FromLong(500)) == NULL
            || (ZERO = PyLong_FromLong(0)) == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Packer", (PyObject *)&PackerType) < 0
            || PyModule_AddIntConstant(m, "FIELDS", NFIELDS) < 0
            || PyModule_AddIntConstant(m, "VERSION", VERSION) < 0
            || PyModule_AddIntConstant(m, "COLUMNS", NCOLUMNS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
