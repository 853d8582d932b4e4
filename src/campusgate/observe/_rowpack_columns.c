/* The store sink's segment body in binary columns (format 3 of
 * observe/segments.py), written from a batch's columns with no Python object
 * made per value.  observe/columnar.py reads it back (in Python, for every
 * install) and describes the layout; everything is little-endian.
 *
 * Each column is written the cheapest way its values allow:
 *   NONE    every value None: nothing more;
 *   FLOAT   floats (and None): 8 bytes each, byte-shuffled (every value's first
 *           byte, then every second byte, ...: the high bytes of a batch's times
 *           and latencies repeat, and zstd then finds them as runs), then the
 *           None rows (u32 count, u32 indexes);
 *   INT     ints that fit 64 bits (and None): as FLOAT, two's complement;
 *   SAME    the same objects as an earlier column, row for row (u16 column):
 *           the trace id of a trace the gateway started is its request id;
 *   DICT    strings (and None) of at most 256 distinct objects: u16 count, each
 *           as u32 length (NULL_LENGTH: None) and UTF-8, then a u8 index per row;
 *   STR     any strings (and None): a u32 length per row, then the UTF-8 bytes;
 *   HEX     strings all of one even length of lowercase hex digits (request, trace
 *           and span ids): u16 bytes per value, then the values as bytes,
 *           shuffled like numbers (zstd's costliest input was their digits);
 *   JSON    anything else (dicts, bools, mixed types, huge ints): u32 length and
 *           the column as JSON, by the `dumps` the caller passes (orjson's).
 */
#include "_rowpack.h"

enum { COL_NONE = 0, COL_FLOAT, COL_INT, COL_SAME, COL_DICT, COL_STR, COL_JSON, COL_HEX };

#define COLUMNAR_FORMAT 3
#define FLAG_NON_ASCII 1
#define NULL_LENGTH 0xFFFFFFFFu
#define DICT_MAX 256
#define DICT_SLOTS 1024          /* open addressing, at most a quarter full */
#define ID_LENGTH 32             /* a gateway-made request id (proxy/request_ids.py) */
#define HEX_MAX 64               /* the longest HEX value, in bytes */

static const char COLUMNAR_MAGIC[4] = {'\0', 'C', 'G', 'S'};

typedef struct {
    unsigned char *buf;
    Py_ssize_t len, room;
    int flags;
} Out;

static int
out_reserve(Out *o, Py_ssize_t more)
{
    if (o->len + more <= o->room)
        return 0;
    return grow_buffer((void **)&o->buf, &o->room, o->len + more);
}

/* Write the little-endian u32 `n` at `at` (room already reserved). */
static inline void
le32(unsigned char *at, uint32_t n)
{
    at[0] = (unsigned char)n;
    at[1] = (unsigned char)(n >> 8);
    at[2] = (unsigned char)(n >> 16);
    at[3] = (unsigned char)(n >> 24);
}

static int
put_u32(Out *o, uint32_t n)
{
    if (out_reserve(o, 4) < 0)
        return -1;
    le32(o->buf + o->len, n);
    o->len += 4;
    return 0;
}

static int
put_small(Out *o, unsigned int n, int size)  /* a u8 or a u16 */
{
    if (out_reserve(o, size) < 0)
        return -1;
    o->buf[o->len++] = (unsigned char)n;
    if (size == 2)
        o->buf[o->len++] = (unsigned char)(n >> 8);
    return 0;
}

static int
put_bytes(Out *o, const void *data, Py_ssize_t size)
{
    if (out_reserve(o, size) < 0)
        return -1;
    memcpy(o->buf + o->len, data, size);
    o->len += size;
    return 0;
}

/* A str's UTF-8 bytes (ASCII strings without a copy); -1 when it has none
 * (a lone surrogate): the column is then written as JSON. */
