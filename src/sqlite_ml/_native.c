/*
 * sqlite-ml's native layer: one shared object that is both a CPython extension module
 * (sqlite_ml._native) and a SQLite loadable extension.
 *
 * It never links SQLite: every SQLite call goes through the sqlite3_api_routines table
 * that the SQLite library loading it hands to an entry point (sqlite3ext.h), so it always
 * works with the very library the connection uses.
 *
 *  - sqlite3_sqmlbind_init: the entry point sqlite_ml.register() loads on a stdlib
 *    connection (through the connection's own sqlite3_load_extension). It only records the
 *    API table; the functions are then registered from Python with create_function().
 *  - sqlite3_extension_init: the entry point a host such as the sqlite3 shell uses (.load).
 *
 * The logic stays in Python: each SQL function calls a Python callable with the GIL held;
 * an exception becomes an SQL error carrying the text our on_error callable gives.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#define SMALL_ARGS 24

/* ------------------------------------------------------------------------------------ */
/* API table                                                                            */

static int api_ready(void) { return sqlite3_api != NULL; }

/* Record the API table of the library loading us. A second, different SQLite library in
 * the same process is refused: two copies of SQLite on one file lose each other's locks. */
static int adopt_api(const sqlite3_api_routines *api, char **error) {
    if (sqlite3_api != NULL && sqlite3_api != api && sqlite3_api->libversion != api->libversion) {
        if (error && api->mprintf) {
            *error = api->mprintf(
                "sqlite-ml: refusing to bind to a second SQLite library (%s) in a process that "
                "already uses another one (%s); two SQLite copies on one file can lose locks",
                api->libversion(), sqlite3_api->libversion());
        }
        return SQLITE_ERROR;
    }
    sqlite3_api = api;
    return SQLITE_OK;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_sqmlbind_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    (void)db;
    return adopt_api(api, error);
}

/* ------------------------------------------------------------------------------------ */
/* Values between SQLite and Python (the GIL is held)                                   */

static PyObject *value_to_python(sqlite3_value *value) {
    switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_value_int64(value));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_value_double(value));
    case SQLITE_TEXT: {
        const char *text = (const char *)sqlite3_value_text(value);
        int size = sqlite3_value_bytes(value);
        if (text == NULL) return PyErr_NoMemory();
        return PyUnicode_DecodeUTF8(text, size, "replace");
    }
    case SQLITE_BLOB: {
        const void *blob = sqlite3_value_blob(value);
        int size = sqlite3_value_bytes(value);
        return PyBytes_FromStringAndSize(size ? (const char *)blob : "", size);
    }
    default:
        Py_RETURN_NONE;
    }
}

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

