/* The Python side of a connection as the native functions reach it (bridge.h): a Python
 * object (sqlite_ml.sql.bridge.NativeBridge) whose callables answer what the native
 * scorer hands over. Every entry takes the GIL; SQLite calls the native functions
 * without it.
 *
 * Two ways in:
 *  - attach_scoring(handle, bridge): a Python connection (sqlite_ml.register) gets the
 *    native sqml_predict, sqml_predict_batch, sqml_predict_proba and sqml_predict_table;
 *  - sqml_python_bridge_start(): the pure-C extension (sqml.so) loads this module's
 *    shared object on first need and calls it to start an interpreter in a host program
 *    (host_entry.c) and make the bridge for the host's connection. */
#include "sqml.h"

#include "bridge.h"

#define CACHED_NAMES 16

typedef struct {
    PyObject *bridge; /* sqlite_ml.sql.bridge.NativeBridge */
    /* call(name) and reporter(name), cached per name (the names are static strings) */
    const char *names[CACHED_NAMES];
    PyObject *calls[CACHED_NAMES], *reporters[CACHED_NAMES];
} State;

static int lookup_name(State *state, const char *name, PyObject **call, PyObject **reporter) {
    int free_slot = -1;
    for (int i = 0; i < CACHED_NAMES; i++) {
        if (state->names[i] == name || (state->names[i] && strcmp(state->names[i], name) == 0)) {
            *call = state->calls[i];
            *reporter = state->reporters[i];
            return 0;
        }
        if (state->names[i] == NULL && free_slot < 0) free_slot = i;
    }
    PyObject *c = PyObject_CallMethod(state->bridge, "function", "s", name);
    PyObject *r = c ? PyObject_CallMethod(state->bridge, "reporter", "s", name) : NULL;
    if (r == NULL) {
        Py_XDECREF(c);
        return -1;
    }
    if (free_slot >= 0) {
        state->names[free_slot] = name;
        state->calls[free_slot] = c;
        state->reporters[free_slot] = r;
        *call = c;
        *reporter = r;
        return 0;
    }
    /* more names than slots: not cached (borrowed by the caller until its next call) */
    *call = c;
    *reporter = r;
    Py_DECREF(c);
    Py_DECREF(r);
    return 0;
}

static PyObject *call_python(State *state, const char *name, int argc, sqlite3_value **argv,
                             PyObject **reporter) {
    PyObject *call;
    *reporter = NULL;
    if (lookup_name(state, name, &call, reporter) < 0) return NULL;
    PyObject *small[24];
    PyObject **args = argc <= 24 ? small : PyMem_Malloc(sizeof(PyObject *) * (size_t)argc);
    if (args == NULL) return PyErr_NoMemory();
    int converted = 0;
    PyObject *result = NULL;
    for (; converted < argc; converted++) {
        args[converted] = sqml_value_to_python(argv[converted]);
        if (args[converted] == NULL) break;
    }
    if (converted == argc) result = PyObject_Vectorcall(call, args, (size_t)argc, NULL);
    for (int i = 0; i < converted; i++) Py_DECREF(args[i]);
    if (args != small) PyMem_Free(args);
    return result;
}

static char *error_text(PyObject *reporter, const char *name, int *nomem) {
    return sqml_take_error(reporter, name, nomem);
}

static void bridge_call(void *data, const char *name, sqlite3_context *context, int argc,
                        sqlite3_value **argv) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *reporter;
    PyObject *result = call_python(state, name, argc, argv, &reporter);
    if (result != NULL) {
        if (sqml_set_result(context, result) < 0) Py_CLEAR(result);
        else Py_DECREF(result);
    }
    if (result == NULL) {
        int nomem;
        char *message = error_text(reporter, name, &nomem);
        if (nomem || message == NULL) sqlite3_result_error_nomem(context);
        else sqlite3_result_error(context, message, -1);
        sqlite3_free(message);
    }
    PyGILState_Release(gil);
}

