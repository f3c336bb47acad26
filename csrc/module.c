/* The CPython module sqlite_ml._native: the API table the SQLite library loading us hands
 * over (sqlite3_sqmlbind_init), the small module functions, the method table and
 * PyInit__native. */
#include "sqml.h"

SQML_HIDDEN const sqlite3_api_routines *sqlite3_api = 0;

static int api_ready(void) { return sqlite3_api != NULL; }

/* Record the API table of the library loading us. A second, different SQLite library in
 * the same process is refused: two copies of SQLite on one file lose each other's locks. */
int sqml_adopt_api(const sqlite3_api_routines *api, char **error) {
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
SQML_EXPORT int sqlite3_sqmlbind_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    (void)db;
    return sqml_adopt_api(api, error);
}

static int check_api(void) {
    if (!api_ready()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "sqlite-ml's native extension was not loaded into any SQLite library");
        return -1;
    }
    return 0;
}

sqlite3 *sqml_connection(PyObject *handle) {
    if (check_api() < 0) return NULL;
    void *db = PyLong_AsVoidPtr(handle);
    if (db == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "no database handle");
    }
    return (sqlite3 *)db;
}

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
    sqlite3 *db = sqml_connection(handle_object);
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
    sqlite3 *db = sqml_connection(handle_object);
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
    {"create_function", sqml_create_function, METH_VARARGS,
     "create_function(handle, name, nargs, flags, call, on_error)"},
    {"change_reading", native_change_reading, METH_O,
     "change_reading(handle) -> a reading that moves when the database may have changed"},
    {"attach_scoring", sqml_attach_scoring_py, METH_VARARGS,
     "attach_scoring(handle, bridge): the native sqml_predict, sqml_predict_batch, "
     "sqml_predict_proba and sqml_predict_table"},
    {"native_counts", sqml_native_counts, METH_NOARGS,
     "native_counts() -> (rows answered natively, calls handed to Python)"},
    {"validate_native", sqml_validate_native, METH_O,
     "validate_native(blob) -> None, or the check a native model form fails"},
    {"score_native", sqml_score_native, METH_VARARGS,
     "score_native(blob, matrix[, probabilities]) -> (predictions, unsure) or probabilities"},
    {"repr_double", sqml_repr_double, METH_O, "the native scorer's text for a float"},
    {"sha256_hex", sqml_sha256, METH_O, "the native side's SHA-256 of bytes"},
    {"json_number", sqml_json_number_py, METH_O, "the float the JSON reader makes of a number"},
    {"rows_functions", sqml_rows_functions_py, METH_NOARGS,
     "rows_functions() -> [(name, declaration, columns, arguments, required, missing)] of "
     "csrc/rows.c"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "sqlite_ml._native",
    "sqlite-ml's native layer (a SQLite loadable extension too)", -1, native_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&sqml_reader_type) < 0) return NULL;
    if (PyType_Ready(&sqml_linear_quick_type) < 0) return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) return NULL;
    Py_INCREF(&sqml_reader_type);
    if (PyModule_AddObject(module, "Reader", (PyObject *)&sqml_reader_type) < 0) {
        Py_DECREF(&sqml_reader_type);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&sqml_linear_quick_type);
    if (PyModule_AddObject(module, "LinearQuick", (PyObject *)&sqml_linear_quick_type) < 0) {
        Py_DECREF(&sqml_linear_quick_type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