static int
utf8_of(Out *o, PyObject *s, const char **data, Py_ssize_t *size)
{
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        *data = (const char *)PyUnicode_1BYTE_DATA(s);
        *size = PyUnicode_GET_LENGTH(s);
        return 0;
    }
    o->flags |= FLAG_NON_ASCII;
    *data = PyUnicode_AsUTF8AndSize(s, size);
    if (*data == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (*size >= (Py_ssize_t)NULL_LENGTH)
        return -1;
    return 0;
}

/* FLOAT and INT: 8 bytes per row, shuffled, then the None rows. */
static int
put_numbers(Out *o, PyObject **items, Py_ssize_t n, int kind, Py_ssize_t nones)
{
    if (out_reserve(o, 8 * n + 4 + 4 * nones) < 0)
        return -1;
    unsigned char *planes = o->buf + o->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        uint64_t bits = 0;
        if (v != Py_None) {
            if (kind == COL_FLOAT) {
                double d = PyFloat_AS_DOUBLE(v);
                memcpy(&bits, &d, 8);
            }
            else {
                bits = (uint64_t)PyLong_AsLongLong(v);  /* checked to fit */
            }
        }
        for (int k = 0; k < 8; k++)
            planes[k * n + i] = (unsigned char)(bits >> (8 * k));
    }
    o->len += 8 * n;
    le32(o->buf + o->len, (uint32_t)nones);
    o->len += 4;
    for (Py_ssize_t i = 0; i < n && nones; i++) {
        if (items[i] == Py_None) {
            le32(o->buf + o->len, (uint32_t)i);
            o->len += 4;
        }
    }
    return 0;
}

/* DICT, when the column holds at most DICT_MAX distinct objects: 1 written,
 * 0 when it holds more (nothing written), -1 on an error. */
static int
put_dict(Out *o, PyObject **items, Py_ssize_t n, PyObject **values)
{
    PyObject *slots[DICT_SLOTS] = {NULL};
    unsigned char index_of[DICT_SLOTS];
    PyObject *distinct[DICT_MAX];
    int count = 0;
    unsigned char *indexes = PyMem_Malloc(n ? n : 1);
    if (indexes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *last = NULL;
    unsigned char last_index = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (v == last) {  /* the usual run of one route, one method, ... */
            indexes[i] = last_index;
            continue;
        }
        size_t h = (size_t)(((uintptr_t)v >> 4) * 0x9E3779B97F4A7C15ull) & (DICT_SLOTS - 1);
        while (slots[h] != NULL && slots[h] != v)
            h = (h + 1) & (DICT_SLOTS - 1);
        if (slots[h] == NULL) {
            if (count == DICT_MAX) {
                PyMem_Free(indexes);
                return 0;
            }
            slots[h] = v;
            index_of[h] = (unsigned char)count;
            distinct[count++] = v;
        }
        last = v;
        last_index = indexes[i] = index_of[h];
    }
    int err = put_small(o, COL_DICT, 1) < 0 || put_small(o, count, 2) < 0;
    for (int j = 0; j < count && !err; j++) {
        const char *data;
        Py_ssize_t size;
        if (distinct[j] == Py_None) {
            err = put_u32(o, NULL_LENGTH) < 0;
            continue;
        }
        if (utf8_of(o, distinct[j], &data, &size) < 0) {
            PyMem_Free(indexes);
            return -2;
        }
        err = put_u32(o, (uint32_t)size) < 0 || put_bytes(o, data, size) < 0;
    }
    if (!err)
        err = put_bytes(o, indexes, n) < 0;
    PyMem_Free(indexes);
    if (!err && (*values = PyList_New(count)) == NULL)
        err = 1;
    for (int j = 0; j < count && !err; j++)
        PyList_SET_ITEM(*values, j, Py_NewRef(distinct[j]));
    return err ? -1 : 1;
}