/* A Python value into a SqmlValue; 0 with a Python exception set. */
static int value_from_python(PyObject *object, SqmlValue *out) {
    memset(out, 0, sizeof *out);
    out->type = SQLITE_NULL;
    if (object == Py_None) return 1;
    if (PyLong_Check(object)) {
        out->i = PyLong_AsLongLong(object);
        if (out->i == -1 && PyErr_Occurred()) return 0;
        out->type = SQLITE_INTEGER;
        return 1;
    }
    if (PyFloat_Check(object)) {
        out->d = PyFloat_AS_DOUBLE(object);
        out->type = out->d != out->d ? SQLITE_NULL : SQLITE_FLOAT;
        return 1;
    }
    const char *data = NULL;
    Py_ssize_t size = 0;
    if (PyUnicode_Check(object)) {
        data = PyUnicode_AsUTF8AndSize(object, &size);
        if (data == NULL) return 0;
        out->type = SQLITE_TEXT;
    } else if (PyBytes_Check(object)) {
        data = PyBytes_AS_STRING(object);
        size = PyBytes_GET_SIZE(object);
        out->type = SQLITE_BLOB;
    } else {
        PyErr_Format(PyExc_TypeError, "cannot return a %s to SQL", Py_TYPE(object)->tp_name);
        return 0;
    }
    out->bytes = malloc((size_t)size + 1);
    if (out->bytes == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    memcpy(out->bytes, data, (size_t)size);
    out->bytes[size] = '\0';
    out->size = (int)size;
    return 1;
}

static int bridge_call_value(void *data, const char *name, int argc, sqlite3_value **argv,
                             SqmlValue *out, char **error) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *reporter;
    PyObject *result = call_python(state, name, argc, argv, &reporter);
    int rc = 0;
    if (result == NULL || !value_from_python(result, out)) {
        int nomem;
        *error = error_text(reporter, name, &nomem);
        rc = -1;
    }
    Py_XDECREF(result);
    PyGILState_Release(gil);
    return rc;
}

static char *reported_error(State *state, const char *name);

static int bridge_native_form(void *data, sqlite3_int64 model_id, unsigned char **blob, int *size,
                              char **why) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *result = PyObject_CallMethod(state->bridge, "native_form", "L", (long long)model_id);
    int rc;
    if (result == NULL) {
        *why = reported_error(state, "sqml_predict");
        rc = -1;
    } else if (PyBytes_Check(result)) {
        *size = (int)PyBytes_GET_SIZE(result);
        *blob = sqlite3_malloc(*size > 0 ? *size : 1);
        if (*blob) memcpy(*blob, PyBytes_AS_STRING(result), (size_t)*size);
        rc = *blob ? 1 : -1;
        if (!*blob) *why = sqlite3_mprintf("out of memory");
    } else {
        PyObject *text = PyObject_Str(result);
        const char *utf8 = text ? PyUnicode_AsUTF8(text) : NULL;
        *why = sqlite3_mprintf("%s", utf8 ? utf8 : "not in the native format");
        PyErr_Clear();
        Py_XDECREF(text);
        rc = 0;
    }
    Py_XDECREF(result);
    PyGILState_Release(gil);
    return rc;
}

/* The pending exception as the message the bridge's reporter for name gives (the
 * reporter is looked up with the exception put aside). */
static char *reported_error(State *state, const char *name) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject *reporter = PyObject_CallMethod(state->bridge, "reporter", "s", name);
    if (reporter == NULL) PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    int nomem;
    char *message = sqml_take_error(reporter, name, &nomem);
    Py_XDECREF(reporter);
    return message;
}

static char *table_error(State *state) { return reported_error(state, "sqml_predict_table"); }

