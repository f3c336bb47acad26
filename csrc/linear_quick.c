/* The quick linear row predictor (predictors._linear_quick has the same in Python): a
 * linear model's decision for one row of numbers, or None when it is too close to call
 * and the caller's slow path decides. */
#include "sqml.h"

typedef struct {
    PyObject_HEAD
    Py_ssize_t outputs, width;
    double *weights; /* outputs x width, folded */
    double *biases;
    double *fill;
    double tolerance, per_x, constant;
    PyObject *classes; /* tuple of SQL values, or None for regression */
} LinearQuick;

static void linear_dealloc(LinearQuick *self) {
    PyMem_Free(self->weights);
    PyMem_Free(self->biases);
    PyMem_Free(self->fill);
    Py_XDECREF(self->classes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int doubles_from(PyObject *sequence, double *out, Py_ssize_t count) {
    PyObject *fast = PySequence_Fast(sequence, "expected a sequence of floats");
    if (fast == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != count) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "wrong number of values");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* LinearQuick(weights (flat, outputs x width), biases, fill, classes or None, tolerance,
 * per_x, constant) */
static int linear_init(LinearQuick *self, PyObject *args, PyObject *kwargs) {
    (void)kwargs;
    PyObject *weights, *biases, *fill, *classes;
    double tolerance, per_x, constant;
    if (!PyArg_ParseTuple(args, "OOOOddd", &weights, &biases, &fill, &classes, &tolerance,
                          &per_x, &constant))
        return -1;
    Py_ssize_t outputs = PySequence_Size(biases), width = PySequence_Size(fill);
    if (outputs < 1 || width < 1 || PySequence_Size(weights) != outputs * width) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "inconsistent shapes");
        return -1;
    }
    if (classes == Py_None && outputs != 1) {
        PyErr_SetString(PyExc_ValueError, "a regression has one output");
        return -1;
    }
    if (classes != Py_None && (!PyTuple_Check(classes) ||
                               PyTuple_GET_SIZE(classes) != (outputs == 1 ? 2 : outputs))) {
        PyErr_SetString(PyExc_ValueError, "classes must be a tuple matching the outputs");
        return -1;
    }
    PyMem_Free(self->weights);
    PyMem_Free(self->biases);
    PyMem_Free(self->fill);
    self->weights = PyMem_Malloc(sizeof(double) * (size_t)(outputs * width));
    self->biases = PyMem_Malloc(sizeof(double) * (size_t)outputs);
    self->fill = PyMem_Malloc(sizeof(double) * (size_t)width);
    if (!self->weights || !self->biases || !self->fill) {
        PyErr_NoMemory();
        return -1;
    }
    if (doubles_from(weights, self->weights, outputs * width) < 0 ||
        doubles_from(biases, self->biases, outputs) < 0 ||
        doubles_from(fill, self->fill, width) < 0)
        return -1;
    self->outputs = outputs;
    self->width = width;
    self->tolerance = tolerance;
    self->per_x = per_x;
    self->constant = constant;
    Py_INCREF(classes);
    Py_XSETREF(self->classes, classes);
    return 0;
}

/* score = ((b + w0*x0) + w1*x1) + ...: the order of Python's sum(map(mul, w, x), b). */
static double linear_score(const double *w, double b, const double *x, Py_ssize_t n) {
    double score = b;
    for (Py_ssize_t i = 0; i < n; i++) {
        double term = w[i] * x[i];
        score += term;
    }
    return score;
}

