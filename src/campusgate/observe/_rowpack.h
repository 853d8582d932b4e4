/* What the files of campusgate.observe._rowpack share: the chunk format's constants
 * (described in _rowpack.c) and the functions the module exports. */
#ifndef CAMPUSGATE_ROWPACK_H
#define CAMPUSGATE_ROWPACK_H

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
#define NCOLUMNS 36      /* the record's fields (observe/record.py FIELDS) */

static const char MAGIC[4] = {'\0', 'C', 'G', 'R'};

enum { TAG_NONE = 0, TAG_FLOAT, TAG_INT, TAG_STR, TAG_REF, TAG_BYTES, TAG_MARSHAL };


/* _rowpack.c: a growing PyMem buffer, for the packer and the segment body. */
int grow_buffer(void **buf, Py_ssize_t *room, Py_ssize_t need);

/* _rowpack_pack.c: the worker's side. */
extern PyTypeObject PackerType;

/* _rowpack_read.c: the writer's side. */
int read_init(void);
PyObject *unpack(PyObject *module, PyObject *chunk);
PyObject *finish(PyObject *module, PyObject *args);

/* _rowpack_counts.c: histogram counts for the writer's stages. */
PyObject *log_counts(PyObject *module, PyObject *args);
PyObject *le_counts(PyObject *module, PyObject *args);

/* _rowpack_columns.c: the store sink's segment body in binary columns. */
PyObject *columns_body(PyObject *module, PyObject *args);
PyObject *id_range(PyObject *module, PyObject *ids);

#endif