static void *bridge_table_open(void *data, sqlite3_value *experiment, sqlite3_value *source,
                               sqlite3_value *key_column, int with_probabilities,
                               int row_id_constrained, char **error) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *e = sqml_value_to_python(experiment);
    PyObject *s = e ? sqml_value_to_python(source) : NULL;
    PyObject *k = NULL;
    if (s) {
        if (key_column) k = sqml_value_to_python(key_column);
        else k = Py_NewRef(Py_None);
    }
    PyObject *iterator = NULL;
    if (k) {
        PyObject *chunks = PyObject_CallMethod(state->bridge, "table", "OOOOO", e, s, k,
                                               with_probabilities ? Py_True : Py_False,
                                               row_id_constrained ? Py_True : Py_False);
        if (chunks) iterator = PyObject_GetIter(chunks);
        Py_XDECREF(chunks);
    }
    Py_XDECREF(e);
    Py_XDECREF(s);
    Py_XDECREF(k);
    if (iterator == NULL) *error = table_error(state);
    PyGILState_Release(gil);
    return iterator;
}

/* One column of a chunk into values: None (all NULL), a buffer of int64 or float64, or a
 * list of Python values. */
static int chunk_column(PyObject *column, size_t n, SqmlValue *out) {
    for (size_t i = 0; i < n; i++) out[i].type = SQLITE_NULL;
    if (column == Py_None) return 1;
    if (PyList_Check(column)) {
        if ((size_t)PyList_GET_SIZE(column) != n) {
            PyErr_SetString(PyExc_ValueError, "a chunk's columns differ in length");
            return 0;
        }
        for (size_t i = 0; i < n; i++)
            if (!value_from_python(PyList_GET_ITEM(column, (Py_ssize_t)i), &out[i])) return 0;
        return 1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(column, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return 0;
    const char *format = view.format ? view.format : "B";
    int ok = view.itemsize == 8 && (size_t)(view.len / 8) == n;
    int integers = strcmp(format, "q") == 0 || strcmp(format, "l") == 0;
    if (!ok || (!integers && strcmp(format, "d") != 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "a chunk column must be int64 or float64 per row");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (integers) {
            out[i].type = SQLITE_INTEGER;
            out[i].i = ((long long *)view.buf)[i];
        } else {
            double d = ((double *)view.buf)[i];
            out[i].type = d != d ? SQLITE_NULL : SQLITE_FLOAT;
            out[i].d = d;
        }
    }
    PyBuffer_Release(&view);
    return 1;
}

static int bridge_table_next(void *data, void *iterator, SqmlChunk *chunk, char **error) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = 1;
    PyObject *item = PyIter_Next((PyObject *)iterator);
    if (item == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
    } else if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 4) {
        PyErr_SetString(PyExc_TypeError, "a chunk must be (size, keys, predictions, probabilities)");
        rc = -1;
    } else {
        Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 0));
        PyObject *probabilities = PyTuple_GET_ITEM(item, 3);
        if (n < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a negative chunk size");
            rc = -1;
        } else {
            chunk->n = (size_t)n;
            chunk->keys = calloc((size_t)n + 1, sizeof(SqmlValue));
            chunk->predictions = calloc((size_t)n + 1, sizeof(SqmlValue));
            if (!chunk->keys || !chunk->predictions) {
                PyErr_NoMemory();
                rc = -1;
            } else if (!chunk_column(PyTuple_GET_ITEM(item, 1), chunk->n, chunk->keys) ||
                       !chunk_column(PyTuple_GET_ITEM(item, 2), chunk->n, chunk->predictions)) {
                rc = -1;
            } else if (probabilities != Py_None) {
                if (!PyList_Check(probabilities) || PyList_GET_SIZE(probabilities) != n) {
                    PyErr_SetString(PyExc_TypeError, "chunk probabilities must be a list per row");
                    rc = -1;
                } else {
                    chunk->probabilities = calloc((size_t)n + 1, sizeof(char *));
                    for (Py_ssize_t i = 0; chunk->probabilities && i < n; i++) {
                        PyObject *text = PyList_GET_ITEM(probabilities, i);
                        if (text == Py_None) continue;
                        const char *utf8 = PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : NULL;
                        if (utf8 == NULL) {
                            if (!PyErr_Occurred())
                                PyErr_SetString(PyExc_TypeError, "probabilities must be text");
                            rc = -1;
                            break;
                        }
                        chunk->probabilities[i] = strdup(utf8);
                    }
                    if (chunk->probabilities == NULL) {
                        PyErr_NoMemory();
                        rc = -1;
                    }
                }
            }
        }
    }
    Py_XDECREF(item);
    if (rc < 0) {
        sqml_chunk_clear(chunk);
        *error = table_error(state);
    }
    PyGILState_Release(gil);
    return rc;
}

