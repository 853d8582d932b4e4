/* Histogram counts for the log writer's roll-ups and metrics (campusgate.observe.
 * _rowpack.log_counts, le_counts): each value's bucket worked out, no sort. */
#include "_rowpack.h"

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
PyObject *
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
PyObject *
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