/* 0 on success; -1 with a Python exception set. */
static int set_result(sqlite3_context *context, PyObject *result) {
    if (result == Py_None) {
        sqlite3_result_null(context);
    } else if (PyUnicode_Check(result)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(result, &size);
        if (text == NULL) return -1;
        sqlite3_result_text64(context, text, (sqlite3_uint64)size, SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (PyLong_Check(result)) {
        long long number = PyLong_AsLongLong(result);
        if (number == -1 && PyErr_Occurred()) return -1;
        sqlite3_result_int64(context, number);
    } else if (PyFloat_Check(result)) {
        sqlite3_result_double(context, PyFloat_AS_DOUBLE(result));
    } else if (PyObject_CheckBuffer(result)) {
        Py_buffer view;
        if (PyObject_GetBuffer(result, &view, PyBUF_SIMPLE) < 0) return -1;
        sqlite3_result_blob64(context, view.len ? view.buf : "", (sqlite3_uint64)view.len,
                              SQLITE_TRANSIENT);
        PyBuffer_Release(&view);
    } else {
        PyErr_Format(PyExc_TypeError, "cannot return a %s to SQL", Py_TYPE(result)->tp_name);
        return -1;
    }
    return 0;
}

/* The pending Python exception as our message (via on_error), in a new sqlite3_malloc'd
 * string; clears the exception. *nomem is set for MemoryError. */
static char *take_error(PyObject *on_error, const char *name, int *nomem) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    *nomem = type != NULL && PyErr_GivenExceptionMatches(type, PyExc_MemoryError);
    char *message = NULL;
    if (!*nomem && on_error != NULL && value != NULL) {
        PyObject *text = PyObject_CallOneArg(on_error, value);
        if (text != NULL && PyUnicode_Check(text)) {
            const char *utf8 = PyUnicode_AsUTF8(text);
            if (utf8 != NULL) message = sqlite3_mprintf("%s", utf8);
        }
        Py_XDECREF(text);
        PyErr_Clear();
    }
    if (message == NULL && !*nomem) {
        message = sqlite3_mprintf("%s: unexpected error in sqlite-ml", name);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return message;
}

/* Decrement references from a SQLite destructor. At interpreter shutdown (or after it)
 * Python objects are left alone: SQLite may close a connection after Python is gone. */
static void release_objects(PyObject **objects, int count) {
    if (!Py_IsInitialized()) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    for (int i = 0; i < count; i++) Py_CLEAR(objects[i]);
    PyGILState_Release(gil);
}

/* ------------------------------------------------------------------------------------ */
/* Scalar functions                                                                     */

typedef struct {
    PyObject *objects[2]; /* call, on_error */
    char name[1];         /* allocated longer */
} Function;

static void function_call(sqlite3_context *context, int argc, sqlite3_value **argv) {
    Function *function = (Function *)sqlite3_user_data(context);
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *small[SMALL_ARGS];
    PyObject **args = argc <= SMALL_ARGS ? small : PyMem_Malloc(sizeof(PyObject *) * argc);
    PyObject *result = NULL;
    int converted = 0;
    if (args == NULL) {
        PyErr_NoMemory();
    } else {
        for (; converted < argc; converted++) {
            args[converted] = value_to_python(argv[converted]);
            if (args[converted] == NULL) break;
        }
        if (converted == argc) {
            result = PyObject_Vectorcall(function->objects[0], args, (size_t)argc, NULL);
        }
        for (int i = 0; i < converted; i++) Py_DECREF(args[i]);
        if (args != small) PyMem_Free(args);
    }
    if (result != NULL) {
        if (set_result(context, result) < 0) Py_CLEAR(result);
        else Py_DECREF(result);
    }
    if (result == NULL) {
        int nomem;
        char *message = take_error(function->objects[1], function->name, &nomem);
        if (nomem || message == NULL) {
            sqlite3_result_error_nomem(context);
        } else {
            sqlite3_result_error(context, message, -1);
        }
        sqlite3_free(message);
    }
    PyGILState_Release(gil);
}

static void function_destroy(void *data) {
    Function *function = (Function *)data;
    release_objects(function->objects, 2);
    PyMem_RawFree(function);
}

static int check_api(void) {
    if (!api_ready()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "sqlite-ml's native extension was not loaded into any SQLite library");
        return -1;
    }
    return 0;
}

static sqlite3 *handle_from(PyObject *handle) {
    void *db = PyLong_AsVoidPtr(handle);
    if (db == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "no database handle");
    }
    return (sqlite3 *)db;
}

static PyObject *native_create_function(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *call, *on_error;
    const char *name;
    int nargs, flags;
    if (!PyArg_ParseTuple(args, "OsiiOO", &handle, &name, &nargs, &flags, &call, &on_error))
        return NULL;
    if (check_api() < 0) return NULL;
    sqlite3 *db = handle_from(handle);
    if (db == NULL) return NULL;
    if (!PyCallable_Check(call) || !PyCallable_Check(on_error)) {
        PyErr_SetString(PyExc_TypeError, "call and on_error must be callable");
        return NULL;
    }
    size_t length = strlen(name);
    Function *function = PyMem_RawMalloc(sizeof(Function) + length);
    if (function == NULL) return PyErr_NoMemory();
    memcpy(function->name, name, length + 1);
    Py_INCREF(call);
    Py_INCREF(on_error);
    function->objects[0] = call;
    function->objects[1] = on_error;
    /* On failure SQLite calls the destructor itself. */
    int rc = sqlite3_create_function_v2(db, name, nargs, flags | SQLITE_UTF8, function,
                                        function_call, NULL, NULL, function_destroy);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "could not register %s (SQLite error %d: %s)", name, rc,
                     sqlite3_errstr(rc));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------ */
/* The reader: rows of a statement straight into float64 buffers                        */

typedef struct {
    PyObject_HEAD
    sqlite3_stmt *stmt;
    int columns;
    int state; /* 0: no row yet, 1: a row is current (stepped, not consumed), 2: done */
} Reader;

static PyTypeObject ReaderType;

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
    if (check_api() < 0) return -1;
    sqlite3 *db = handle_from(handle);
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

