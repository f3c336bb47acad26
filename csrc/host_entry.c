/* The interpreter for programs that are not Python, and _native's own entry point for
 * them (`.load /path/to/_native...so`; sqml.so is the entry that needs no Python).
 *
 * Python is started only when a function first needs it (bridge.c's sqml_host_bridge),
 * in the Python environment the package was built in (SQML_PYTHON_EXECUTABLE, recorded
 * by setup.py; the environment variable SQLITE_ML_PYTHON names another python
 * executable). Python must not take over the host's C stdio or its signal handlers. */
#include "sqml.h"

#include <dlfcn.h>
#include <unistd.h>

#include "bridge.h"

#ifndef SQML_PYTHON_EXECUTABLE
#define SQML_PYTHON_EXECUTABLE ""
#endif

/* An interpreter failed to start once: CPython cannot be initialized again after that. */
static char *start_failure;

int sqml_start_python(int *started, char **error) {
    *started = 0;
    if (Py_IsInitialized()) return SQLITE_OK;
    if (start_failure != NULL) {
        if (error) *error = sqlite3_mprintf("%s", start_failure);
        return SQLITE_ERROR;
    }
    const char *executable = getenv("SQLITE_ML_PYTHON");
    if (executable == NULL || !*executable) executable = SQML_PYTHON_EXECUTABLE;
    /* A Python that is not there: said plainly, without letting CPython try (a failed
     * start prints its path configuration over the host's stderr). */
    const char *home = getenv("PYTHONHOME");
    const char *absent = *executable && access(executable, X_OK) != 0 ? executable
                         : home && *home && access(home, F_OK) != 0  ? home
                                                                     : NULL;
    if (absent != NULL) {
        char *text = sqlite3_mprintf("sqlite-ml cannot start Python: %s %s does not exist "
                                     "(set SQLITE_ML_PYTHON to the python of an environment "
                                     "where sqlite-ml is installed)",
                                     absent == home ? "PYTHONHOME" : "the python executable",
                                     absent);
        start_failure = text ? strdup(text) : NULL;
        if (error) *error = text;
        else sqlite3_free(text);
        return SQLITE_ERROR;
    }
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
        char *text = sqlite3_mprintf("sqlite-ml cannot start Python (%s) from %s: %s",
                                     status.func ? status.func : "?", executable,
                                     status.err_msg ? status.err_msg : "unknown error");
        start_failure = text ? strdup(text) : NULL;
        if (error) *error = text;
        else sqlite3_free(text);
        return SQLITE_ERROR;
    }
    *started = 1;
    return SQLITE_OK;
}

char *sqml_python_error_text(void) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *message = value ? PyObject_Str(value) : NULL;
    const char *utf8 = message ? PyUnicode_AsUTF8(message) : NULL;
    char *text = sqlite3_mprintf("sqlite-ml's Python side failed to start: %s: %s",
                                 type ? ((PyTypeObject *)type)->tp_name : "error",
                                 utf8 ? utf8 : "(no message)");
    PyErr_Clear();
    Py_XDECREF(message);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return text;
}

int sqml_same_library_as_python(char **error) {
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
SQML_EXPORT int sqlite3_extension_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    if (sqml_adopt_api(api, error) != SQLITE_OK) return SQLITE_ERROR;
    if (Py_IsInitialized()) { /* a process with Python already: check its SQLite now */
        PyGILState_STATE gil = PyGILState_Ensure();
        int rc = sqml_same_library_as_python(error);
        PyGILState_Release(gil);
        if (rc != SQLITE_OK) return SQLITE_ERROR;
    }
    SqmlConn *conn = sqml_conn_new(db, NULL, sqml_host_bridge);
    if (conn == NULL) return SQLITE_NOMEM;
    int rc = sqml_attach_host(db, conn, error);
    sqml_conn_release(conn); /* the registrations hold it now */
    return rc;
}
