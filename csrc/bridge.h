/* The native SQL functions and the Python side, as the core sees them.
 *
 * Each connection the native functions serve has one SqmlConn (deployed.c). What the
 * core cannot do itself (training, models the native format does not cover, compiling a
 * native form for a model stored without one, the exact answer of a near tie, and every
 * error message the Python side words) goes through the connection's SqmlBridge: in a
 * Python process it calls the session's Python callables (bridge.c, in _native); in a
 * host program it is started on first need by sqml.so, which loads _native (and so
 * libpython) only then. Without a usable Python side the native functions still answer
 * for natively served models, and say clearly what needs Python. */
#ifndef SQML_BRIDGE_H
#define SQML_BRIDGE_H

#include "core.h"

/* A SQL value the core owns (text and blob copied). */
typedef struct {
    int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL */
    sqlite3_int64 i;
    double d;
    char *bytes;
    int size;
} SqmlValue;

SQML_HIDDEN void sqml_value_clear(SqmlValue *value);
SQML_HIDDEN int sqml_value_set(SqmlValue *value, sqlite3_value *from);
SQML_HIDDEN void sqml_value_result(sqlite3_context *context, const SqmlValue *value);

/* A chunk of the Python side's table rows. */
typedef struct {
    size_t n;
    SqmlValue *keys;          /* row_id per row */
    SqmlValue *predictions;   /* per row */
    char **probabilities;     /* per row (NULL entries: NULL), or NULL for none */
} SqmlChunk;

SQML_HIDDEN void sqml_chunk_clear(SqmlChunk *chunk);

/* A chunk of a table-valued function's rows that the Python side computes (rows.c):
 * n rows of `columns` cells each, row after row. */
typedef struct {
    size_t n;
    SqmlValue *cells;
} SqmlRows;

SQML_HIDDEN void sqml_rows_clear(SqmlRows *rows, int columns);

/* The bridge's exact prediction of one row from its values (sql/bridge.py's EXACT_ROW). */
#define SQML_EXACT_ROW "sqml exact row"

typedef struct SqmlBridge {
    void *state;
    /* Run the Python implementation of SQL function `name` (its result or error goes
     * into context). */
    void (*call)(void *state, const char *name, sqlite3_context *context, int argc,
                 sqlite3_value **argv);
    /* The same, into *out: 0, or -1 with *error (sqlite3_malloc'd). */
    int (*call_value)(void *state, const char *name, int argc, sqlite3_value **argv,
                      SqmlValue *out, char **error);
    /* The native form of a model stored without one, compiled now (and stored when the
     * database can be written): 1 with *blob (sqlite3_malloc'd); 0 with *why (the model is
     * served by Python); -1 with *why (an error). */
    int (*native_form)(void *state, sqlite3_int64 model_id, unsigned char **blob, int *size,
                       char **why);
    /* The Python side's table: an iterator of chunks, NULL with *error. */
    void *(*table_open)(void *state, sqlite3_value *experiment, sqlite3_value *source,
                        sqlite3_value *key_column, int with_probabilities,
                        int row_id_constrained, char **error);
    /* 1 with a chunk, 0 at the end, -1 with *error. */
    int (*table_next)(void *state, void *iterator, SqmlChunk *chunk, char **error);
    void (*table_close)(void *state, void *iterator);
    /* The rows of table-valued function `name` (sql/registry.py's RowsFunction) for its
     * arguments: an iterator of chunks, NULL with *error. */
    void *(*rows_open)(void *state, const char *name, int argc, sqlite3_value **argv,
                       char **error);
    /* 1 with a chunk of rows of `columns` cells, 0 at the end, -1 with *error. */
    int (*rows_next)(void *state, const char *name, void *iterator, int columns,
                     SqmlRows *rows, char **error);
    void (*rows_close)(void *state, void *iterator);
    void (*release)(void *state);
} SqmlBridge;

/* The layout of SqmlBridge that sqml.so and _native agree on (both are built together;
 * a mismatch means files from two versions). */
#define SQML_BRIDGE_ABI 2

/* How a host starts the Python side for a connection: 0 with *bridge filled, or -1 with
 * *error (sqlite3_malloc'd, the reason it cannot start). */
typedef int (*SqmlBridgeStarter)(sqlite3 *db, SqmlBridge *bridge, char **error);

typedef struct SqmlConn SqmlConn;

/* deployed.c --------------------------------------------------------------------------- */

/* The connection's state, with the bridge already there (a Python connection) or to be
 * started by starter on first need (a host). One reference per registration. */
