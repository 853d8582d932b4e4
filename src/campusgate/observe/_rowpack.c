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
#include "_rowpack.h"

/* Grow the PyMem buffer `*buf` of `*room` bytes (doubling) to hold `need`. */
int
grow_buffer(void **buf, Py_ssize_t *room, Py_ssize_t need)
{
    Py_ssize_t size = *room ? *room : 4096;
    while (size < need)
        size *= 2;
    void *grown = PyMem_Realloc(*buf, size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = grown;
    *room = size;
    return 0;
}

static PyMethodDef module_methods[] = {
    {"unpack", unpack, METH_O,
     "unpack(chunk) -> list of rows: what Packer.record packed, as tuples."},
    {"finish", finish, METH_VARARGS,
     "finish(chunks, now, names=None) -> (columns, extras): the chunks' records as "
     "columns (names: a dict of canonical name strings, kept across batches)."},
    {"log_counts", log_counts, METH_VARARGS,
     "log_counts(values, min_ms, inv_min, inv_log_gamma, max_index, target)."},
    {"columns_body", columns_body, METH_VARARGS,
     "columns_body(columns, names_json, dumps) -> (bytes, distinct): a segment body "
     "(format 3) and the distinct values of the columns that have few."},
    {"id_range", id_range, METH_O,
     "id_range(ids) -> (min, max) or None: when every id is 32 lowercase hex digits."},
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
    if (read_init() < 0)
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