/* The decision for numbers x; NULL (no exception) when unsure. */
static PyObject *linear_decide(LinearQuick *self, double *x) {
    Py_ssize_t n = self->width, k = self->outputs;
    double scores[64];
    double *s = k <= 64 ? scores : PyMem_Malloc(sizeof(double) * (size_t)k);
    PyObject *result = NULL;
    if (s == NULL) return NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        double total = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            s[j] = linear_score(self->weights + j * n, self->biases[j], x, n);
            total += s[j];
        }
        if (total - total == 0) break;
        if (attempt == 1) goto done;
        int missing = 0; /* NaN (missing) replaced by the imputer's value, then again */
        for (Py_ssize_t i = 0; i < n; i++) {
            if (x[i] != x[i]) {
                x[i] = self->fill[i];
                missing = 1;
            }
        }
        if (!missing) goto done;
    }
    double high = x[0], low = x[0];
    for (Py_ssize_t i = 1; i < n; i++) {
        if (x[i] > high) high = x[i];
        if (x[i] < low) low = x[i];
    }
    double bound = self->per_x * (high > -low ? high : -low) + self->constant;
    if (k == 1) {
        if (fabs(s[0]) > self->tolerance * bound) {
            if (self->classes == Py_None) {
                result = PyFloat_FromDouble(s[0]);
            } else {
                result = PyTuple_GET_ITEM(self->classes, s[0] > 0 ? 1 : 0);
                Py_INCREF(result);
            }
        }
    } else {
        Py_ssize_t best = 0;
        for (Py_ssize_t j = 1; j < k; j++)
            if (s[j] > s[best]) best = j;
        double runner_up = -HUGE_VAL;
        int seen = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            if (j == best) continue;
            if (!seen || s[j] > runner_up) runner_up = s[j];
            seen = 1;
        }
        if (s[best] - runner_up > 2 * self->tolerance * bound) {
            result = PyTuple_GET_ITEM(self->classes, best);
            Py_INCREF(result);
        }
    }
done:
    if (s != scores) PyMem_Free(s);
    return result;
}

/* One Python value as a double; 0 when it is not a number (NULL, text, a blob) or an
 * integer too large for a double: the caller's slow path decides. */
static int number_of(PyObject *value, double *out) {
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        *out = PyLong_AsDouble(value);
        if (*out == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return 1;
    }
    return 0;
}

/* quick(values) -> the prediction, or None when unsure */
static PyObject *linear_call(LinearQuick *self, PyObject *args, PyObject *kwargs) {
    PyObject *values;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "LinearQuick", 1, 1, &values)) return NULL;
    PyObject *fast = PySequence_Fast(values, "expected a sequence of values");
    if (fast == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject *result = NULL;
    if (n == self->width) {
        double small[128];
        double *x = n <= 128 ? small : PyMem_Malloc(sizeof(double) * (size_t)n);
        if (x == NULL) {
            Py_DECREF(fast);
            return PyErr_NoMemory();
        }
        PyObject **items = PySequence_Fast_ITEMS(fast);
        Py_ssize_t i = 0;
        for (; i < n; i++)
            if (!number_of(items[i], &x[i])) break;
        if (i == n) result = linear_decide(self, x);
        if (x != small) PyMem_Free(x);
    }
    Py_DECREF(fast);
    if (result == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

/* JSON number characters as predictions._NUMBER reads them: -?[0-9][-+.eE0-9]* */
static int number_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* One row at *cursor: an object with exactly `keys` (encoded as json.dumps writes them,
 * with the quotes) in order, or an array of as many numbers, written without spaces as
 * SQLite's json_object/json_array write them. 1 with the numbers in x and *cursor past the
 * row; 0 when it is any other shape (or a number float() would refuse). */
static int parse_row(const char **cursor, const char *end, PyObject *keys, Py_ssize_t n,
                     double *x) {
    const char *p = *cursor;
    if (p >= end || (*p != '{' && *p != '[')) return 0;
    int object = *p == '{';
    p++;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0) {
            if (p >= end || *p != ',') return 0;
            p++;
        }
        if (object) {
            Py_ssize_t key_size;
            const char *key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(keys, i), &key_size);
            if (key == NULL) {
                PyErr_Clear();
                return 0;
            }
            if (end - p < key_size + 1 || memcmp(p, key, (size_t)key_size) != 0 ||
                p[key_size] != ':')
                return 0;
            p += key_size + 1;
        }
        const char *start = p;
        if (p < end && *p == '-') p++;
        if (p >= end || *p < '0' || *p > '9') return 0;
        while (p < end && number_char(*p)) p++;
        char buffer[64];
        size_t length = (size_t)(p - start);
        if (length >= sizeof buffer) return 0;
        memcpy(buffer, start, length);
        buffer[length] = '\0';
        char *stop;
        x[i] = PyOS_string_to_double(buffer, &stop, NULL);
        if (x[i] == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (stop != buffer + length) return 0; /* float() would refuse it */
    }
    if (p >= end || *p != (object ? '}' : ']')) return 0;
    *cursor = p + 1;
    return 1;
}

