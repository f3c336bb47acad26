/* The reader: rows of a statement straight into float64 buffers (Reader.fill), or as
 * Python values (Reader.rows). */
#include "sqml.h"

typedef struct {
    PyObject_HEAD
    sqlite3_stmt *stmt;
    int columns;
    int state; /* 0: no row yet, 1: a row is current (stepped, not consumed), 2: done */
} Reader;

/* Raise the sqlite3 module's exception for an SQLite error code, as Python's own
 * connections do, so that the domain code catches the same classes in every host. */
static int raise_sqlite_error(int rc, const char *message) {
    const char *name = "OperationalError";
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        name = "IntegrityError";
        break;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        name = "ProgrammingError";
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        name = "DatabaseError";
        break;
    case SQLITE_NOMEM:
        PyErr_NoMemory();
        return -1;
    default:
        break;
    }
    PyObject *module = PyImport_ImportModule("sqlite3");
    PyObject *kind = module ? PyObject_GetAttrString(module, name) : NULL;
    if (kind != NULL) PyErr_SetString(kind, message);
    Py_XDECREF(kind);
    Py_XDECREF(module);
    return -1;
}

/* A result column of the current row as a Python value (sqml_value_to_python's twin). */
static PyObject *column_to_python(sqlite3_stmt *stmt, int column) {
    switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_column_int64(stmt, column));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_column_double(stmt, column));
    case SQLITE_TEXT: {
        const char *text = (const char *)sqlite3_column_text(stmt, column);
        int size = sqlite3_column_bytes(stmt, column);
        if (text == NULL) return PyErr_NoMemory();
        return PyUnicode_DecodeUTF8(text, size, "replace");
    }
    case SQLITE_BLOB: {
        const void *blob = sqlite3_column_blob(stmt, column);
        int size = sqlite3_column_bytes(stmt, column);
        return PyBytes_FromStringAndSize(size ? (const char *)blob : "", size);
    }
    default:
        Py_RETURN_NONE;
    }
}

static int reader_error(Reader *self, int rc) {
    return raise_sqlite_error(rc, sqlite3_errmsg(sqlite3_db_handle(self->stmt)));
}

