/* Scalar SQL functions: create_function registers a Python callable under a name; each
 * call converts the arguments, calls it with the GIL held and returns its result, or the
 * text on_error gives for its exception as the SQL error. */
#include "sqml.h"

#define SMALL_ARGS 24

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
            args[converted] = sqml_value_to_python(argv[converted]);
            if (args[converted] == NULL) break;
        }
        if (converted == argc) {
            result = PyObject_Vectorcall(function->objects[0], args, (size_t)argc, NULL);
        }
        for (int i = 0; i < converted; i++) Py_DECREF(args[i]);
        if (args != small) PyMem_Free(args);
    }
    if (result != NULL) {
        if (sqml_set_result(context, result) < 0) Py_CLEAR(result);
        else Py_DECREF(result);
    }
    if (result == NULL) {
        int nomem;
        char *message = sqml_take_error(function->objects[1], function->name, &nomem);
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
    sqml_release_objects(function->objects, 2);
    PyMem_RawFree(function);
}

PyObject *sqml_create_function(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *call, *on_error;
    const char *name;
    int nargs, flags;
    if (!PyArg_ParseTuple(args, "OsiiOO", &handle, &name, &nargs, &flags, &call, &on_error))
        return NULL;
    sqlite3 *db = sqml_connection(handle);
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