SQML_HIDDEN SqmlConn *sqml_conn_new(sqlite3 *db, const SqmlBridge *bridge,
                                    SqmlBridgeStarter starter);
SQML_HIDDEN void sqml_conn_retain(SqmlConn *conn);
SQML_HIDDEN void sqml_conn_release(void *conn);
SQML_HIDDEN sqlite3 *sqml_conn_db(SqmlConn *conn);
SQML_HIDDEN SqmlJsonScratch *sqml_conn_scratch(SqmlConn *conn);
SQML_HIDDEN void sqml_conn_scratch_done(SqmlConn *conn, SqmlJsonScratch *scratch);
/* The bridge, started if it must be: NULL with *why (the connection's recorded reason). */
SQML_HIDDEN SqmlBridge *sqml_conn_bridge(SqmlConn *conn, const char **why);

typedef struct SqmlServed SqmlServed;

/* What an experiment's deployed model is served by. */
typedef struct {
    sqlite3_int64 model_id;
    SqmlServed *served;                /* natively: the loaded model (retained); NULL: Python */
    char python[SQML_ERROR_SIZE];      /* why Python serves it */
} SqmlDeployment;

enum { SQML_RESOLVED = 0, SQML_RESOLVE_ERROR = 1, SQML_RESOLVE_DEFER = 2 };

/* The deployment of experiment (a SQL value). SQML_RESOLVE_ERROR: a model that must not
 * be served (its native form is damaged), message set; SQML_RESOLVE_DEFER: the Python
 * side words this (unknown experiment, none deployed, no tables), message set for when
 * there is no Python side. A native model comes retained: sqml_served_release it. */
SQML_HIDDEN int sqml_resolve(SqmlConn *conn, sqlite3_value *experiment, SqmlDeployment *out,
                             char message[SQML_ERROR_SIZE]);
SQML_HIDDEN const SqmlModel *sqml_served_model(const SqmlServed *served);
SQML_HIDDEN void sqml_served_retain(SqmlServed *served);
SQML_HIDDEN void sqml_served_release(SqmlServed *served);

/* Counts for tests and diagnostics: rows answered natively, calls handed to Python. */
SQML_HIDDEN void sqml_count(int native_rows, int python_calls);
SQML_HIDDEN void sqml_counts(long long *native_rows, long long *python_calls);

/* scoring.c ---------------------------------------------------------------------------- */

/* sqml_predict, sqml_predict_batch, sqml_predict_proba and sqml_predict_table on db. */
SQML_HIDDEN int sqml_attach_scoring(sqlite3 *db, SqmlConn *conn, char **error);
/* Every sqml_* function of a host: the scoring ones natively, the others through the
 * Python side when it is first needed; sqml_binding_mode and sqml_version natively. */
SQML_HIDDEN int sqml_attach_host(sqlite3 *db, SqmlConn *conn, char **error);
/* A SQL value as the encoder takes it (text points into the value). */
SQML_HIDDEN void sqml_cell_from_value(sqlite3_value *value, SqmlCell *cell);
/* The row straight from SQL values into x (width doubles) when every feature is numeric
 * and every value an INTEGER, a finite REAL or a NULL the model imputes: what
 * sqml_encode_cells makes of them. 0 (x partly written) when a value needs the general
 * path (cells, then sqml_encode_cells). */
SQML_HIDDEN int sqml_encode_numbers(const SqmlModel *model, sqlite3_value **values, double *x);
/* Hand a call to Python, or fail with message when there is no Python side. */
SQML_HIDDEN void sqml_to_python(SqmlConn *conn, const char *name, sqlite3_context *context,
                                int argc, sqlite3_value **argv, const char *message);

/* table.c ------------------------------------------------------------------------------ */

SQML_HIDDEN int sqml_attach_table(sqlite3 *db, SqmlConn *conn);

/* rows.c ------------------------------------------------------------------------------- */

/* The table-valued functions whose rows the Python side computes (sqml_explain_table,
 * sqml_test_rows, sqml_roc_curve, sqml_embed_table), registered from C so that a host has them before
 * Python starts. */
SQML_HIDDEN int sqml_attach_rows(sqlite3 *db, SqmlConn *conn, char **error);
/* Their list (for tests): how many there are; for index < that, its name, declaration,
 * missing-argument error (NULL: the generic one) and counts (columns, arguments, required
 * arguments). */
SQML_HIDDEN size_t sqml_rows_functions(size_t index, const char **name,
                                       const char **declaration, const char **missing,
                                       int counts[3]);

#endif