static PyTypeObject ReaderType = {
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

/* ------------------------------------------------------------------------------------ */
/* sqml_predict_table: an eponymous virtual table fed by a Python generator of chunks   */

enum { COL_ROW_ID, COL_PREDICTION, COL_PROBABILITIES, COL_EXPERIMENT, COL_SOURCE };

typedef struct {
    PyObject *objects[2]; /* chunks(experiment, source) -> iterator, on_error */
} TableModule;

typedef struct {
    sqlite3_vtab base;
    TableModule *module;
} Table;

typedef struct {
    sqlite3_vtab_cursor base;
    PyObject *iterator;
    PyObject *chunk; /* (ids, predictions, probabilities) */
    Py_buffer ids;
    Py_buffer numbers; /* predictions when they are numbers */
    int has_ids, has_numbers;
    PyObject *texts;         /* predictions when they are text (a list of str) */
    PyObject *probabilities; /* list of str, or None */
    Py_ssize_t size, index;
    int eof;
} TableCursor;

static int table_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **error) {
    (void)argc;
    (void)argv;
    (void)error;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(row_id INTEGER, prediction, "
                                      "probabilities TEXT, experiment HIDDEN, source HIDDEN)");
    if (rc != SQLITE_OK) return rc;
#ifdef SQLITE_VTAB_DIRECTONLY
    /* Not from views or triggers: a SELECT source runs as a statement of its own, where
     * the writers' SQLITE_DIRECTONLY no longer sees that a database's schema asked for it,
     * so a view could otherwise make sqml_train or sqml_load_dataset write. */
    if (sqlite3_libversion_number() >= 3031000) {
        rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
        if (rc != SQLITE_OK) return rc;
    }
#endif
    Table *table = sqlite3_malloc(sizeof(Table));
    if (table == NULL) return SQLITE_NOMEM;
    memset(table, 0, sizeof(Table));
    table->module = (TableModule *)aux;
    *out = &table->base;
    return SQLITE_OK;
}

static int table_disconnect(sqlite3_vtab *vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int table_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
    (void)vtab;
    int slots[2] = {-1, -1}, unusable = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[i];
        int column = constraint->iColumn;
        if (column != COL_EXPERIMENT && column != COL_SOURCE) continue;
        if (!constraint->usable || constraint->op != SQLITE_INDEX_CONSTRAINT_EQ) {
            unusable = 1;
            continue;
        }
        slots[column - COL_EXPERIMENT] = i;
    }
    if (slots[0] < 0 || slots[1] < 0) {
        if (unusable) return SQLITE_CONSTRAINT; /* try another plan */
        info->idxNum = 0;                       /* xFilter explains what is missing */
        info->estimatedCost = 1e12;
        return SQLITE_OK;
    }
    for (int k = 0; k < 2; k++) {
        info->aConstraintUsage[slots[k]].argvIndex = k + 1;
        info->aConstraintUsage[slots[k]].omit = 1;
    }
    info->idxNum = 1;
    /* Probabilities cost a predict_proba and JSON per row: only when a query reads them. */
    if (info->colUsed & ((sqlite3_uint64)1 << COL_PROBABILITIES)) info->idxNum |= 2;
    info->estimatedCost = 1e6;
    info->estimatedRows = 1000000;
    return SQLITE_OK;
}

static int table_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
    (void)vtab;
    TableCursor *cursor = sqlite3_malloc(sizeof(TableCursor));
    if (cursor == NULL) return SQLITE_NOMEM;
    memset(cursor, 0, sizeof(TableCursor));
    cursor->eof = 1;
    *out = &cursor->base;
    return SQLITE_OK;
}

/* The GIL is held. */
static void cursor_drop_chunk(TableCursor *cursor) {
    if (cursor->has_ids) PyBuffer_Release(&cursor->ids);
    if (cursor->has_numbers) PyBuffer_Release(&cursor->numbers);
    cursor->has_ids = cursor->has_numbers = 0;
    Py_CLEAR(cursor->texts);
    Py_CLEAR(cursor->probabilities);
    Py_CLEAR(cursor->chunk);
    cursor->size = cursor->index = 0;
}

static int cursor_fail(TableCursor *cursor) {
    Table *table = (Table *)cursor->base.pVtab;
    int nomem;
    char *message = take_error(table->module->objects[1], "sqml_predict_table", &nomem);
    if (nomem || message == NULL) return SQLITE_NOMEM;
    sqlite3_free(table->base.zErrMsg);
    table->base.zErrMsg = message;
    return SQLITE_ERROR;
}

