/*
 * sqlite-ml's native layer: one shared object that is both a CPython extension module
 * (sqlite_ml._native) and a SQLite loadable extension.
 *
 * It never links SQLite: every SQLite call goes through the sqlite3_api_routines table
 * that the SQLite library loading it hands to an entry point (sqlite3ext.h), so it always
 * works with the very library the connection uses.
 *
 *  - sqlite3_sqmlbind_init (module.c): the entry point sqlite_ml.register() loads on a
 *    stdlib connection (through the connection's own sqlite3_load_extension). It only
 *    records the API table; the functions are then registered from Python with
 *    create_function().
 *  - sqlite3_extension_init (host_entry.c): the entry point a host such as the sqlite3
 *    shell uses (.load).
 *
 * Each SQL function of the Python side calls a Python callable with the GIL held; an
 * exception becomes an SQL error carrying the text our on_error callable gives. The
 * native scorer (core.h, pure C) answers sqml_predict, sqml_predict_batch,
 * sqml_predict_proba and sqml_predict_table for natively served models without Python,
 * and hands the rest to the Python callables (bridge.h).
 *
 * The files, by role:
 *  - module.c: the CPython module, the API table and sqlite3_sqmlbind_init;
 *  - values.c: values between SQLite and Python, results, error text;
 *  - functions.c: scalar SQL functions (create_function);
 *  - reader.c: the Reader type (rows of a statement into float64 buffers);
 *  - bridge.c: the Python side of the native functions (see bridge.h);
 *  - scorer_module.c: the native scorer's checks, for Python;
 *  - linear_quick.c: the LinearQuick type (the quick linear row predictor);
 *  - host_entry.c: sqlite3_extension_init and the interpreter for non-Python hosts.
 *
 * This header holds what those files share. Only module.c defines the API table pointer
 * (SQLITE_EXTENSION_INIT1); every file sees it through SQLITE_EXTENSION_INIT3 below.
 * What one file gives another is named sqml_* and kept out of the shared object's
 * exported symbols (SQML_INTERNAL); everything else is static to its file.
 */
#ifndef SQML_H
#define SQML_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core.h"

#define SQML_INTERNAL SQML_HIDDEN

/* module.c: the API table ---------------------------------------------------------- */

/* Record the API table of the library loading us; a second, different library is
 * refused (SQLITE_ERROR with *error set). */
SQML_INTERNAL int sqml_adopt_api(const sqlite3_api_routines *api, char **error);
/* The connection a Python int holds, once a library has handed us its API table; NULL
 * with a Python exception set. */
SQML_INTERNAL sqlite3 *sqml_connection(PyObject *handle);

/* values.c: values between SQLite and Python (the GIL is held) ---------------------- */

SQML_INTERNAL PyObject *sqml_value_to_python(sqlite3_value *value);
/* 0 on success; -1 with a Python exception set. */
SQML_INTERNAL int sqml_set_result(sqlite3_context *context, PyObject *result);
/* The pending Python exception as our message (via on_error), in a new sqlite3_malloc'd
 * string; clears the exception. *nomem is set for MemoryError. */
SQML_INTERNAL char *sqml_take_error(PyObject *on_error, const char *name, int *nomem);
/* Decrement references from a SQLite destructor (takes the GIL; nothing after shutdown). */
SQML_INTERNAL void sqml_release_objects(PyObject **objects, int count);

/* The module's functions and types, each in the file of its role -------------------- */

/* functions.c: create_function(handle, name, nargs, flags, call, on_error) */
SQML_INTERNAL PyObject *sqml_create_function(PyObject *module, PyObject *args);
/* reader.c: Reader(handle, sql[, parameters]) */
SQML_INTERNAL extern PyTypeObject sqml_reader_type;
/* linear_quick.c: LinearQuick(weights, biases, fill, classes, tolerance, per_x, constant) */
SQML_INTERNAL extern PyTypeObject sqml_linear_quick_type;
/* scorer_module.c: the native scorer for Python's checks and tests */
SQML_INTERNAL PyObject *sqml_validate_native(PyObject *module, PyObject *blob);
SQML_INTERNAL PyObject *sqml_score_native(PyObject *module, PyObject *args);
SQML_INTERNAL PyObject *sqml_repr_double(PyObject *module, PyObject *value);
SQML_INTERNAL PyObject *sqml_sha256(PyObject *module, PyObject *data);
SQML_INTERNAL PyObject *sqml_json_number_py(PyObject *module, PyObject *text);
SQML_INTERNAL PyObject *sqml_rows_functions_py(PyObject *module, PyObject *unused);

/* The Python module whose bridge(handle) makes the Python side of a host's connection. */
#define SQML_HOST_MODULE "sqlite_ml.faces.sqlite3_shell"

/* bridge.c: attach_scoring(handle, bridge) and native_counts() */
SQML_INTERNAL PyObject *sqml_attach_scoring_py(PyObject *module, PyObject *args);
SQML_INTERNAL PyObject *sqml_native_counts(PyObject *module, PyObject *unused);
struct SqmlBridge;
/* The host's bridge (a SqmlBridgeStarter): starts the interpreter if need be. */
SQML_INTERNAL int sqml_host_bridge(sqlite3 *db, struct SqmlBridge *out, char **error);

/* host_entry.c: the interpreter of a host program */
/* Start Python when the process has none (*started then 1): SQLITE_OK, or SQLITE_ERROR
 * with *error. A failed start is remembered (CPython cannot start twice). */
SQML_INTERNAL int sqml_start_python(int *started, char **error);
/* Refuse when Python's own sqlite3 module uses another SQLite library than the host. */
SQML_INTERNAL int sqml_same_library_as_python(char **error);
/* The pending Python exception as a sqlite3_malloc'd message; clears it. */
SQML_INTERNAL char *sqml_python_error_text(void);

#endif