static void bridge_table_close(void *data, void *iterator) {
    (void)data;
    if (!Py_IsInitialized()) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *close = PyObject_GetAttrString((PyObject *)iterator, "close");
    if (close) {
        PyObject *done = PyObject_CallNoArgs(close);
        Py_XDECREF(done);
        Py_DECREF(close);
    }
    PyErr_Clear();
    Py_DECREF((PyObject *)iterator);
    PyGILState_Release(gil);
}

/* The rows of a table-valued function the Python side computes: bridge.rows(name, *args)
 * is an iterator of chunks, each a list of row tuples. */
static void *bridge_rows_open(void *data, const char *name, int argc, sqlite3_value **argv,
                              char **error) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *arguments = PyTuple_New(argc + 1);
    int converted = arguments != NULL;
    if (converted) {
        PyObject *text = PyUnicode_FromString(name);
        if (text == NULL) converted = 0;
        else PyTuple_SET_ITEM(arguments, 0, text);
    }
    for (int i = 0; converted && i < argc; i++) {
        PyObject *value = sqml_value_to_python(argv[i]);
        if (value == NULL) converted = 0;
        else PyTuple_SET_ITEM(arguments, i + 1, value);
    }
    PyObject *rows = converted ? PyObject_GetAttrString(state->bridge, "rows") : NULL;
    PyObject *chunks = rows ? PyObject_CallObject(rows, arguments) : NULL;
    PyObject *iterator = chunks ? PyObject_GetIter(chunks) : NULL;
    Py_XDECREF(chunks);
    Py_XDECREF(rows);
    Py_XDECREF(arguments);
    if (iterator == NULL) *error = reported_error(state, name);
    PyGILState_Release(gil);
    return iterator;
}

static int bridge_rows_next(void *data, const char *name, void *iterator, int columns,
                            SqmlRows *rows, char **error) {
    State *state = (State *)data;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = 1;
    PyObject *chunk = PyIter_Next((PyObject *)iterator);
    if (chunk == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
    } else if (!PyList_Check(chunk)) {
        PyErr_SetString(PyExc_TypeError, "a chunk must be a list of row tuples");
        rc = -1;
    } else {
        size_t n = (size_t)PyList_GET_SIZE(chunk);
        rows->cells = calloc(n * (size_t)columns + 1, sizeof(SqmlValue));
        if (rows->cells == NULL) {
            PyErr_NoMemory();
            rc = -1;
        }
        for (size_t i = 0; rc > 0 && i < n; i++) {
            PyObject *row = PyList_GET_ITEM(chunk, (Py_ssize_t)i);
            if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != columns) {
                PyErr_Format(PyExc_TypeError, "each row must be a tuple of %d values", columns);
                rc = -1;
                break;
            }
            rows->n = i + 1; /* what sqml_rows_clear frees */
            for (int c = 0; c < columns; c++)
                if (!value_from_python(PyTuple_GET_ITEM(row, c), &rows->cells[i * columns + c])) {
                    rc = -1;
                    break;
                }
        }
    }
    Py_XDECREF(chunk);
    if (rc < 0) {
        sqml_rows_clear(rows, columns);
        *error = reported_error(state, name);
    }
    PyGILState_Release(gil);
    return rc;
}