/* Move to the next non-empty chunk, or to the end. The GIL is held. */
static int cursor_next_chunk(TableCursor *cursor) {
    for (;;) {
        cursor_drop_chunk(cursor);
        PyObject *chunk = PyIter_Next(cursor->iterator);
        if (chunk == NULL) {
            if (PyErr_Occurred()) return cursor_fail(cursor);
            cursor->eof = 1;
            return SQLITE_OK;
        }
        cursor->chunk = chunk;
        if (!PyTuple_Check(chunk) || PyTuple_GET_SIZE(chunk) != 3) {
            PyErr_SetString(PyExc_TypeError, "a chunk must be (ids, predictions, probabilities)");
            return cursor_fail(cursor);
        }
        PyObject *ids = PyTuple_GET_ITEM(chunk, 0);
        PyObject *predictions = PyTuple_GET_ITEM(chunk, 1);
        PyObject *probabilities = PyTuple_GET_ITEM(chunk, 2);
        if (PyObject_GetBuffer(ids, &cursor->ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            return cursor_fail(cursor);
        cursor->has_ids = 1;
        if (cursor->ids.itemsize != 8 || cursor->ids.format == NULL ||
            (strcmp(cursor->ids.format, "q") != 0 && strcmp(cursor->ids.format, "l") != 0)) {
            PyErr_SetString(PyExc_TypeError, "chunk ids must be int64");
            return cursor_fail(cursor);
        }
        cursor->size = cursor->ids.len / 8;
        if (PyList_Check(predictions)) {
            Py_INCREF(predictions);
            cursor->texts = predictions;
            if (PyList_GET_SIZE(predictions) != cursor->size) {
                PyErr_SetString(PyExc_ValueError, "chunk predictions and ids differ in length");
                return cursor_fail(cursor);
            }
        } else {
            if (PyObject_GetBuffer(predictions, &cursor->numbers,
                                   PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
                return cursor_fail(cursor);
            cursor->has_numbers = 1;
            if (cursor->numbers.itemsize != 8 || cursor->numbers.format == NULL ||
                strcmp(cursor->numbers.format, "d") != 0 ||
                cursor->numbers.len / 8 != cursor->size) {
                PyErr_SetString(PyExc_TypeError, "chunk predictions must be float64 per id");
                return cursor_fail(cursor);
            }
        }
        if (probabilities != Py_None) {
            if (!PyList_Check(probabilities) || PyList_GET_SIZE(probabilities) != cursor->size) {
                PyErr_SetString(PyExc_TypeError, "chunk probabilities must be a list per id");
                return cursor_fail(cursor);
            }
            Py_INCREF(probabilities);
            cursor->probabilities = probabilities;
        }
        if (cursor->size > 0) {
            cursor->eof = 0;
            return SQLITE_OK;
        }
    }
}

static int table_close(sqlite3_vtab_cursor *base) {
    TableCursor *cursor = (TableCursor *)base;
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        cursor_drop_chunk(cursor);
        Py_CLEAR(cursor->iterator);
        PyGILState_Release(gil);
    }
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int table_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                        sqlite3_value **argv) {
    (void)plan_text;
    TableCursor *cursor = (TableCursor *)base;
    Table *table = (Table *)base->pVtab;
    if (!(plan & 1) || argc != 2) {
        sqlite3_free(table->base.zErrMsg);
        table->base.zErrMsg = sqlite3_mprintf(
            "sqml_predict_table needs an experiment and a source: "
            "SELECT * FROM sqml_predict_table('experiment', 'table, view or SELECT')");
        return SQLITE_ERROR;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    cursor_drop_chunk(cursor);
    Py_CLEAR(cursor->iterator);
    cursor->eof = 1;
    int rc = SQLITE_OK;
    PyObject *experiment = value_to_python(argv[0]);
    PyObject *source = experiment ? value_to_python(argv[1]) : NULL;
    PyObject *chunks = NULL;
    if (source != NULL) {
        chunks = PyObject_CallFunctionObjArgs(table->module->objects[0], experiment, source,
                                              (plan & 2) ? Py_True : Py_False, NULL);
    }
    Py_XDECREF(experiment);
    Py_XDECREF(source);
    if (chunks != NULL) {
        cursor->iterator = PyObject_GetIter(chunks);
        Py_DECREF(chunks);
    }
    if (cursor->iterator == NULL) {
        rc = cursor_fail(cursor);
    } else {
        rc = cursor_next_chunk(cursor);
    }
    PyGILState_Release(gil);
    return rc;
}

static int table_next(sqlite3_vtab_cursor *base) {
    TableCursor *cursor = (TableCursor *)base;
    if (++cursor->index < cursor->size) return SQLITE_OK;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = cursor_next_chunk(cursor);
    PyGILState_Release(gil);
    return rc;
}

static int table_eof(sqlite3_vtab_cursor *base) { return ((TableCursor *)base)->eof; }

static int result_text_item(sqlite3_context *context, PyObject *list, Py_ssize_t index) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *item = PyList_GET_ITEM(list, index);
    int rc = SQLITE_OK;
    if (item == Py_None) {
        sqlite3_result_null(context);
    } else if (set_result(context, item) < 0) {
        PyErr_Clear();
        sqlite3_result_error(context, "sqml_predict_table: a value cannot be shown in SQL", -1);
        rc = SQLITE_ERROR;
    }
    PyGILState_Release(gil);
    return rc;
}

static int table_column(sqlite3_vtab_cursor *base, sqlite3_context *context, int column) {
    TableCursor *cursor = (TableCursor *)base;
    Py_ssize_t i = cursor->index;
    switch (column) {
    case COL_ROW_ID:
        sqlite3_result_int64(context, ((long long *)cursor->ids.buf)[i]);
        return SQLITE_OK;
    case COL_PREDICTION:
        if (cursor->has_numbers) {
            double value = ((double *)cursor->numbers.buf)[i];
            if (isnan(value)) sqlite3_result_null(context);
            else sqlite3_result_double(context, value);
            return SQLITE_OK;
        }
        return result_text_item(context, cursor->texts, i);
    case COL_PROBABILITIES:
        if (cursor->probabilities == NULL) {
            sqlite3_result_null(context);
            return SQLITE_OK;
        }
        return result_text_item(context, cursor->probabilities, i);
    default: /* the hidden arguments */
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
}

static int table_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
    TableCursor *cursor = (TableCursor *)base;
    *rowid = ((long long *)cursor->ids.buf)[cursor->index];
    return SQLITE_OK;
}

static sqlite3_module predict_table_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: used as a table-valued function */
    .xConnect = table_connect,
    .xBestIndex = table_best_index,
    .xDisconnect = table_disconnect,
    .xDestroy = table_disconnect,
    .xOpen = table_open,
    .xClose = table_close,
    .xFilter = table_filter,
    .xNext = table_next,
    .xEof = table_eof,
    .xColumn = table_column,
    .xRowid = table_rowid,
};

static void table_module_destroy(void *data) {
    TableModule *module = (TableModule *)data;
    release_objects(module->objects, 2);
    PyMem_RawFree(module);
}

static PyObject *native_create_predict_table(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *chunks, *on_error;
    const char *name;
    if (!PyArg_ParseTuple(args, "OsOO", &handle, &name, &chunks, &on_error)) return NULL;
    if (check_api() < 0) return NULL;
    sqlite3 *db = handle_from(handle);
    if (db == NULL) return NULL;
    TableModule *table_module = PyMem_RawMalloc(sizeof(TableModule));
    if (table_module == NULL) return PyErr_NoMemory();
    Py_INCREF(chunks);
    Py_INCREF(on_error);
    table_module->objects[0] = chunks;
    table_module->objects[1] = on_error;
    int rc = sqlite3_create_module_v2(db, name, &predict_table_module, table_module,
                                      table_module_destroy);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "could not register %s (SQLite error %d)", name, rc);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------ */
/* Module                                                                               */

static PyObject *native_api_ready(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return PyBool_FromLong(api_ready());
}

/* The address of sqlite3_libversion in the library we are bound to, to compare with the
 * one the connection's library exports. */
static PyObject *native_libversion_address(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    if (check_api() < 0) return NULL;
    return PyLong_FromVoidPtr((void *)sqlite3_api->libversion);
}

static PyObject *native_libversion(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    if (check_api() < 0) return NULL;
    return PyUnicode_FromString(sqlite3_libversion());
}

/* Where the fields the second-library check reads sit in the API table, so that a test
 * can hand the entry point a table from "another library" (no second SQLite is needed). */
static PyObject *native_api_layout(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    return Py_BuildValue("{s:n,s:n,s:n}", "size", (Py_ssize_t)sizeof(sqlite3_api_routines),
                         "libversion", (Py_ssize_t)offsetof(sqlite3_api_routines, libversion),
                         "mprintf", (Py_ssize_t)offsetof(sqlite3_api_routines, mprintf));
}

/* What a host connection object reports about its database handle. */
static PyObject *native_connection_state(PyObject *module, PyObject *handle_object) {
    (void)module;
    if (check_api() < 0) return NULL;
    sqlite3 *db = handle_from(handle_object);
    if (db == NULL) return NULL;
    return Py_BuildValue("{s:O,s:L,s:L}", "in_transaction",
                         sqlite3_get_autocommit(db) ? Py_False : Py_True, "total_changes",
                         (long long)sqlite3_total_changes(db), "last_insert_rowid",
                         (long long)sqlite3_last_insert_rowid(db));
}

/* The change probe of prediction.DeployedModels (binding.change_probe has the ctypes
 * twin): a reading that moves whenever the main database may have changed, or None where
 * it cannot vouch (no transaction open yet; an explicit transaction that writes). */
static PyObject *native_change_reading(PyObject *module, PyObject *handle_object) {
    (void)module;
    if (check_api() < 0) return NULL;
    sqlite3 *db = handle_from(handle_object);
    if (db == NULL) return NULL;
#if SQLITE_VERSION_NUMBER >= 3034000
    int state = sqlite3_txn_state(db, "main");
    unsigned int version = 0;
    if (state <= 0 || sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &version))
        Py_RETURN_NONE;
    if (state == SQLITE_TXN_WRITE) {
        if (!sqlite3_get_autocommit(db)) Py_RETURN_NONE;
        return PyLong_FromLongLong(-((long long)version << 32) -
                                   (long long)sqlite3_total_changes(db) - 1);
    }
    return PyLong_FromUnsignedLong(version);
#else
    Py_RETURN_NONE;
#endif
}

/* ------------------------------------------------------------------------------------ */
/* The quick linear row predictor (predictors._linear_quick has the same in Python)       */

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

/* quick.text(json, keys) -> the prediction for one row as JSON text (see parse_row), or
 * None when the text is any other shape or the answer is unsure (the caller's slow path
 * decides). */
static PyObject *linear_text(LinearQuick *self, PyObject *args) {
    PyObject *text, *keys;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyTuple_Type, &keys)) return NULL;
    Py_ssize_t n = self->width;
    if (PyTuple_GET_SIZE(keys) != n) Py_RETURN_NONE;
    Py_ssize_t size;
    const char *p = PyUnicode_AsUTF8AndSize(text, &size);
    if (p == NULL) return NULL;
    const char *end = p + size;
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
    PyObject *text, *keys;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyTuple_Type, &keys)) return NULL;
    Py_ssize_t n = self->width;
    if (PyTuple_GET_SIZE(keys) != n) Py_RETURN_NONE;
    Py_ssize_t size;
    const char *p = PyUnicode_AsUTF8AndSize(text, &size);
    if (p == NULL) return NULL;
    const char *end = p + size;
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