/* STR: a length per row, then the bytes; -2 when a string has no UTF-8. */
static int
put_strings(Out *o, PyObject **items, Py_ssize_t n)
{
    if (put_small(o, COL_STR, 1) < 0 || out_reserve(o, 4 * n) < 0)
        return -1;
    Py_ssize_t lengths = o->len, total = 0;
    o->len += 4 * n;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *data;
        Py_ssize_t size;
        if (items[i] == Py_None) {
            le32(o->buf + lengths + 4 * i, NULL_LENGTH);
            continue;
        }
        if (utf8_of(o, items[i], &data, &size) < 0)
            return -2;
        le32(o->buf + lengths + 4 * i, (uint32_t)size);
        total += size;
    }
    if (out_reserve(o, total) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *data;
        Py_ssize_t size;
        if (items[i] != Py_None && utf8_of(o, items[i], &data, &size) == 0) {
            memcpy(o->buf + o->len, data, size);
            o->len += size;
        }
    }
    return 0;
}

static int
put_json(Out *o, PyObject *column, PyObject *dumps)
{
    PyObject *text = PyObject_CallOneArg(dumps, column);
    if (text == NULL)
        return -1;
    if (!PyBytes_Check(text) || PyBytes_GET_SIZE(text) >= (Py_ssize_t)NULL_LENGTH) {
        Py_DECREF(text);
        PyErr_SetString(PyExc_TypeError, "dumps must return bytes (under 4 GiB)");
        return -1;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(text);
    Py_ssize_t size = PyBytes_GET_SIZE(text);
    for (Py_ssize_t i = 0; i < size && !(o->flags & FLAG_NON_ASCII); i++)
        if (data[i] & 0x80)
            o->flags |= FLAG_NON_ASCII;
    int err = put_small(o, COL_JSON, 1) < 0 || put_u32(o, (uint32_t)size) < 0
        || put_bytes(o, data, size) < 0;
    Py_DECREF(text);
    return err ? -1 : 0;
}

/* A hex digit's value (lowercase only), 0x10 for any other byte: one load tells
 * both whether a byte is a digit and which.  A constant, filled in by the
 * compiler. */
static const unsigned char HEX_VALUES[256] = {
    [0 ... '0' - 1] = 0x10,
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7,
    ['8'] = 8, ['9'] = 9,
    ['9' + 1 ... 'a' - 1] = 0x10,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['f' + 1 ... 255] = 0x10};

/* Whether c is a lowercase hex digit, in arithmetic (a loop of these vectorizes,
 * where one of table loads would not). */
static inline int
is_hex(unsigned char c)
{
    return (unsigned)(c - '0') < 10u || (unsigned)(c - 'a') < 6u;
}

/* The bytes per value when every value is a compact ASCII str of the same even
 * length (2 to 2 * HEX_MAX), else 0: the values put_hex may take. */
static int
hex_width(PyObject **items, Py_ssize_t n)
{
    if (n == 0 || !PyUnicode_CheckExact(items[0]) || !PyUnicode_IS_COMPACT_ASCII(items[0]))
        return 0;
    Py_ssize_t length = PyUnicode_GET_LENGTH(items[0]);
    if (length < 2 || length % 2 || length > 2 * HEX_MAX)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_COMPACT_ASCII(v)
                || PyUnicode_GET_LENGTH(v) != length)
            return 0;
    }
    return (int)(length / 2);
}

/* HEX: the values as bytes, byte k of every value together, decoded and checked
 * in one pass: -2 (nothing written) when a value holds a byte that is not a
 * lowercase hex digit. */
static int
put_hex(Out *o, PyObject **items, Py_ssize_t n, int width)
{
    Py_ssize_t start = o->len;
    if (put_small(o, COL_HEX, 1) < 0 || put_small(o, width, 2) < 0
            || out_reserve(o, width * n) < 0)
        return -1;
    unsigned char *planes = o->buf + o->len, bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *digits = PyUnicode_1BYTE_DATA(items[i]);
        for (int k = 0; k < width; k++) {
            unsigned char high = HEX_VALUES[digits[2 * k]], low = HEX_VALUES[digits[2 * k + 1]];
            bad |= high | low;
            planes[k * n + i] = (unsigned char)(high << 4 | low);
        }
        if (bad & 0x10) {
            o->len = start;
            return -2;
        }
    }
    o->len += width * n;
    return 0;
}