static void bridge_release(void *data) {
    State *state = (State *)data;
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        for (int i = 0; i < CACHED_NAMES; i++) {
            Py_CLEAR(state->calls[i]);
            Py_CLEAR(state->reporters[i]);
        }
        Py_CLEAR(state->bridge);
        PyGILState_Release(gil);
    }
    PyMem_RawFree(state);
}

/* A bridge over a NativeBridge object (the GIL is held). */
static int make_bridge(PyObject *object, SqmlBridge *out) {
    State *state = PyMem_RawCalloc(1, sizeof(State));
    if (state == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(object);
    state->bridge = object;
    out->state = state;
    out->call = bridge_call;
    out->call_value = bridge_call_value;
    out->native_form = bridge_native_form;
    out->table_open = bridge_table_open;
    out->table_next = bridge_table_next;
    out->table_close = bridge_table_close;
    out->rows_open = bridge_rows_open;
    out->rows_next = bridge_rows_next;
    out->rows_close = bridge_table_close; /* both close a Python iterator */
    out->release = bridge_release;
    return 0;
}

/* attach_scoring(handle, bridge): the native scoring functions on a Python connection. */
PyObject *sqml_attach_scoring_py(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *object;
    if (!PyArg_ParseTuple(args, "OO", &handle, &object)) return NULL;
    sqlite3 *db = sqml_connection(handle);
    if (db == NULL) return NULL;
    SqmlBridge bridge;
    if (make_bridge(object, &bridge) < 0) return NULL;
    SqmlConn *conn = sqml_conn_new(db, &bridge, NULL);
    if (conn == NULL) {
        bridge_release(bridge.state);
        return PyErr_NoMemory();
    }
    char *error = NULL;
    int rc = sqml_attach_scoring(db, conn, &error);
    sqml_conn_release(conn); /* the registrations hold it now */
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "%s (SQLite error %d)", error ? error : "could not register",
                     rc);
        sqlite3_free(error);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* native_counts() -> (rows answered natively, calls handed to Python) */
PyObject *sqml_native_counts(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    long long native_rows, python_calls;
    sqml_counts(&native_rows, &python_calls);
    return Py_BuildValue("LL", native_rows, python_calls);
}

/* The host's bridge, from the interpreter host_entry.c starts (bridge.h's starter). */
int sqml_host_bridge(sqlite3 *db, SqmlBridge *out, char **error) {
    int started = 0;
    if (sqml_start_python(&started, error) != SQLITE_OK) return -1;
    PyGILState_STATE gil = started ? PyGILState_UNLOCKED : PyGILState_Ensure();
    int rc = sqml_same_library_as_python(error) == SQLITE_OK ? 0 : -1;
    if (rc == 0) {
        PyObject *host = PyImport_ImportModule(SQML_HOST_MODULE);
        PyObject *handle = host ? PyLong_FromVoidPtr(db) : NULL;
        PyObject *object = handle ? PyObject_CallMethod(host, "bridge", "O", handle) : NULL;
        if (object == NULL || make_bridge(object, out) < 0) {
            char *text = sqml_python_error_text();
            if (error) *error = text;
            else sqlite3_free(text);
            rc = -1;
        }
        Py_XDECREF(object);
        Py_XDECREF(handle);
        Py_XDECREF(host);
    }
    if (started) PyEval_SaveThread(); /* the interpreter stays; callbacks take the GIL */
    else PyGILState_Release(gil);
    return rc;
}

/* What sqml.so calls after loading this shared object: the bridge for a host's
 * connection, in the library (API table) the host uses. */
SQML_EXPORT int sqml_python_bridge_start(int abi, sqlite3 *db, const sqlite3_api_routines *api,
                                         SqmlBridge *out, char **error) {
    if (abi != SQML_BRIDGE_ABI) {
        *error = api->mprintf("sqlite-ml's Python side is from another version (bridge %d, "
                              "not %d): reinstall sqlite-ml", SQML_BRIDGE_ABI, abi);
        return -1;
    }
    if (sqml_adopt_api(api, error) != SQLITE_OK) return -1;
    return sqml_host_bridge(db, out, error);
}
