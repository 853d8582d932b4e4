/* The worker's side of campusgate.observe._rowpack: Packer (see _rowpack.h). */
#include "_rowpack.h"
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

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
    Py_ssize_t max_size;             /* or bytes per frame: then on_full() */
    char *buf;
    Py_ssize_t len, cap;
    Py_ssize_t count, broken;
    uint32_t strings;                /* the chunk's string table, so far */
    CacheEntry cache[CACHE];
    NameEntry names[NAMES];
    PyObject *frozen_types;          /* a dict: type -> whether names are cached */
    uint64_t rng;                    /* the state of new_span's generator */
} Packer;

/* ---- the buffer ---------------------------------------------------------- */

static int
reserve(Packer *self, Py_ssize_t more)
{
    if (self->len + more <= self->cap)
        return 0;
    return grow_buffer((void **)&self->buf, &self->cap, self->len + more);
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

/* The buffer holds a frame: the chunk's length (FRAME_PREFIX bytes, big-endian,
 * written by cut()), then the chunk: the shipper sends it as it is, no copy. */
#define FRAME_PREFIX 4

static int
start_chunk(Packer *self)
{
    clear_cache(self);
    self->len = 0;
    self->count = 0;
    self->strings = 0;
    if (reserve(self, FRAME_PREFIX + HEADER) < 0)
        return -1;
    char *chunk = self->buf + FRAME_PREFIX;
    memcpy(chunk, MAGIC, 4);
    chunk[4] = VERSION;
    chunk[5] = NFIELDS;
    memset(chunk + 6, 0, 4);  /* the row count, written by cut() */
    self->len = FRAME_PREFIX + HEADER;
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
static int put_other(Packer *self, PyObject *v, int cached);

static inline __attribute__((always_inline)) int
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
    return put_other(self, v, cached);
}

/* put_value's ints, strings and the rest, out of line: inlining None and floats
 * (a third of a row) saves their calls; a call a value cost about 400
 * instructions a row. */
static int
put_other(Packer *self, PyObject *v, int cached)
{
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

/* ---- a new span id ------------------------------------------------------- */

/* Sixteen lowercase hex digits, not all zero (W3C Trace Context, 3.2.2.4), from
 * splitmix64 seeded by the kernel: unique, unpredictable enough for an id that
 * is no secret (Python's side takes random.getrandbits, as cheap a generator). */
static void
new_span(Packer *self, char out[16])
{
    static const char HEX[] = "0123456789abcdef";
    uint64_t z;
    do {
        z = (self->rng += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
    } while (z == 0);
    for (int i = 15; i >= 0; i--, z >>= 4)
        out[i] = HEX[z & 15];
}

static void
seed_spans(Packer *self)
{
#ifdef __linux__
    if (getrandom(&self->rng, sizeof(self->rng), GRND_NONBLOCK) == sizeof(self->rng))
        return;
#endif
    self->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)self;
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
 * the User-Agent (its first AGENT_LIMIT bytes), as Capture.row works them out;
 * `traced`: whether a traceparent or an X-Request-Id header came (what makes
 * capture.trace_of's answer other than a new span of the request id's trace). */
static int
head_of(PyObject *method, PyObject *path, PyObject *query, PyObject *headers,
        long long *head, PyObject **agent, int *traced)
{
    Py_ssize_t n;
    *agent = NULL;
    *traced = 0;
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
        if ((a == 11 || a == 12) && PyBytes_Check(name)
                && (memcmp(PyBytes_AS_STRING(name), "traceparent", a) == 0
                    || memcmp(PyBytes_AS_STRING(name), "x-request-id", a) == 0))
            *traced = 1;
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
                             "chunk", "on_full", "trace_of", "max_size", NULL};
    PyObject *ctx_type, *trace_type, *offset, *listener, *worker, *on_full, *trace_of;
    Py_ssize_t chunk, max_size = PY_SSIZE_T_MAX;
    if (self->ctx_type != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Packer is made once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOnOO|n", kwlist, &PyType_Type,
                                     &ctx_type, &PyType_Type, &trace_type, &offset,
                                     &listener, &worker, &chunk, &on_full, &trace_of,
                                     &max_size))
        return -1;
    if (chunk < 1 || max_size < 1) {
        PyErr_SetString(PyExc_ValueError, "chunk and max_size must be at least 1");
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
    self->max_size = max_size;
    seed_spans(self);
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
    long long head;
    int traced;
    if (head_of(slots[S_METHOD], slots[S_PATH], slots[S_QUERY], slots[S_HEADERS], &head,
                &agent, &traced) < 0)
        goto done;
    PyObject *request_id = slots[S_REQUEST_ID];
    int request_id_str = PyUnicode_CheckExact(request_id)
        && PyUnicode_IS_COMPACT_ASCII(request_id);
    /* Not propagated, and no header to continue or name it: capture.trace_of
     * would start the request id's trace with a new span, which is done here (a
     * Python call, two header scans and a Trace less: about 1.7 us). */
    int fresh = slots[S_TRACE] == Py_None && !traced && request_id_str
        && PyUnicode_GET_LENGTH(request_id) > 0;
    if (!fresh) {
        if (slots[S_TRACE] == Py_None)  /* not propagated: worked out by Python */
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
    }
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
    /* A trace the gateway started has the request id as its id (the same
     * object): written once, the trace id refers to it. */
    uint32_t request_id_index = self->strings;
    PUT(request_id, 0);
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
    if (fresh) {
        char span[16];
        new_span(self, span);
        put_tag(self, TAG_REF);
        put_u32(self, request_id_index);
        if ((err = put_blob(self, TAG_STR, span, 16)) != 0)
            goto done;
        self->strings++;
        put_tag(self, TAG_NONE);  /* no parent: a new trace */
    }
    else {
        if (request_id_str && tr[TR_ID] == request_id) {
            put_tag(self, TAG_REF);
            put_u32(self, request_id_index);
        }
        else
            PUT(tr[TR_ID], 0);
        PUT(tr[TR_SPAN], 0);
        PUT(tr[TR_PARENT], 0);
    }
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
    if (++self->count >= self->chunk || self->len >= self->max_size) {
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
    memcpy(self->buf + FRAME_PREFIX + 6, &count, 4);
    Py_ssize_t size = self->len - FRAME_PREFIX;
    if (size > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a chunk over 4 GiB");
        return NULL;
    }
    unsigned char *prefix = (unsigned char *)self->buf;
    prefix[0] = (unsigned char)(size >> 24);
    prefix[1] = (unsigned char)(size >> 16);
    prefix[2] = (unsigned char)(size >> 8);
    prefix[3] = (unsigned char)size;
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
     "cut() -> (frame, rows): the rows packed so far, as one chunk in a frame (its "
     "length, 4 bytes big-endian, then the chunk); a new chunk starts."},
    {NULL}
};

static PyMemberDef Packer_members[] = {
    {"count", T_PYSSIZET, offsetof(Packer, count), READONLY, "rows in the chunk"},
    {"broken", T_PYSSIZET, offsetof(Packer, broken), READONLY,
     "rows left out: a value that cannot be written"},
    {"size", T_PYSSIZET, offsetof(Packer, len), READONLY,
     "bytes in the frame so far (the chunk and its 4-byte length)"},
    {NULL}
};

PyTypeObject PackerType = {
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