/* Bind a sequence (to ?, ?NNN) or a mapping (to :name, @name, $name) of Python values. */
static int bind_value(sqlite3_stmt *stmt, int index, PyObject *value) {
    int rc;
    if (value == Py_None) {
        rc = sqlite3_bind_null(stmt, index);
    } else if (PyLong_Check(value)) {
        long long number = PyLong_AsLongLong(value);
        if (number == -1 && PyErr_Occurred()) return -1;
        rc = sqlite3_bind_int64(stmt, index, number);
    } else if (PyFloat_Check(value)) {
        rc = sqlite3_bind_double(stmt, index, PyFloat_AS_DOUBLE(value));
    } else if (PyUnicode_Check(value)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL) return -1;
        rc = sqlite3_bind_text64(stmt, index, text, (sqlite3_uint64)size, SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
    } else if (PyObject_CheckBuffer(value)) {
        Py_buffer view;
        if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0) return -1;
        rc = sqlite3_bind_blob64(stmt, index, view.len ? view.buf : "",
                                 (sqlite3_uint64)view.len, SQLITE_TRANSIENT);
        PyBuffer_Release(&view);
    } else {
        PyErr_Format(PyExc_TypeError, "cannot bind a %s as an SQL parameter",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (rc != SQLITE_OK) return raise_sqlite_error(rc, sqlite3_errstr(rc));
    return 0;
}

static int bind_parameters(sqlite3_stmt *stmt, PyObject *parameters) {
    int count = sqlite3_bind_parameter_count(stmt);
    if (parameters == NULL || parameters == Py_None) {
        if (count == 0) return 0;
        return raise_sqlite_error(SQLITE_RANGE, "the statement has parameters but none given");
    }
    if (PyDict_Check(parameters)) {
        for (int i = 1; i <= count; i++) {
            const char *name = sqlite3_bind_parameter_name(stmt, i);
            if (name == NULL || name[0] == '?') {
                return raise_sqlite_error(SQLITE_RANGE, "positional parameter with a mapping");
            }
            PyObject *value = PyDict_GetItemString(parameters, name + 1); /* borrowed */
            if (value == NULL) {
                PyErr_Format(PyExc_KeyError, "no value for the parameter %s", name);
                return -1;
            }
            if (bind_value(stmt, i, value) < 0) return -1;
        }
        return 0;
    }
    PyObject *sequence = PySequence_Fast(parameters, "parameters must be a sequence or dict");
    if (sequence == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(sequence) != count) {
        Py_DECREF(sequence);
        PyErr_Format(PyExc_ValueError,
                     "the statement uses %d parameters, %zd were supplied", count,
                     PySequence_Fast_GET_SIZE(sequence));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (bind_value(stmt, i + 1, PySequence_Fast_GET_ITEM(sequence, i)) < 0) {
            Py_DECREF(sequence);
            return -1;
        }
    }
    Py_DECREF(sequence);
    return 0;
}

/* Make a row current if there is one: 1 when a row is current, 0 when done, -1 on error. */
static int reader_advance(Reader *self) {
    if (self->state == 1) return 1;
    if (self->state == 2 || self->stmt == NULL) return 0;
    int rc = sqlite3_step(self->stmt);
    if (rc == SQLITE_ROW) {
        self->state = 1;
        return 1;
    }
    self->state = 2;
    if (rc == SQLITE_DONE) return 0;
    return reader_error(self, rc);
}

static void reader_finalize(Reader *self) {
    if (self->stmt != NULL) {
        sqlite3_finalize(self->stmt);
        self->stmt = NULL;
    }
    self->state = 2;
}

static int reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    (void)kwargs;
    PyObject *handle, *parameters = NULL;
    const char *sql;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "Os#|O", &handle, &sql, &size, &parameters)) return -1;
    sqlite3 *db = sqml_connection(handle);
    if (db == NULL) return -1;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, (int)size, &self->stmt, &tail);
    if (rc != SQLITE_OK) return raise_sqlite_error(rc, sqlite3_errmsg(db));
    if (self->stmt == NULL) return raise_sqlite_error(SQLITE_MISUSE, "no SQL statement given");
    while (tail != NULL && *tail && (*tail == ';' || Py_ISSPACE(*tail))) tail++;
    if (tail != NULL && *tail) {
        sqlite3_finalize(self->stmt);
        self->stmt = NULL;
        return raise_sqlite_error(SQLITE_MISUSE, "only one SQL statement can be read at a time");
    }
    self->columns = sqlite3_column_count(self->stmt);
    self->state = 0;
    if (bind_parameters(self->stmt, parameters) < 0) {
        reader_finalize(self);
        return -1;
    }
    return 0;
}

static void reader_dealloc(Reader *self) {
    reader_finalize(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* fill(matrix[, ids]) -> (rows, stopped_at_text)
 * Fills rows of `matrix` (C-contiguous float64, shape (n, width)) from the statement's
 * columns; NULL is NaN. With `ids` (int64, n), column 0 goes there as an integer and the
 * other columns into the matrix. Stops early at a row holding TEXT or a BLOB in a matrix
 * column: that row stays current for rows(), and stopped_at_text is True. */
static PyObject *reader_fill(Reader *self, PyObject *args) {
    PyObject *matrix_object, *ids_object = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &matrix_object, &ids_object)) return NULL;
    Py_buffer matrix, ids;
    int with_ids = ids_object != Py_None;
    if (PyObject_GetBuffer(matrix_object, &matrix, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE |
                                                       PyBUF_FORMAT) < 0)
        return NULL;
    int first = with_ids ? 1 : 0;
    int width = self->columns - first;
    if (matrix.itemsize != 8 || strcmp(matrix.format ? matrix.format : "B", "d") != 0 ||
        width <= 0 || matrix.ndim != 2 || matrix.shape[1] != width) {
        PyBuffer_Release(&matrix);
        PyErr_SetString(PyExc_ValueError, "matrix must be C-contiguous float64 rows of the "
                                          "statement's width");
        return NULL;
    }
    Py_ssize_t capacity = matrix.shape[0];
    if (with_ids) {
        if (PyObject_GetBuffer(ids_object, &ids, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE |
                                                     PyBUF_FORMAT) < 0) {
            PyBuffer_Release(&matrix);
            return NULL;
        }
        const char *format = ids.format ? ids.format : "B";
        if (ids.itemsize != 8 || (strcmp(format, "q") != 0 && strcmp(format, "l") != 0) ||
            ids.len / 8 < capacity) {
            PyBuffer_Release(&matrix);
            PyBuffer_Release(&ids);
            PyErr_SetString(PyExc_ValueError, "ids must be int64 with a slot per matrix row");
            return NULL;
        }
    }
    double *out = (double *)matrix.buf;
    long long *out_ids = with_ids ? (long long *)ids.buf : NULL;
    Py_ssize_t rows = 0;
    int stopped_at_text = 0, failed = 0, rc = SQLITE_OK;
    sqlite3_stmt *stmt = self->stmt;
    Py_BEGIN_ALLOW_THREADS
    while (rows < capacity && self->state != 2 && stmt != NULL) {
        if (self->state == 0) {
            rc = sqlite3_step(stmt);
            if (rc != SQLITE_ROW) {
                self->state = 2;
                failed = rc != SQLITE_DONE;
                break;
            }
            self->state = 1;
        }
        double *row = out + rows * width;
        int text = 0;
        for (int c = 0; c < width; c++) {
            /* One sqlite3_column_* call per cell: each takes the connection's mutex. */
            sqlite3_value *cell = sqlite3_column_value(stmt, c + first);
            int type = sqlite3_value_type(cell);
            if (type == SQLITE_FLOAT || type == SQLITE_INTEGER) {
                row[c] = sqlite3_value_double(cell);
            } else if (type == SQLITE_NULL) {
                row[c] = NAN;
            } else {
                text = 1;
                break;
            }
        }
        if (text) {
            stopped_at_text = 1;
            break;
        }
        if (out_ids) out_ids[rows] = sqlite3_column_int64(stmt, 0);
        rows++;
        self->state = 0;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&matrix);
    if (with_ids) PyBuffer_Release(&ids);
    if (failed) {
        reader_error(self, rc);
        return NULL;
    }
    return Py_BuildValue("nO", rows, stopped_at_text ? Py_True : Py_False);
}