static PyTypeObject LinearQuickType = {
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

static PyMethodDef native_methods[] = {
    {"connection_state", native_connection_state, METH_O,
     "connection_state(handle) -> {in_transaction, total_changes, last_insert_rowid}"},
    {"api_layout", native_api_layout, METH_NOARGS,
     "size of the API table and offsets of libversion and mprintf"},
    {"api_ready", native_api_ready, METH_NOARGS,
     "whether a SQLite library has handed us its API table"},
    {"libversion_address", native_libversion_address, METH_NOARGS,
     "address of sqlite3_libversion in the bound library"},
    {"libversion", native_libversion, METH_NOARGS, "the bound library's version"},
    {"create_function", native_create_function, METH_VARARGS,
     "create_function(handle, name, nargs, flags, call, on_error)"},
    {"change_reading", native_change_reading, METH_O,
     "change_reading(handle) -> a reading that moves when the database may have changed"},
    {"create_predict_table", native_create_predict_table, METH_VARARGS,
     "create_predict_table(handle, name, chunks, on_error)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "sqlite_ml._native",
    "sqlite-ml's native layer (a SQLite loadable extension too)", -1, native_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    if (PyType_Ready(&LinearQuickType) < 0) return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(module, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&LinearQuickType);
    if (PyModule_AddObject(module, "LinearQuick", (PyObject *)&LinearQuickType) < 0) {
        Py_DECREF(&LinearQuickType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

#include "_native_host.h"