/* The earlier column (of `seqs[0..c-1]`) holding the same objects as column c. */
static int
same_as(PyObject **seqs, int c, Py_ssize_t n)
{
    PyObject **mine = PySequence_Fast_ITEMS(seqs[c]);
    for (int j = 0; j < c; j++) {
        PyObject **theirs = PySequence_Fast_ITEMS(seqs[j]);
        if (n && theirs[0] == mine[0]
                && memcmp(theirs, mine, n * sizeof(PyObject *)) == 0)
            return j;
    }
    return -1;
}

/* One column, the cheapest way its values allow; `*values` becomes the list of
 * its distinct objects when they are known (NONE, SAME, DICT), else stays NULL. */
static int
put_column(Out *o, PyObject **seqs, int c, Py_ssize_t n, PyObject *dumps,
           PyObject **values, PyObject **known)
{
    PyObject **items = PySequence_Fast_ITEMS(seqs[c]);
    Py_ssize_t nones = 0, floats = 0, ints = 0, strs = 0, others = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (v == Py_None)
            nones++;
        else if (PyFloat_CheckExact(v))
            floats++;
        else if (PyUnicode_CheckExact(v))
            strs++;
        else if (PyLong_CheckExact(v)) {
            int overflow;
            PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow)
                others++;
            else
                ints++;
        }
        else
            others++;
    }
    int kinds = (floats > 0) + (ints > 0) + (strs > 0);
    if (others || kinds > 1)
        return put_json(o, seqs[c], dumps);
    if (nones == n) {
        if (n && (*values = Py_BuildValue("[O]", Py_None)) == NULL)
            return -1;
        return put_small(o, COL_NONE, 1);
    }
    if (floats || ints) {
        int kind = floats ? COL_FLOAT : COL_INT;
        return put_small(o, kind, 1) < 0 ? -1 : put_numbers(o, items, n, kind, nones);
    }
    int same = same_as(seqs, c, n);
    if (same >= 0) {
        *values = Py_XNewRef(known[same]);
        return put_small(o, COL_SAME, 1) < 0 ? -1 : put_small(o, same, 2);
    }
    int width = nones ? 0 : hex_width(items, n);
    if (width) {
        int done = put_hex(o, items, n, width);
        if (done != -2)
            return done;
    }
    Py_ssize_t start = o->len;
    int flags = o->flags;
    int done = put_dict(o, items, n, values);
    if (done == 0)
        done = put_strings(o, items, n);
    if (done == -2) {  /* a string with no UTF-8: JSON says what is wrong with it */
        o->len = start;
        o->flags = flags;
        return put_json(o, seqs[c], dumps);
    }
    return done < 0 ? -1 : 0;
}

/* columns_body(columns, names_json, dumps) -> (bytes, distinct): the segment body
 * (before compression) of `columns` (equal-length sequences), named by
 * `names_json` (the JSON text of their names), and for each column the list of its
 * distinct objects when writing it found them (a few distinct values), else None:
 * the segment's terms are made from those lists rather than from whole columns. */
