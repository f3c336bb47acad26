/* Entry point for hosts other than Python's sqlite3 module: the sqlite3 shell's
 * `.load /path/to/_native...so`, or any program calling sqlite3_load_extension.
 *
 * Starts a Python interpreter when the process has none, in the Python environment the
 * package was built in (SQML_PYTHON_EXECUTABLE, recorded by setup.py; the environment
 * variable SQLITE_ML_PYTHON names another python executable). Python must not take over
 * the host's C stdio or its signal handlers. Then the bind() of the Python module
 * SQML_HOST_MODULE registers the functions on the host's connection. The GIL is released
 * when we return: every callback takes it. */
#include "sqml.h"

#include <dlfcn.h>

/* The Python module whose bind(handle) registers the functions on a host's connection. */
#define SQML_HOST_MODULE "sqlite_ml.faces.sqlite3_shell"

#ifndef SQML_PYTHON_EXECUTABLE
#define SQML_PYTHON_EXECUTABLE ""
#endif

static int start_python(char **error) {
    const char *executable = getenv("SQLITE_ML_PYTHON");
    if (executable == NULL || !*executable) executable = SQML_PYTHON_EXECUTABLE;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.configure_c_stdio = 0;
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    PyStatus status = PyStatus_Ok();
    if (*executable) {
        /* Python finds its prefix, and a virtual environment's pyvenv.cfg, from here. */
        status = PyConfig_SetBytesString(&config, &config.program_name, executable);
        if (!PyStatus_Exception(status)) {
            status = PyConfig_SetBytesString(&config, &config.executable, executable);
        }
    }
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        if (error) {
            *error = sqlite3_mprintf("sqlite-ml: cannot start Python (%s) from %s: %s",
                                     status.func ? status.func : "?", executable,
                                     status.err_msg ? status.err_msg : "unknown error");
        }
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* The Python exception as text, for the host's error message; clears it. */
static char *python_error_text(void) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    char *text = NULL;
    PyObject *message = value ? PyObject_Str(value) : NULL;
    const char *utf8 = message ? PyUnicode_AsUTF8(message) : NULL;
    text = sqlite3_mprintf("sqlite-ml: %s: %s",
                           type ? ((PyTypeObject *)type)->tp_name : "error",
                           utf8 ? utf8 : "(no message)");
    PyErr_Clear();
    Py_XDECREF(message);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return text;
}

/* Refuse when Python's own sqlite3 module uses another SQLite library than the host:
 * two copies of SQLite in one process lose each other's file locks. */
static int same_library_as_python(char **error) {
    PyObject *module = PyImport_ImportModule("_sqlite3");
    PyObject *path = module ? PyObject_GetAttrString(module, "__file__") : NULL;
    const char *file = path ? PyUnicode_AsUTF8(path) : NULL;
    int rc = SQLITE_OK;
    if (file == NULL) {
        PyErr_Clear();
    } else {
        void *library = dlopen(file, RTLD_NOW | RTLD_NOLOAD);
        void *theirs = library ? dlsym(library, "sqlite3_libversion") : NULL;
        if (theirs != NULL && theirs != (void *)sqlite3_api->libversion) {
            Dl_info info;
            const char *where = dladdr(theirs, &info) && info.dli_fname ? info.dli_fname : "?";
            if (error) {
                *error = sqlite3_mprintf(
                    "sqlite-ml: refusing to bind: Python's sqlite3 module uses another SQLite "
                    "library (%s, version %s) than this program (version %s); two SQLite "
                    "copies in one process can lose each other's locks",
                    where, ((const char *(*)(void))theirs)(), sqlite3_libversion());
            }
            rc = SQLITE_ERROR;
        }
        if (library) dlclose(library);
    }
    Py_XDECREF(path);
    Py_XDECREF(module);
    return rc;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_extension_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    if (sqml_adopt_api(api, error) != SQLITE_OK) return SQLITE_ERROR;
    int started = 0;
    if (!Py_IsInitialized()) {
        if (start_python(error) != SQLITE_OK) return SQLITE_ERROR;
        started = 1;
    }
    PyGILState_STATE gil = started ? PyGILState_UNLOCKED : PyGILState_Ensure();
    int rc = same_library_as_python(error);
    if (rc == SQLITE_OK) {
        PyObject *host = PyImport_ImportModule(SQML_HOST_MODULE);
        PyObject *handle = host ? PyLong_FromVoidPtr(db) : NULL;
        PyObject *done = handle ? PyObject_CallMethod(host, "bind", "O", handle) : NULL;
        if (done == NULL) {
            char *text = python_error_text();
            if (error) *error = text;
            else sqlite3_free(text);
            rc = SQLITE_ERROR;
        }
        Py_XDECREF(done);
        Py_XDECREF(handle);
        Py_XDECREF(host);
    }
    if (started) {
        PyEval_SaveThread(); /* the interpreter stays; callbacks take the GIL */
    } else {
        PyGILState_Release(gil);
    }
    return rc;
}
