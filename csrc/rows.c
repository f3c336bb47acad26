/* Table-valued functions whose rows the Python side computes (sql/registry.py's
 * RowsFunction: sqml_explain_table, sqml_test_rows, sqml_roc_curve, sqml_embed_table). Each is an
 * eponymous virtual table with its columns and hidden arguments; a query's arguments
 * (the first `required`, then any of the optional ones in order) go through the
 * connection's bridge to the Python function, whose rows come back in chunks.
 *
 * They are registered here, in C, so that a host program (sqml.so) has them before its
 * Python side starts, which then happens on the first query that needs one of them. The
 * list below must match the registry's: tests/test_native_host.py compares them. */
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

typedef struct {
    const char *name;
    const char *declaration; /* registry.RowsFunction.declaration() */
    int columns, arguments, required;
    const char *missing; /* registry.RowsFunction.missing_arguments, or NULL for a generic one */
} RowsSpec;

static const RowsSpec ROWS_FUNCTIONS[] = {
    {"sqml_explain_table",
     "CREATE TABLE x(row_id, prediction, raw_output, baseline, feature, value, contribution, "
     "rank, experiment_name HIDDEN, source HIDDEN, top_k HIDDEN)",
     8, 3, 2, NULL},
    {"sqml_test_rows", "CREATE TABLE x(row_id, run_id HIDDEN)", 1, 1, 1, NULL},
    {"sqml_roc_curve",
     "CREATE TABLE x(class, threshold, fpr, tpr, precision, recall, auc, average_precision, "
     "brier, calibration_error, experiment_name HIDDEN, dataset HIDDEN, target HIDDEN)",
     10, 3, 2, NULL},
    {"sqml_embed_table",
     "CREATE TABLE x(row_id INTEGER, embedding BLOB, text TEXT, model HIDDEN, source HIDDEN)", 3,
     2, 2,
     "sqml_embed_table needs a model and a source: "
     "SELECT * FROM sqml_embed_table('default', 'SELECT id, text FROM ...')"},
};

#define MAX_ARGUMENTS 16

typedef struct {
    const RowsSpec *spec;
    SqmlConn *conn;
} RowsModule;

typedef struct {
    sqlite3_vtab base;
    RowsModule *module;
} RowsTable;

typedef struct {
    sqlite3_vtab_cursor base;
    void *iterator; /* the Python side's, or NULL */
    SqmlRows chunk;
    size_t index;
    sqlite3_int64 rowid;
    int eof;
} RowsCursor;

void sqml_rows_clear(SqmlRows *rows, int columns) {
    if (rows->cells != NULL)
        for (size_t i = 0; i < rows->n * (size_t)columns; i++) sqml_value_clear(&rows->cells[i]);
    free(rows->cells);
    memset(rows, 0, sizeof *rows);
}

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **error) {
    (void)argc;
    (void)argv;
    (void)error;
    RowsModule *module = (RowsModule *)aux;
    int rc = sqlite3_declare_vtab(db, module->spec->declaration);
    if (rc != SQLITE_OK) return rc;
#ifdef SQLITE_VTAB_DIRECTONLY
    /* As sqml_predict_table: never from a view or a trigger of a database's schema. */
    if (sqlite3_libversion_number() >= 3031000) {
        rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
        if (rc != SQLITE_OK) return rc;
    }
#endif
    RowsTable *table = sqlite3_malloc(sizeof(RowsTable));
    if (table == NULL) return SQLITE_NOMEM;
    memset(table, 0, sizeof(RowsTable));
    table->module = module;
    *out = &table->base;
    return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
}

/* idxNum: how many arguments (a prefix of them) the plan passes; -1 when a required one
 * is missing (xFilter then says how to call the function). */
static int rows_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
    const RowsSpec *spec = ((RowsTable *)vtab)->module->spec;
    int slots[MAX_ARGUMENTS];
    int count = spec->arguments, unusable = 0;
    for (int k = 0; k < count; k++) slots[k] = -1;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[i];
        int argument = constraint->iColumn - spec->columns;
        if (argument < 0 || argument >= count) continue;
        if (!constraint->usable || constraint->op != SQLITE_INDEX_CONSTRAINT_EQ) {
            unusable = 1;
            continue;
        }
        slots[argument] = i;
    }
    int given = 0;
    while (given < count && slots[given] >= 0) given++;
    if (given < spec->required) {
        if (unusable) return SQLITE_CONSTRAINT; /* try another plan */
        info->idxNum = -1;
        info->estimatedCost = 1e12;
        return SQLITE_OK;
    }
    for (int k = 0; k < given; k++) {
        info->aConstraintUsage[slots[k]].argvIndex = k + 1;
        info->aConstraintUsage[slots[k]].omit = 1;
    }
    info->idxNum = given;
    info->estimatedCost = 1e6 - given;
    info->estimatedRows = 100000;
    return SQLITE_OK;
}

static int rows_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
    (void)vtab;
    RowsCursor *cursor = sqlite3_malloc(sizeof(RowsCursor));
    if (cursor == NULL) return SQLITE_NOMEM;
    memset(cursor, 0, sizeof(RowsCursor));
    cursor->eof = 1;
    *out = &cursor->base;
    return SQLITE_OK;
}

static RowsModule *module_of(RowsCursor *cursor) {
    return ((RowsTable *)cursor->base.pVtab)->module;
}

/* Fail the query with message (sqlite3_malloc'd; NULL: out of memory). */
static int rows_fail(RowsCursor *cursor, char *message) {
    if (message == NULL) return SQLITE_NOMEM;
    sqlite3_vtab *vtab = cursor->base.pVtab;
    sqlite3_free(vtab->zErrMsg);
    vtab->zErrMsg = message;
    return SQLITE_ERROR;
}