/* The arguments (json, keys) of text() and batch(): 1 with json's UTF-8 in [*start, *end)
 * and the keys in *keys; 0 when the keys are not one per input (the answer is None); -1
 * with a Python exception set. */
static int json_arguments(LinearQuick *self, PyObject *args, PyObject **keys,
                          const char **start, const char **end) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyTuple_Type, keys)) return -1;
    if (PyTuple_GET_SIZE(*keys) != self->width) return 0;
    Py_ssize_t size;
    *start = PyUnicode_AsUTF8AndSize(text, &size);
    if (*start == NULL) return -1;
    *end = *start + size;
    return 1;
}

/* quick.text(json, keys) -> the prediction for one row as JSON text (see parse_row), or
 * None when the text is any other shape or the answer is unsure (the caller's slow path
 * decides). */
static PyObject *linear_text(LinearQuick *self, PyObject *args) {
    PyObject *keys;
    const char *p, *end;
    int ready = json_arguments(self, args, &keys, &p, &end);
    if (ready < 0) return NULL;
    if (ready == 0) Py_RETURN_NONE;
    Py_ssize_t n = self->width;
    double small[128];
    double *x = n <= 128 ? small : PyMem_Malloc(sizeof(double) * (size_t)n);
    if (x == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    if (parse_row(&p, end, keys, n, x) && p == end) result = linear_decide(self, x);
    if (x != small) PyMem_Free(x);
    if (result == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

/* quick.batch(json, keys) -> the predictions for a JSON array of rows (each as
 * parse_row reads them), or None when any row is another shape or unsure, or the array
 * is empty: the caller's slow path then decides every row. */
static PyObject *linear_batch(LinearQuick *self, PyObject *args) {
    PyObject *keys;
    const char *p, *end;
    int ready = json_arguments(self, args, &keys, &p, &end);
    if (ready < 0) return NULL;
    if (ready == 0) Py_RETURN_NONE;
    Py_ssize_t n = self->width;
    if (p >= end || *p != '[') Py_RETURN_NONE;
    p++;
    double small[128];
    double *x = n <= 128 ? small : PyMem_Malloc(sizeof(double) * (size_t)n);
    if (x == NULL) return PyErr_NoMemory();
    PyObject *results = PyList_New(0);
    int complete = 0;
    while (results != NULL) {
        if (!parse_row(&p, end, keys, n, x)) break;
        PyObject *value = linear_decide(self, x);
        if (value == NULL) break;
        int appended = PyList_Append(results, value);
        Py_DECREF(value);
        if (appended < 0) break;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        complete = p < end && *p == ']' && p + 1 == end;
        break;
    }
    if (x != small) PyMem_Free(x);
    if (results != NULL && !complete) Py_CLEAR(results);
    if (results == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return results;
}

static PyMethodDef linear_methods[] = {
    {"text", (PyCFunction)linear_text, METH_VARARGS,
     "text(json, keys) -> the prediction for a row as JSON text, or None when unsure"},
    {"batch", (PyCFunction)linear_batch, METH_VARARGS,
     "batch(json, keys) -> the predictions for a JSON array of rows, or None"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject sqml_linear_quick_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sqlite_ml._native.LinearQuick",
    .tp_basicsize = sizeof(LinearQuick),
    .tp_dealloc = (destructor)linear_dealloc,
    .tp_call = (ternaryfunc)linear_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "LinearQuick(weights, biases, fill, classes, tolerance, per_x, constant)",
    .tp_methods = linear_methods,
    .tp_init = (initproc)linear_init,
    .tp_new = PyType_GenericNew,
};