/* rows(n) -> list of up to n rows, each a list of Python values (the current row first). */
static PyObject *reader_rows(Reader *self, PyObject *args) {
    Py_ssize_t wanted;
    if (!PyArg_ParseTuple(args, "n", &wanted)) return NULL;
    PyObject *rows = PyList_New(0);
    if (rows == NULL) return NULL;
    while (PyList_GET_SIZE(rows) < wanted) {
        int current = reader_advance(self);
        if (current < 0) {
            Py_DECREF(rows);
            return NULL;
        }
        if (current == 0) break;
        PyObject *row = PyList_New(self->columns);
        if (row == NULL) {
            Py_DECREF(rows);
            return NULL;
        }
        for (int c = 0; c < self->columns; c++) {
            PyObject *value = column_to_python(self->stmt, c);
            if (value == NULL) {
                Py_DECREF(row);
                Py_DECREF(rows);
                return NULL;
            }
            PyList_SET_ITEM(row, c, value);
        }
        self->state = 0;
        int appended = PyList_Append(rows, row);
        Py_DECREF(row);
        if (appended < 0) {
            Py_DECREF(rows);
            return NULL;
        }
    }
    return rows;
}

static PyObject *reader_close(Reader *self, PyObject *unused) {
    (void)unused;
    reader_finalize(self);
    Py_RETURN_NONE;
}

static PyObject *reader_get_columns(Reader *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->columns);
}

static PyObject *reader_get_names(Reader *self, void *closure) {
    (void)closure;
    PyObject *names = PyTuple_New(self->columns);
    if (names == NULL) return NULL;
    for (int c = 0; c < self->columns; c++) {
        const char *name = self->stmt ? sqlite3_column_name(self->stmt, c) : NULL;
        PyObject *text = PyUnicode_DecodeUTF8(name ? name : "", name ? strlen(name) : 0, "replace");
        if (text == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, c, text);
    }
    return names;
}

static PyObject *reader_get_done(Reader *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->state == 2);
}

static PyMethodDef reader_methods[] = {
    {"fill", (PyCFunction)reader_fill, METH_VARARGS,
     "fill(matrix[, ids]) -> (rows, stopped_at_text)"},
    {"rows", (PyCFunction)reader_rows, METH_VARARGS, "rows(n) -> list of rows as lists"},
    {"close", (PyCFunction)reader_close, METH_NOARGS, "finalize the statement"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"columns", (getter)reader_get_columns, NULL, "number of result columns", NULL},
    {"done", (getter)reader_get_done, NULL, "whether every row was read", NULL},
    {"names", (getter)reader_get_names, NULL, "the result columns' names", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject sqml_reader_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sqlite_ml._native.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reader(handle, sql[, parameters]): rows of one statement, read in C",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
};