static void rows_release(RowsCursor *cursor) {
    RowsModule *module = module_of(cursor);
    sqml_rows_clear(&cursor->chunk, module->spec->columns);
    cursor->index = 0;
    if (cursor->iterator != NULL) {
        SqmlBridge *bridge = sqml_conn_bridge(module->conn, NULL);
        if (bridge) bridge->rows_close(bridge->state, cursor->iterator);
        cursor->iterator = NULL;
    }
}

/* Move to the next non-empty chunk, or to the end. */
static int rows_next_chunk(RowsCursor *cursor) {
    RowsModule *module = module_of(cursor);
    SqmlBridge *bridge = sqml_conn_bridge(module->conn, NULL);
    for (;;) {
        sqml_rows_clear(&cursor->chunk, module->spec->columns);
        cursor->index = 0;
        char *error = NULL;
        int rc = bridge->rows_next(bridge->state, module->spec->name, cursor->iterator,
                                   module->spec->columns, &cursor->chunk, &error);
        if (rc < 0) return rows_fail(cursor, error);
        if (rc == 0) {
            cursor->eof = 1;
            return SQLITE_OK;
        }
        if (cursor->chunk.n > 0) {
            cursor->eof = 0;
            return SQLITE_OK;
        }
    }
}

static int rows_close(sqlite3_vtab_cursor *base) {
    RowsCursor *cursor = (RowsCursor *)base;
    rows_release(cursor);
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                       sqlite3_value **argv) {
    (void)plan_text;
    RowsCursor *cursor = (RowsCursor *)base;
    RowsModule *module = module_of(cursor);
    const RowsSpec *spec = module->spec;
    rows_release(cursor);
    cursor->eof = 1;
    cursor->rowid = 0;
    if ((plan < 0 || argc != plan) && spec->missing != NULL)
        return rows_fail(cursor, sqlite3_mprintf("%s", spec->missing));
    if (plan < 0 || argc != plan)
        return rows_fail(cursor, sqlite3_mprintf("%s needs its first %d argument(s): "
                                                 "SELECT * FROM %s(...)",
                                                 spec->name, spec->required, spec->name));
    const char *why = NULL;
    SqmlBridge *bridge = sqml_conn_bridge(module->conn, &why);
    if (bridge == NULL)
        return rows_fail(cursor, sqlite3_mprintf("%s needs sqlite-ml's Python side, which is "
                                                 "not available here: %s",
                                                 spec->name, why ? why : "unknown reason"));
    sqml_count(0, 1);
    char *error = NULL;
    cursor->iterator = bridge->rows_open(bridge->state, spec->name, argc, argv, &error);
    if (cursor->iterator == NULL) return rows_fail(cursor, error);
    return rows_next_chunk(cursor);
}

static int rows_next(sqlite3_vtab_cursor *base) {
    RowsCursor *cursor = (RowsCursor *)base;
    cursor->rowid++;
    if (++cursor->index < cursor->chunk.n) return SQLITE_OK;
    return rows_next_chunk(cursor);
}

static int rows_eof(sqlite3_vtab_cursor *base) { return ((RowsCursor *)base)->eof; }

static int rows_column(sqlite3_vtab_cursor *base, sqlite3_context *context, int column) {
    RowsCursor *cursor = (RowsCursor *)base;
    int columns = module_of(cursor)->spec->columns;
    if (column < 0 || column >= columns) { /* the hidden arguments */
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
    sqml_value_result(context, &cursor->chunk.cells[cursor->index * (size_t)columns + column]);
    return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
    *rowid = ((RowsCursor *)base)->rowid;
    return SQLITE_OK;
}

static sqlite3_module rows_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: used as a table-valued function */
    .xConnect = rows_connect,
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xDestroy = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

static void rows_module_destroy(void *data) {
    RowsModule *module = (RowsModule *)data;
    sqml_conn_release(module->conn);
    free(module);
}

int sqml_attach_rows(sqlite3 *db, SqmlConn *conn, char **error) {
    for (size_t i = 0; i < sizeof ROWS_FUNCTIONS / sizeof ROWS_FUNCTIONS[0]; i++) {
        const RowsSpec *spec = &ROWS_FUNCTIONS[i];
        RowsModule *module = malloc(sizeof(RowsModule));
        if (module == NULL) return SQLITE_NOMEM;
        sqml_conn_retain(conn);
        module->spec = spec;
        module->conn = conn;
        /* SQLite calls rows_module_destroy also when registering fails */
        int rc = sqlite3_create_module_v2(db, spec->name, &rows_module, module,
                                          rows_module_destroy);
        if (rc != SQLITE_OK) {
            if (error) *error = sqlite3_mprintf("could not register %s", spec->name);
            return rc;
        }
    }
    return SQLITE_OK;
}

/* The list above, for tests/test_native_host.py: (name, declaration, missing-argument
 * error or NULL, columns, arguments, required) each. */
size_t sqml_rows_functions(size_t index, const char **name, const char **declaration,
                           const char **missing, int counts[3]) {
    size_t total = sizeof ROWS_FUNCTIONS / sizeof ROWS_FUNCTIONS[0];
    if (index < total) {
        *name = ROWS_FUNCTIONS[index].name;
        *declaration = ROWS_FUNCTIONS[index].declaration;
        *missing = ROWS_FUNCTIONS[index].missing;
        counts[0] = ROWS_FUNCTIONS[index].columns;
        counts[1] = ROWS_FUNCTIONS[index].arguments;
        counts[2] = ROWS_FUNCTIONS[index].required;
    }
    return total;
}
