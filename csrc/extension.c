/* sqml.so: sqlite-ml as a plain SQLite loadable extension, with no Python in it.
 *
 * `.load` it into any program that uses SQLite (the sqlite3 shell; Go, Node or Rust
 * through their SQLite drivers): every sqml_* function is registered at once, and models
 * stored in the native format predict without an interpreter. This object links no
 * libpython, so it loads where no Python is installed at all. The first function that
 * needs Python (training, a model the native format does not cover, a message only the
 * Python side words) loads the package's _native module from the same directory (which
 * links libpython) and starts an interpreter through it; when that cannot work, that
 * function fails with one clear message and the native functions go on working. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdlib.h>

#include "bridge.h"

SQML_HIDDEN const sqlite3_api_routines *sqlite3_api = 0;

#ifndef SQML_PYTHON_MODULE_FILE
#define SQML_PYTHON_MODULE_FILE "_native.so"
#endif

typedef int (*BridgeStart)(int abi, sqlite3 *db, const sqlite3_api_routines *api,
                           SqmlBridge *out, char **error);

/* The Python side, loaded from beside this object on first need. */
static int load_python_side(sqlite3 *db, SqmlBridge *out, char **error) {
    Dl_info self;
    if (!dladdr((void *)&load_python_side, &self) || self.dli_fname == NULL) {
        *error = sqlite3_mprintf("sqlite-ml cannot tell where its extension lies");
        return -1;
    }
    const char *slash = strrchr(self.dli_fname, '/');
    int directory = slash ? (int)(slash - self.dli_fname) : 1;
    char *path = sqlite3_mprintf("%.*s/%s", directory, slash ? self.dli_fname : ".",
                                 SQML_PYTHON_MODULE_FILE);
    if (path == NULL) return -1;
    /* RTLD_GLOBAL: Python's own extension modules (numpy's) need libpython's symbols */
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (library == NULL) {
        const char *why = dlerror();
        *error = sqlite3_mprintf("sqlite-ml's Python side could not be loaded (%s)",
                                 why ? why : path);
        sqlite3_free(path);
        return -1;
    }
    sqlite3_free(path);
    BridgeStart start = (BridgeStart)dlsym(library, "sqml_python_bridge_start");
    if (start == NULL) {
        *error = sqlite3_mprintf("sqlite-ml's Python side (%s) is from another version",
                                 SQML_PYTHON_MODULE_FILE);
        return -1;
    }
    return start(SQML_BRIDGE_ABI, db, sqlite3_api, out, error);
}

static int attach(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    SQLITE_EXTENSION_INIT2(api);
    SqmlConn *conn = sqml_conn_new(db, NULL, load_python_side);
    if (conn == NULL) return SQLITE_NOMEM;
    int rc = sqml_attach_host(db, conn, error);
    sqml_conn_release(conn); /* the registrations hold it now */
    return rc;
}

SQML_EXPORT int sqlite3_sqml_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
    return attach(db, error, api);
}

SQML_EXPORT int sqlite3_extension_init(sqlite3 *db, char **error,
                                       const sqlite3_api_routines *api) {
    return attach(db, error, api);
}