PyObject *
columns_body(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *columns, *dumps, *result = NULL;
    const char *names;
    Py_ssize_t names_size;
    if (!PyArg_ParseTuple(args, "Oy#O", &columns, &names, &names_size, &dumps))
        return NULL;
    PyObject *outer = PySequence_Fast(columns, "columns must be a sequence");
    if (outer == NULL)
        return NULL;
    Py_ssize_t ncols = PySequence_Fast_GET_SIZE(outer), made = 0, n = 0;
    PyObject **seqs = PyMem_Calloc(ncols ? ncols : 1, sizeof(PyObject *));
    PyObject **known = PyMem_Calloc(ncols ? ncols : 1, sizeof(PyObject *));
    PyObject *distinct = NULL;
    Out o = {0};
    if (seqs == NULL || known == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (ncols > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "more than 65,535 columns");
        goto done;
    }
    for (; made < ncols; made++) {
        seqs[made] = PySequence_Fast(PySequence_Fast_GET_ITEM(outer, made),
                                     "a column must be a sequence");
        if (seqs[made] == NULL)
            goto done;
        Py_ssize_t size = PySequence_Fast_GET_SIZE(seqs[made]);
        if (made == 0)
            n = size;
        if (size != n || n >= (Py_ssize_t)NULL_LENGTH) {
            PyErr_SetString(PyExc_ValueError, "columns of unequal lengths");
            goto done;
        }
    }
    if (out_reserve(&o, 16 + names_size + n * 128) < 0
            || put_bytes(&o, COLUMNAR_MAGIC, 4) < 0 || put_small(&o, COLUMNAR_FORMAT, 1) < 0
            || put_small(&o, 0, 1) < 0 || put_small(&o, (unsigned)ncols, 2) < 0
            || put_u32(&o, (uint32_t)n) < 0 || put_u32(&o, (uint32_t)names_size) < 0
            || put_bytes(&o, names, names_size) < 0)
        goto done;
    for (int c = 0; c < ncols; c++)
        if (put_column(&o, seqs, c, n, dumps, &known[c], known) < 0)
            goto done;
    o.buf[5] = (unsigned char)o.flags;
    if ((distinct = PyList_New(ncols)) == NULL)
        goto done;
    for (Py_ssize_t c = 0; c < ncols; c++)
        PyList_SET_ITEM(distinct, c, Py_NewRef(known[c] ? known[c] : Py_None));
    PyObject *text = PyBytes_FromStringAndSize((const char *)o.buf, o.len);
    if (text != NULL)
        result = PyTuple_Pack(2, text, distinct);
    Py_XDECREF(text);
done:
    for (Py_ssize_t i = 0; i < made; i++)
        Py_XDECREF(seqs[i]);
    for (Py_ssize_t i = 0; known != NULL && i < ncols; i++)
        Py_XDECREF(known[i]);
    Py_XDECREF(distinct);
    PyMem_Free(known);
    PyMem_Free(seqs);
    PyMem_Free(o.buf);
    Py_DECREF(outer);
    return result;
}

/* id_range(ids) -> (min, max) | None: the least and greatest of `ids` when every
 * one is what the gateway makes (32 lowercase hex digits; compared as Python
 * compares them), None when one is not (or there are none). */
PyObject *
id_range(PyObject *Py_UNUSED(module), PyObject *ids)
{
    PyObject *seq = PySequence_Fast(ids, "ids must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq), *low = NULL, *high = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_COMPACT_ASCII(v)
                || PyUnicode_GET_LENGTH(v) != ID_LENGTH) {
            low = NULL;
            break;
        }
        const unsigned char *id = PyUnicode_1BYTE_DATA(v);
        int hex = 1;
        for (int k = 0; k < ID_LENGTH; k++)
            hex &= is_hex(id[k]);
        if (!hex) {
            low = NULL;
            break;
        }
        if (low == NULL) {
            low = high = v;
            continue;
        }
        if (memcmp(id, PyUnicode_1BYTE_DATA(low), ID_LENGTH) < 0)
            low = v;
        else if (memcmp(id, PyUnicode_1BYTE_DATA(high), ID_LENGTH) > 0)
            high = v;
    }
    PyObject *result = low == NULL ? Py_NewRef(Py_None) : PyTuple_Pack(2, low, high);
    Py_DECREF(seq);
    return result;
}
