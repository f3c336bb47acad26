/* sqml_predict_table(experiment, source [, key_column]): one row per source row with its
 * row_id, prediction and probabilities, as a table-valued function that joins like a
 * table.
 *
 *  - row_id is the rowid of a table, or the value of the key column the caller names
 *    (for a view, a SELECT or any table). A view or SELECT without a key column has no
 *    row_id (NULL), and a query that constrains or joins on it is refused with a message
 *    saying to name a key column: a row number would pair predictions with the wrong
 *    rows, and a view's rowid is NULL. Key values must be unique and not NULL.
 *  - The planner sees an unconstrained scan as expensive and `row_id = ?` (and IN, which
 *    SQLite turns into one lookup per value) as cheap, so a join looks rows up instead of
 *    rescanning the function per outer row: a table's rowid directly; a key column
 *    through a table of every row's prediction, made once per statement.
 *  - Natively served models are scored here from the source rows (read in C); other
 *    models come from the Python side in chunks (ops/table_prediction.py). */
#include <stdio.h>
#include <stdlib.h>

#include "bridge.h"

enum { COL_ROW_ID, COL_PREDICTION, COL_PROBABILITIES, COL_EXPERIMENT, COL_SOURCE, COL_KEY };
enum { PLAN_ARGS = 1, PLAN_PROBABILITIES = 2, PLAN_KEY = 4, PLAN_LOOKUP = 8, PLAN_ROW_ID = 16 };
enum { KEY_NONE, KEY_ROWID, KEY_COLUMN };

/* -- SQL values the table keeps ---------------------------------------------------------- */

void sqml_value_clear(SqmlValue *value) {
    free(value->bytes);
    memset(value, 0, sizeof *value);
    value->type = SQLITE_NULL;
}

int sqml_value_set(SqmlValue *value, sqlite3_value *from) {
    sqml_value_clear(value);
    value->type = sqlite3_value_type(from);
    switch (value->type) {
    case SQLITE_INTEGER:
        value->i = sqlite3_value_int64(from);
        break;
    case SQLITE_FLOAT:
        value->d = sqlite3_value_double(from);
        break;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        const void *data = value->type == SQLITE_TEXT ? (const void *)sqlite3_value_text(from)
                                                      : sqlite3_value_blob(from);
        value->size = sqlite3_value_bytes(from);
        value->bytes = malloc((size_t)value->size + 1);
        if (value->bytes == NULL) return 0;
        if (value->size) memcpy(value->bytes, data, (size_t)value->size);
        value->bytes[value->size] = '\0';
        break;
    }
    default:
        value->type = SQLITE_NULL;
    }
    return 1;
}

void sqml_value_result(sqlite3_context *context, const SqmlValue *value) {
    switch (value->type) {
    case SQLITE_INTEGER:
        sqlite3_result_int64(context, value->i);
        break;
    case SQLITE_FLOAT:
        sqlite3_result_double(context, value->d);
        break;
    case SQLITE_TEXT:
        sqlite3_result_text(context, value->bytes, value->size, SQLITE_TRANSIENT);
        break;
    case SQLITE_BLOB:
        sqlite3_result_blob(context, value->bytes, value->size, SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_result_null(context);
    }
}

static int sqml_value_copy(SqmlValue *to, const SqmlValue *from) {
    *to = *from;
    if (from->bytes == NULL) return 1;
    to->bytes = malloc((size_t)from->size + 1);
    if (to->bytes == NULL) return 0;
    memcpy(to->bytes, from->bytes, (size_t)from->size + 1);
    return 1;
}

/* Whether an SQL value is the kept one (a copy sqml_value_set made of an equal value). */
static int value_is(const SqmlValue *kept, sqlite3_value *value) {
    int type = sqlite3_value_type(value);
    if (type != SQLITE_INTEGER && type != SQLITE_FLOAT && type != SQLITE_TEXT &&
        type != SQLITE_BLOB)
        type = SQLITE_NULL;
    if (kept->type != type) return 0;
    switch (type) {
    case SQLITE_INTEGER:
        return kept->i == sqlite3_value_int64(value);
    case SQLITE_FLOAT:
        return kept->d == sqlite3_value_double(value);
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        const void *data = type == SQLITE_TEXT ? (const void *)sqlite3_value_text(value)
                                               : sqlite3_value_blob(value);
        int size = sqlite3_value_bytes(value);
        return kept->size == size && (size == 0 || (data && memcmp(kept->bytes, data, (size_t)size) == 0));
    }
    default:
        return 1;
    }
}

void sqml_chunk_clear(SqmlChunk *chunk) {
    for (size_t i = 0; i < chunk->n; i++) {
        if (chunk->keys) sqml_value_clear(&chunk->keys[i]);
        if (chunk->predictions) sqml_value_clear(&chunk->predictions[i]);
        if (chunk->probabilities) free(chunk->probabilities[i]);
    }
    free(chunk->keys);
    free(chunk->predictions);
    free(chunk->probabilities);
    memset(chunk, 0, sizeof *chunk);
}

/* -- keys: a hash index over SQL values ----------------------------------------------- */

/* A key as SQL compares it: whole REALs as integers; text also under its number when it
 * reads as one (a lookup may hand either; SQLite checks every row returned again). */
typedef struct {
    int kind; /* 1 integer, 2 real, 3 text, 4 blob */
    int64_t i;
    double d;
    const char *bytes;
    size_t size;
} Key;

static int key_of(int type, int64_t i, double d, const char *bytes, size_t size, Key *key) {
    memset(key, 0, sizeof *key);
    switch (type) {
    case SQLITE_INTEGER:
        key->kind = 1;
        key->i = i;
        return 1;
    case SQLITE_FLOAT:
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
            key->kind = 1;
            key->i = (int64_t)d;
        } else {
            key->kind = 2;
            key->d = d;
        }
        return 1;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        key->kind = type == SQLITE_TEXT ? 3 : 4;
        key->bytes = bytes;
        key->size = size;
        return 1;
    default:
        return 0; /* NULL */
    }
}

static int numeric_key_of_text(const char *text, size_t size, Key *key) {
    if (size == 0 || size > 64) return 0;
    char copy[65], *end;
    memcpy(copy, text, size);
    copy[size] = '\0';
    double d = strtod(copy, &end);
    if (end == copy || *end != '\0' || !isfinite(d)) return 0;
    return key_of(SQLITE_FLOAT, 0, d, NULL, 0, key);
}

static uint64_t key_hash(const Key *key) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)key->kind;
    if (key->kind == 1) return (h ^ (uint64_t)key->i) * 1099511628211ull * 0x9E3779B97F4A7C15ull;
    if (key->kind == 2) {
        uint64_t bits;
        memcpy(&bits, &key->d, 8);
        return (h ^ bits) * 0x9E3779B97F4A7C15ull;
    }
    for (size_t i = 0; i < key->size; i++) h = (h ^ (unsigned char)key->bytes[i]) * 1099511628211ull;
    return h;
}

static int keys_equal(const Key *a, const Key *b) {
    if (a->kind != b->kind) return 0;
    if (a->kind == 1) return a->i == b->i;
    if (a->kind == 2) return a->d == b->d;
    return a->size == b->size && memcmp(a->bytes, b->bytes, a->size) == 0;
}

typedef struct {
    Key *keys;       /* per slot */
    uint32_t *rows;  /* per slot: row index + 1, 0 empty */
    size_t n_slots, used;
} Index;

static void index_free(Index *index) {
    free(index->keys);
    free(index->rows);
    memset(index, 0, sizeof *index);
}

static int index_put(Index *index, const Key *key, uint32_t row);

static int index_grow(Index *index) {
    Index bigger = {0};
    bigger.n_slots = index->n_slots ? index->n_slots * 2 : 1024;
    bigger.keys = malloc(bigger.n_slots * sizeof(Key));
    bigger.rows = calloc(bigger.n_slots, sizeof(uint32_t));
    if (bigger.keys == NULL || bigger.rows == NULL) {
        index_free(&bigger);
        return 0;
    }
    for (size_t s = 0; s < index->n_slots; s++)
        if (index->rows[s]) index_put(&bigger, &index->keys[s], index->rows[s] - 1);
    index_free(index);
    *index = bigger;
    return 1;
}

/* Room for n keys without growing (a made table's size is known before it is indexed). */
static int index_reserve(Index *index, size_t n) {
    while ((n + 1) * 2 > index->n_slots)
        if (!index_grow(index)) return 0;
    return 1;
}

static int index_put(Index *index, const Key *key, uint32_t row) {
    if ((index->used + 1) * 2 > index->n_slots && !index_grow(index)) return 0;
    size_t slot = key_hash(key) & (index->n_slots - 1);
    while (index->rows[slot]) slot = (slot + 1) & (index->n_slots - 1);
    index->keys[slot] = *key;
    index->rows[slot] = row + 1;
    index->used++;
    return 1;
}

/* The first row with this key after slot *from (start with *from = -1); -1 when none. */
static int64_t index_next(const Index *index, const Key *key, size_t *from) {
    if (index->n_slots == 0) return -1;
    size_t slot = *from == (size_t)-1 ? key_hash(key) & (index->n_slots - 1)
                                      : (*from + 1) & (index->n_slots - 1);
    while (index->rows[slot]) {
        if (keys_equal(&index->keys[slot], key)) {
            *from = slot;
            return (int64_t)index->rows[slot] - 1;
        }
        slot = (slot + 1) & (index->n_slots - 1);
    }
    return -1;
}

/* -- the rows of a source, made once for lookups by key ---------------------------------- */

typedef struct {
    SqmlValue *keys, *predictions;
    char **probabilities;
    size_t n, capacity;
    Index index;   /* made at the first lookup that needs it */
    int indexed;
    int ascending; /* every key an integer, each above the last: found by position */
} Store;

static void store_free(Store *store) {
    for (size_t i = 0; i < store->n; i++) {
        sqml_value_clear(&store->keys[i]);
        sqml_value_clear(&store->predictions[i]);
        if (store->probabilities) free(store->probabilities[i]);
    }
    free(store->keys);
    free(store->predictions);
    free(store->probabilities);
    index_free(&store->index);
    memset(store, 0, sizeof *store);
}

/* -- the table ------------------------------------------------------------------------- */

typedef struct {
    sqlite3_vtab base;
    SqmlConn *conn;
} Table;

typedef struct {
    /* read_sql: scan_sql with the features handed to the row reader in one call (below) */
    char *scan_sql, *read_sql, *lookup_sql, *what, *key_name;
    int key_kind;
} Source;

/* The row reader: the scan hands each row's feature values to ROW_READER_FUNCTION, which
 * encodes them straight from its arguments (sqlite3_column_value takes the connection's
 * mutex once per column; the arguments of a function need nothing) into x, and, for
 * models scored a row at a time, predicts. The reader reaches the function only through
 * SQLite's pointer passing (sqlite3_bind_pointer), which SQL text cannot forge. calls
 * counts the function's calls during one step: exactly one, or the rows are not read in
 * step with the function (the source's ORDER BY moved into our scan evaluates every row
 * before the first is returned), and the scan reads columns instead. */
#define ROW_READER_FUNCTION "_sqml_read_row"
#define ROW_READER_POINTER "sqml_row_reader"
typedef struct {
    const SqmlModel *model;
    SqmlCell *cells;
    double *x;       /* where the current row is encoded */
    double *raw;     /* a copy of it before scoring (NULL: not wanted) */
    double *work;
    int predict;     /* score the row too (rows scored one at a time) */
    int status;      /* sqml_encode_cells' answer */
    int scored;      /* sqml_model_predict's answer */
    SqmlPrediction prediction;
    sqlite3_value **unsure; /* a near tie's feature values, for the Python side */
    uint32_t n, n_unsure;
    int calls;
    char message[SQML_ERROR_SIZE];
} RowReader;

typedef struct {
    sqlite3_vtab_cursor base;
    int plan;
    int python;  /* how rows are made for these arguments: 0 natively, 1 by the Python side */
    int mode;    /* what the current iteration reads: ROWS, LOOKUP_ROW or STORE */
    int eof;
    sqlite3_int64 row_number;
    /* the arguments the current rows were made for */
    SqmlValue experiment, source, key_column;
    /* copies for the Python side: its exact answers and its rows */
    sqlite3_value *experiment_value, *source_value, *key_value;
    int prepared;
    /* natively */
    SqmlServed *served;
    const SqmlModel *model;
    Source query;
    sqlite3_stmt *stmt, *lookup;
    RowReader reader;
    int reading; /* stmt hands rows to the reader (read_sql), else columns (scan_sql) */
    double *x, *raw, *work, *probabilities;
    SqmlCell *cells;
    SqmlPrediction prediction;
    SqmlValue exact; /* the Python side's answer for a near tie */
    int has_exact;
    long long counted; /* rows scored natively not yet added to sqml_count's total */
    int probabilities_ready;
    /* natively, tree models: rows read and scored a block at a time */
    struct {
        int on;
        double *x;              /* SQML_BLOCK_ROWS x width encoded rows */
        float *rounded;         /* the same as float32, for trees that compare those */
        uint32_t *leaves;       /* rows x n_trees */
        SqmlValue *keys;        /* row_id of each row */
        SqmlPrediction *predictions;
        size_t n, at;
        int done;               /* the statement has no more rows */
    } block;
    /* from the Python side */
    void *iterator;
    SqmlChunk chunk;
    size_t index;
    /* keys of a key column met so far (they must be unique) */
    Index seen;
    SqmlValue *seen_keys;
    size_t n_seen, seen_capacity;
    int seen_hashed; /* the keys are in seen (else they are integers, each above the last) */
    /* lookups through the made table */
    Store store;
    int store_ready;
    SqmlValue wanted;
    size_t slot;
    int64_t current;
    int second_try; /* a text lookup also tried as a number */
    int found_one;  /* the one row with an ascending table's key is current (no next) */
    size_t hint;    /* an ascending table's row after the one last found */
    Key wanted_key, number_key;
} Cursor;

enum { ROWS = 0, LOOKUP_ROW = 1, STORE = 2 };

static int table_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **error) {
    (void)argc;
    (void)argv;
    (void)error;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(row_id, prediction, probabilities TEXT, "
                                      "experiment HIDDEN, source HIDDEN, key_column HIDDEN)");
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
    table->conn = (SqmlConn *)aux;
    *out = &table->base;
    return SQLITE_OK;
}

static int table_disconnect(sqlite3_vtab *vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int table_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
    (void)vtab;
    int slots[3] = {-1, -1, -1}, lookup = -1, unusable = 0, row_id = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[i];
        int column = constraint->iColumn;
        if (column == COL_ROW_ID) {
            row_id = 1; /* joined or filtered on, in some plan: it must mean something */
            if (constraint->usable && constraint->op == SQLITE_INDEX_CONSTRAINT_EQ && lookup < 0)
                lookup = i;
            continue;
        }
        if (column < COL_EXPERIMENT) continue;
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
    int argument = 0;
    info->idxNum = PLAN_ARGS | (row_id ? PLAN_ROW_ID : 0);
    for (int k = 0; k < 3; k++) {
        if (slots[k] < 0) continue;
        info->aConstraintUsage[slots[k]].argvIndex = ++argument;
        info->aConstraintUsage[slots[k]].omit = 1;
        if (k == 2) info->idxNum |= PLAN_KEY;
    }
    /* Probabilities cost a predict_proba and JSON per row: only when a query reads them. */
    if (info->colUsed & ((sqlite3_uint64)1 << COL_PROBABILITIES)) info->idxNum |= PLAN_PROBABILITIES;
    if (lookup >= 0) {
        info->aConstraintUsage[lookup].argvIndex = ++argument;
        info->aConstraintUsage[lookup].omit = 0; /* SQLite checks each row again */
        info->idxNum |= PLAN_LOOKUP;
        info->estimatedCost = 25;
        info->estimatedRows = 1;
    } else {
        /* Reading and predicting every source row: never worth repeating per outer row. */
        info->estimatedCost = 1e9;
        info->estimatedRows = 1000000;
    }
    return SQLITE_OK;
}

static int table_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
    (void)vtab;
    Cursor *cursor = calloc(1, sizeof(Cursor));
    if (cursor == NULL) return SQLITE_NOMEM;
    cursor->eof = 1;
    cursor->experiment.type = cursor->source.type = cursor->key_column.type = SQLITE_NULL;
    cursor->exact.type = cursor->wanted.type = SQLITE_NULL;
    *out = &cursor->base;
    return SQLITE_OK;
}

static void source_free(Source *q) {
    sqlite3_free(q->scan_sql);
    sqlite3_free(q->read_sql);
    sqlite3_free(q->lookup_sql);
    sqlite3_free(q->what);
    sqlite3_free(q->key_name);
    memset(q, 0, sizeof *q);
}

static Table *table_of(Cursor *cursor) { return (Table *)cursor->base.pVtab; }

static void forget_seen(Cursor *cursor) {
    index_free(&cursor->seen);
    for (size_t i = 0; i < cursor->n_seen; i++) sqml_value_clear(&cursor->seen_keys[i]);
    free(cursor->seen_keys);
    cursor->seen_keys = NULL;
    cursor->n_seen = cursor->seen_capacity = 0;
    cursor->seen_hashed = 0;
}

/* Stop reading rows (the statement, the Python side's iterator). */
static void clear_block(Cursor *cursor) {
    for (size_t i = 0; cursor->block.keys && i < cursor->block.n; i++)
        sqml_value_clear(&cursor->block.keys[i]);
    cursor->block.n = cursor->block.at = 0;
    cursor->block.done = 0;
}

static void forget_unsure(RowReader *reader) {
    for (uint32_t f = 0; f < reader->n_unsure; f++) sqlite3_value_free(reader->unsure[f]);
    free(reader->unsure);
    reader->unsure = NULL;
    reader->n_unsure = 0;
}

static void close_rows(Cursor *cursor) {
    sqlite3_finalize(cursor->stmt);
    cursor->stmt = NULL;
    cursor->reading = 0;
    forget_unsure(&cursor->reader);
    clear_block(cursor);
    if (cursor->iterator) {
        SqmlBridge *bridge = sqml_conn_bridge(table_of(cursor)->conn, NULL);
        if (bridge) bridge->table_close(bridge->state, cursor->iterator);
        cursor->iterator = NULL;
    }
    sqml_chunk_clear(&cursor->chunk);
    sqml_value_clear(&cursor->exact);
    cursor->has_exact = 0;
    forget_seen(cursor);
    cursor->eof = 1;
}

/* Everything made for one set of arguments (the model, the query, the made table). */
static void forget_arguments(Cursor *cursor) {
    close_rows(cursor);
    sqlite3_finalize(cursor->lookup);
    cursor->lookup = NULL;
    store_free(&cursor->store);
    cursor->store_ready = 0;
    source_free(&cursor->query);
    sqml_served_release(cursor->served);
    cursor->served = NULL;
    cursor->model = NULL;
    free(cursor->x);
    cursor->x = NULL;
    free(cursor->block.x);
    free(cursor->block.rounded);
    free(cursor->block.leaves);
    free(cursor->block.keys);
    free(cursor->block.predictions);
    memset(&cursor->block, 0, sizeof cursor->block);
    sqml_value_clear(&cursor->experiment);
    sqml_value_clear(&cursor->source);
    sqml_value_clear(&cursor->key_column);
    sqlite3_value_free(cursor->experiment_value);
    sqlite3_value_free(cursor->source_value);
    sqlite3_value_free(cursor->key_value);
    cursor->experiment_value = cursor->source_value = cursor->key_value = NULL;
    cursor->python = 0;
    cursor->prepared = 0;
}

/* Rows scored natively, added to the process's total a batch at a time (its atomic add is
 * a full memory barrier: once per row it waited for the row's lookups). */
static void count_native(Cursor *cursor, long long rows) {
    cursor->counted += rows;
    if (cursor->counted >= 65536) {
        sqml_count((int)cursor->counted, 0);
        cursor->counted = 0;
    }
}

static int table_close(sqlite3_vtab_cursor *base) {
    Cursor *cursor = (Cursor *)base;
    if (cursor->counted) sqml_count((int)cursor->counted, 0);
    forget_arguments(cursor);
    sqml_value_clear(&cursor->wanted);
    free(cursor);
    return SQLITE_OK;
}

static int fail(Cursor *cursor, const char *message) {
    Table *table = table_of(cursor);
    sqlite3_free(table->base.zErrMsg);
    table->base.zErrMsg = sqlite3_mprintf("%s", message);
    cursor->eof = 1;
    return SQLITE_ERROR;
}

static int fail_owned(Cursor *cursor, char *message) {
    Table *table = table_of(cursor);
    sqlite3_free(table->base.zErrMsg);
    table->base.zErrMsg = message ? message : sqlite3_mprintf("sqml_predict_table failed");
    cursor->eof = 1;
    return SQLITE_ERROR;
}
/* -- the source, as C reads it ----------------------------------------------------------- */

static char *quote_identifier(const char *name) {
    return sqlite3_mprintf("\"%w\"", name);
}

static int starts_with_select(const char *text) {
    while (*text == ' ' || (*text >= '\t' && *text <= '\r')) text++;
    static const char *words[] = {"select", "with", "values"};
    for (int w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (sqlite3_strnicmp(text, words[w], (int)n) == 0) {
            char next = text[n];
            if (!((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
                  (next >= '0' && next <= '9') || next == '_' || (unsigned char)next >= 0x80))
                return 1;
        }
    }
    return 0;
}

/* The table or view called name (as find_relation looks it up): its quoted SQL name and
 * kind; 0 when there is none. */
static int find_relation(sqlite3 *db, const char *name, char **sql_name, char **kind,
                         char **shown) {
    sqlite3_stmt *stmt = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, type FROM (SELECT name, type, 0 AS place FROM "
                           "sqlite_temp_master UNION ALL SELECT name, type, 1 FROM sqlite_master)"
                           " WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE"
                           " ORDER BY name = ?1 DESC, place LIMIT 1",
                           -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            *sql_name = quote_identifier((const char *)sqlite3_column_text(stmt, 0));
            *kind = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 1));
            *shown = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 0));
            found = 1;
        }
    }
    sqlite3_finalize(stmt);
    if (found) return 1;
    /* schema.name in an attached database: every split, the leftmost first */
    for (const char *dot = strchr(name, '.'); dot && !found; dot = strchr(dot + 1, '.')) {
        char *schema = sqlite3_mprintf("%.*s", (int)(dot - name), name);
        const char *table = dot + 1;
        char *real_schema = NULL;
        if (schema && *table &&
            sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list WHERE name = ?1 "
                                   "COLLATE NOCASE", -1, &stmt, NULL) == SQLITE_OK) {
            sqlite3_bind_text(stmt, 1, schema, -1, SQLITE_STATIC);
            if (sqlite3_step(stmt) == SQLITE_ROW)
                real_schema = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 0));
        }
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (real_schema) {
            const char *master = sqlite3_stricmp(real_schema, "temp") == 0 ? "sqlite_temp_master"
                                                                            : "sqlite_master";
            char *sql = sqlite3_mprintf("SELECT name, type FROM \"%w\".%s WHERE type IN "
                                        "('table', 'view') AND name = ?1 COLLATE NOCASE ORDER BY "
                                        "name = ?1 DESC LIMIT 1",
                                        real_schema, master);
            if (sql && sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK) {
                sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
                if (sqlite3_step(stmt) == SQLITE_ROW) {
                    *sql_name = sqlite3_mprintf("\"%w\".\"%w\"", real_schema,
                                                sqlite3_column_text(stmt, 0));
                    *kind = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 1));
                    *shown = sqlite3_mprintf("%s", name);
                    found = 1;
                }
            }
            sqlite3_finalize(stmt);
            stmt = NULL;
            sqlite3_free(sql);
        }
        sqlite3_free(real_schema);
        sqlite3_free(schema);
    }
    return found;
}

static int ascii_equal_nocase(const char *a, const char *b) {
    for (;; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
        if (x == '\0') return 1;
    }
}

/* The source's own spelling of a column (exact, else the one that matches ignoring
 * ASCII case), or -1. */
static int match_column(sqlite3_stmt *columns, const char *name) {
    int n = sqlite3_column_count(columns), found = -1, count = 0;
    for (int c = 0; c < n; c++)
        if (strcmp(sqlite3_column_name(columns, c), name) == 0) return c;
    for (int c = 0; c < n; c++)
        if (ascii_equal_nocase(sqlite3_column_name(columns, c), name)) found = c, count++;
    return count == 1 ? found : -1;
}

static void list_columns(sqlite3_stmt *columns, SqmlBuffer *out) {
    int n = sqlite3_column_count(columns);
    for (int c = 0; c < n; c++) {
        if (c) sqml_buffer_text(out, ", ");
        sqml_buffer_text(out, "'");
        sqml_buffer_text(out, sqlite3_column_name(columns, c));
        sqml_buffer_text(out, "'");
    }
    if (n == 0) sqml_buffer_text(out, "no columns");
}

/* The queries that read source for model: SQML_ENCODED, or an error or defer with
 * message (the Python side words source errors when it is there). */
static int resolve_source(sqlite3 *db, const SqmlModel *model, sqlite3_value *source,
                          sqlite3_value *key_column, Source *q, char *message) {
    int is_text = sqlite3_value_type(source) == SQLITE_TEXT; /* before reading it as text */
    const char *text = is_text ? (const char *)sqlite3_value_text(source) : NULL;
    if (!is_text || text == NULL || !*text) {
        snprintf(message, SQML_ERROR_SIZE,
                 "sqml_predict_table source must be a table or view name or a SELECT statement");
        return SQML_ENCODE_DEFER;
    }
    char *inner = NULL;
    int rowid = 0;
    if (starts_with_select(text)) {
        inner = sqlite3_mprintf("(%s\n)", text);
        q->what = sqlite3_mprintf("the SELECT");
    } else {
        char *kind = NULL, *shown = NULL;
        if (!find_relation(db, text, &inner, &kind, &shown)) {
            char cut[128];
            sqml_shorten(text, strlen(text), cut, sizeof cut);
            snprintf(message, SQML_ERROR_SIZE,
                     "sqml_predict_table source: unknown dataset '%s' (no table or view has "
                     "that name)",
                     cut);
            return SQML_ENCODE_DEFER;
        }
        q->what = sqlite3_mprintf("%s '%s'", kind, shown);
        if (kind && strcmp(kind, "table") == 0) {
            char *probe = sqlite3_mprintf("SELECT rowid FROM %s LIMIT 0", inner);
            sqlite3_stmt *stmt = NULL;
            rowid = probe && sqlite3_prepare_v2(db, probe, -1, &stmt, NULL) == SQLITE_OK;
            sqlite3_finalize(stmt);
            sqlite3_free(probe);
        }
        sqlite3_free(kind);
        sqlite3_free(shown);
    }
    char *probe = sqlite3_mprintf("SELECT * FROM %s LIMIT 0", inner);
    sqlite3_stmt *columns = NULL;
    if (probe == NULL || sqlite3_prepare_v2(db, probe, -1, &columns, NULL) != SQLITE_OK) {
        char cut[128];
        sqml_shorten(text, strlen(text), cut, sizeof cut);
        snprintf(message, SQML_ERROR_SIZE,
                 "sqml_predict_table source is not a single SELECT that runs (%s): %s",
                 sqlite3_errmsg(db), cut);
        sqlite3_free(probe);
        sqlite3_finalize(columns);
        sqlite3_free(inner);
        return SQML_ENCODE_DEFER;
    }
    sqlite3_free(probe);
    SqmlBuffer select = {0}, missing = {0};
    int n_missing = 0;
    const char *key = NULL;
    if (key_column != NULL && sqlite3_value_type(key_column) != SQLITE_NULL) {
        int is_name = sqlite3_value_type(key_column) == SQLITE_TEXT;
        key = is_name ? (const char *)sqlite3_value_text(key_column) : NULL;
        int c = key ? match_column(columns, key) : -1;
        if (c < 0) {
            SqmlBuffer have = {0};
            list_columns(columns, &have);
            snprintf(message, SQML_ERROR_SIZE,
                     "sqml_predict_table key column '%s' is not a column of %s; it has %s",
                     key ? key : "?", q->what, have.data ? have.data : "");
            sqml_buffer_free(&have);
            sqlite3_finalize(columns);
            sqlite3_free(inner);
            return SQML_ENCODE_DEFER;
        }
        char *quoted = quote_identifier(sqlite3_column_name(columns, c));
        sqml_buffer_text(&select, quoted);
        sqlite3_free(quoted);
        q->key_kind = KEY_COLUMN;
        q->key_name = sqlite3_mprintf("%s", sqlite3_column_name(columns, c));
    } else if (rowid) {
        sqml_buffer_text(&select, "rowid");
        q->key_kind = KEY_ROWID;
        q->key_name = sqlite3_mprintf("rowid");
    } else {
        sqml_buffer_text(&select, "NULL");
        q->key_kind = KEY_NONE;
    }
    size_t key_end = select.size; /* the features follow, each after ", " */
    for (uint32_t f = 0; f < sqml_model_n_features(model); f++) {
        const char *name = sqml_model_feature(model, f)->name.text;
        int c = match_column(columns, name);
        if (c < 0) {
            if (n_missing++) sqml_buffer_text(&missing, ", ");
            sqml_buffer_text(&missing, "'");
            sqml_buffer_text(&missing, name);
            sqml_buffer_text(&missing, "'");
            continue;
        }
        char *quoted = quote_identifier(sqlite3_column_name(columns, c));
        sqml_buffer_text(&select, ", ");
        sqml_buffer_text(&select, quoted);
        sqlite3_free(quoted);
    }
    if (n_missing) {
        SqmlBuffer have = {0};
        list_columns(columns, &have);
        snprintf(message, SQML_ERROR_SIZE,
                 "sqml_predict_table source %s lacks the model's column(s) %s; it has %s", q->what,
                 missing.data, have.data ? have.data : "");
        sqml_buffer_free(&have);
    }
    sqlite3_finalize(columns);
    int status = n_missing ? SQML_ENCODE_DEFER : SQML_ENCODED;
    if (!n_missing && !select.failed) {
        q->scan_sql = sqlite3_mprintf("SELECT %s FROM %s", select.data, inner);
        /* the key, then the features as the row reader's arguments */
        if (select.size > key_end)
            q->read_sql = sqlite3_mprintf("SELECT %.*s, " ROW_READER_FUNCTION
                                          "($" ROW_READER_POINTER "%s) FROM %s",
                                          (int)key_end, select.data, select.data + key_end, inner);
        if (rowid)
            q->lookup_sql = sqlite3_mprintf("SELECT %s FROM %s WHERE rowid = ?1", select.data, inner);
    }
    if (status == SQML_ENCODED && q->scan_sql == NULL) {
        snprintf(message, SQML_ERROR_SIZE, "out of memory");
        status = SQML_ENCODE_ERROR;
    }
    sqml_buffer_free(&select);
    sqml_buffer_free(&missing);
    sqlite3_free(inner);
    return status;
}

/* -- keys of a key column ------------------------------------------------------------------ */

static void cell_of_value(const SqmlValue *value, SqmlCell *cell) {
    memset(cell, 0, sizeof *cell);
    switch (value->type) {
    case SQLITE_INTEGER:
        cell->type = SQML_CELL_INTEGER;
        cell->i = value->i;
        break;
    case SQLITE_FLOAT:
        cell->type = SQML_CELL_REAL;
        cell->d = value->d;
        break;
    case SQLITE_TEXT:
        cell->type = SQML_CELL_TEXT;
        cell->text = value->bytes;
        cell->size = (size_t)value->size;
        break;
    case SQLITE_BLOB:
        cell->type = SQML_CELL_BLOB;
        cell->size = (size_t)value->size;
        break;
    default:
        cell->type = SQML_CELL_NULL;
    }
}

/* A key column's value must be unique and not NULL, or rows could pair wrongly. */
static int check_key(Cursor *cursor, const SqmlValue *key) {
    char shown[128], message[SQML_ERROR_SIZE];
    if (key->type == SQLITE_NULL) {
        snprintf(message, sizeof message,
                 "sqml_predict_table: key column '%s' of %s is NULL in source row %lld; a key "
                 "must name every row (filter those rows out, or name another column)",
                 cursor->query.key_name, cursor->query.what, (long long)cursor->row_number);
        return fail(cursor, message);
    }
    if (cursor->n_seen == cursor->seen_capacity) {
        size_t capacity = cursor->seen_capacity ? cursor->seen_capacity * 2 : 1024;
        SqmlValue *grown = realloc(cursor->seen_keys, capacity * sizeof(SqmlValue));
        if (grown == NULL) return SQLITE_NOMEM;
        cursor->seen_keys = grown;
        cursor->seen_capacity = capacity;
    }
    /* a copy whose bytes stay where they are: the index points at them */
    SqmlValue *copy = &cursor->seen_keys[cursor->n_seen];
    *copy = *key;
    if (key->bytes) {
        copy->bytes = malloc((size_t)key->size + 1);
        if (copy->bytes == NULL) return SQLITE_NOMEM;
        memcpy(copy->bytes, key->bytes, (size_t)key->size + 1);
    }
    cursor->n_seen++;
    /* Integer keys each above the last are unique without a hash (a view of a table in
     * its own order); the first key that is not has every key before it hashed. */
    if (!cursor->seen_hashed) {
        if (copy->type == SQLITE_INTEGER &&
            (cursor->n_seen == 1 || copy->i > cursor->seen_keys[cursor->n_seen - 2].i))
            return SQLITE_OK;
        for (size_t i = 0; i + 1 < cursor->n_seen; i++) {
            const SqmlValue *v = &cursor->seen_keys[i];
            Key earlier;
            key_of(v->type, v->i, v->d, v->bytes, (size_t)v->size, &earlier);
            if (!index_put(&cursor->seen, &earlier, (uint32_t)i)) {
                index_free(&cursor->seen); /* (a later call starts the catch-up again) */
                return SQLITE_NOMEM;
            }
        }
        cursor->seen_hashed = 1;
    }
    Key k;
    key_of(copy->type, copy->i, copy->d, copy->bytes, (size_t)copy->size, &k);
    size_t from = (size_t)-1;
    if (index_next(&cursor->seen, &k, &from) >= 0) {
        SqmlCell cell;
        cell_of_value(key, &cell);
        sqml_describe_cell(&cell, shown, sizeof shown);
        snprintf(message, sizeof message,
                 "sqml_predict_table: key column '%s' of %s is not unique (%s appears more than "
                 "once); name a column whose values tell every row apart",
                 cursor->query.key_name, cursor->query.what, shown);
        return fail(cursor, message);
    }
    if (!index_put(&cursor->seen, &k, (uint32_t)(cursor->n_seen - 1))) return SQLITE_NOMEM;
    return SQLITE_OK;
}

/* -- native rows ---------------------------------------------------------------------------- */

/* How an error names a source row: by rowid, by key, else by number. */
static void row_name(Cursor *cursor, sqlite3_stmt *stmt, char *out, size_t size) {
    if (cursor->query.key_kind == KEY_ROWID) {
        snprintf(out, size, "sqml_predict_table: source row with rowid %lld: ",
                 (long long)sqlite3_column_int64(stmt, 0));
    } else if (cursor->query.key_kind == KEY_COLUMN) {
        SqmlValue key = {0};
        char shown[128];
        SqmlCell cell;
        key.type = SQLITE_NULL;
        sqml_value_set(&key, sqlite3_column_value(stmt, 0));
        cell_of_value(&key, &cell);
        sqml_describe_cell(&cell, shown, sizeof shown);
        sqml_value_clear(&key);
        snprintf(out, size, "sqml_predict_table: source row with %s %s: ", cursor->query.key_name,
                 shown);
    } else {
        snprintf(out, size, "sqml_predict_table: source row %lld: ", (long long)cursor->row_number);
    }
}

/* ROW_READER_FUNCTION($reader, feature values...): encodes (and scores) one row for the
 * reader; returns NULL. */
static void read_row_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    RowReader *reader = argc > 0 ? sqlite3_value_pointer(argv[0], ROW_READER_POINTER) : NULL;
    if (reader == NULL || reader->model == NULL || (uint32_t)argc != reader->n + 1) {
        sqlite3_result_error(context, ROW_READER_FUNCTION " is internal to sqml_predict_table",
                             -1);
        return;
    }
    reader->calls++;
    if (sqml_encode_numbers(reader->model, argv + 1, reader->x)) {
        reader->status = SQML_ENCODED;
    } else {
        for (uint32_t f = 0; f < reader->n; f++)
            sqml_cell_from_value(argv[f + 1], &reader->cells[f]);
        reader->status =
            sqml_encode_cells(reader->model, reader->cells, "", reader->x, reader->message);
    }
    sqlite3_result_null(context);
    if (reader->status != SQML_ENCODED || !reader->predict) return;
    if (reader->raw) memcpy(reader->raw, reader->x, sizeof(double) * sqml_model_width(reader->model));
    reader->scored = sqml_model_predict(reader->model, reader->x, reader->work, &reader->prediction);
    if (reader->scored != SQML_UNSURE || reader->unsure) return;
    /* a near tie: the values, for the Python side's exact answer (score_row) */
    reader->unsure = calloc(reader->n, sizeof(sqlite3_value *));
    if (reader->unsure == NULL) return;
    for (uint32_t f = 0; f < reader->n; f++) {
        reader->unsure[f] = sqlite3_value_dup(argv[f + 1]);
        reader->n_unsure = f + 1;
        if (reader->unsure[f] == NULL) {
            reader->scored = SQML_SCORED; /* no memory to ask: the native answer stands */
            break;
        }
    }
}

/* Whether the statement's current row came through the reader. */
static int read_by_reader(Cursor *cursor, sqlite3_stmt *stmt) {
    return cursor->reading && stmt == cursor->stmt;
}

/* The statement's current row encoded into x: by the reader already (it was handed x
 * before the step), or from the statement's columns. sqml_encode_cells' answer. */
static int encode_current(Cursor *cursor, sqlite3_stmt *stmt, double *x, char *message) {
    if (read_by_reader(cursor, stmt)) {
        if (cursor->reader.status != SQML_ENCODED)
            memcpy(message, cursor->reader.message, SQML_ERROR_SIZE);
        return cursor->reader.status;
    }
    uint32_t n = sqml_model_n_features(cursor->model);
    for (uint32_t f = 0; f < n; f++)
        sqml_cell_from_value(sqlite3_column_value(stmt, (int)f + 1), &cursor->cells[f]);
    return sqml_encode_cells(cursor->model, cursor->cells, "", x, message);
}

/* The scan reading the source's columns (scan_sql) in place of the current statement. */
static int open_by_columns(Cursor *cursor, sqlite3 *db) {
    sqlite3_finalize(cursor->stmt);
    cursor->stmt = NULL;
    cursor->reading = 0;
    if (sqlite3_prepare_v2(db, cursor->query.scan_sql, -1, &cursor->stmt, NULL) != SQLITE_OK) {
        char message[SQML_ERROR_SIZE];
        snprintf(message, sizeof message, "sqml_predict_table: cannot read %s: %s",
                 cursor->query.what, sqlite3_errmsg(db));
        return fail(cursor, message);
    }
    return SQLITE_OK;
}

/* Score the statement's current row. */
static int score_row(Cursor *cursor, sqlite3_stmt *stmt) {
    const SqmlModel *model = cursor->model;
    uint32_t n = sqml_model_n_features(model);
    int reader = read_by_reader(cursor, stmt);
    char where[256], message[SQML_ERROR_SIZE], full[SQML_ERROR_SIZE + 256];
    uint32_t width = sqml_model_width(model);
    if (encode_current(cursor, stmt, cursor->x, message) != SQML_ENCODED) {
        row_name(cursor, stmt, where, sizeof where);
        snprintf(full, sizeof full, "%s%s", where, message);
        return fail(cursor, full);
    }
    cursor->probabilities_ready = 0;
    sqml_value_clear(&cursor->exact);
    cursor->has_exact = 0;
    int scored;
    if (reader) {
        scored = cursor->reader.scored;
        cursor->prediction = cursor->reader.prediction;
    } else {
        if (cursor->plan & PLAN_PROBABILITIES) memcpy(cursor->raw, cursor->x, sizeof(double) * width);
        scored = sqml_model_predict(model, cursor->x, cursor->work, &cursor->prediction);
    }
    if (reader && scored == SQML_UNSURE && cursor->reader.n_unsure != n) scored = SQML_SCORED;
    if (scored == SQML_UNSURE && n < 4096 && cursor->experiment_value != NULL) {
        /* a near tie: scikit-learn's own arithmetic decides, when the Python side is here */
        SqmlBridge *bridge = sqml_conn_bridge(table_of(cursor)->conn, NULL);
        if (bridge != NULL) {
            sqlite3_value *argv[1 + 4096];
            argv[0] = cursor->experiment_value;
            for (uint32_t f = 0; f < n; f++)
                argv[f + 1] = reader ? cursor->reader.unsure[f]
                                     : sqlite3_column_value(stmt, (int)f + 1);
            char *error = NULL;
            sqml_count(0, 1);
            if (bridge->call_value(bridge->state, SQML_EXACT_ROW, (int)n + 1, argv,
                                   &cursor->exact, &error) != 0)
                return fail_owned(cursor, error);
            cursor->has_exact = 1;
        }
    }
    count_native(cursor, 1);
    return SQLITE_OK;
}

/* The next row of stmt, scored; eof at the end. */
/* The next source row: SQLITE_ROW (counted), SQLITE_DONE, or the error, reported. */
static int step_source(Cursor *cursor, sqlite3_stmt *stmt, double *x) {
    int reader = read_by_reader(cursor, stmt);
    if (reader) {
        forget_unsure(&cursor->reader);
        cursor->reader.x = x;
        cursor->reader.calls = 0;
    }
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && reader && cursor->reader.calls != 1) {
        if (cursor->row_number != 0) {
            char message[SQML_ERROR_SIZE];
            snprintf(message, sizeof message,
                     "sqml_predict_table: the rows of %s were not read in step after row %lld "
                     "(internal error); nothing is returned past it",
                     cursor->query.what, (long long)cursor->row_number);
            return fail(cursor, message);
        }
        /* the function ran for other rows than the one returned (a sorted source): read
         * the columns instead, from the first row */
        int opened = open_by_columns(cursor, sqlite3_db_handle(stmt));
        if (opened != SQLITE_OK) return opened;
        stmt = cursor->stmt;
        rc = sqlite3_step(stmt);
    }
    if (rc == SQLITE_DONE) return rc;
    if (rc != SQLITE_ROW) {
        char message[SQML_ERROR_SIZE];
        snprintf(message, sizeof message, "sqml_predict_table: reading %s failed: %s",
                 cursor->query.what, sqlite3_errmsg(sqlite3_db_handle(stmt)));
        return fail(cursor, message);
    }
    cursor->row_number++;
    return rc;
}

static int native_step(Cursor *cursor, sqlite3_stmt *stmt) {
    int scan = stmt == cursor->stmt;
    if (read_by_reader(cursor, stmt)) {
        cursor->reader.predict = 1;
        cursor->reader.raw = (cursor->plan & PLAN_PROBABILITIES) ? cursor->raw : NULL;
        cursor->reader.work = cursor->work;
    }
    int rc = step_source(cursor, stmt, cursor->x);
    if (scan) stmt = cursor->stmt; /* step_source may have reopened it */
    if (rc == SQLITE_DONE) {
        cursor->eof = 1;
        return SQLITE_OK;
    }
    if (rc != SQLITE_ROW) return rc;
    if (cursor->query.key_kind == KEY_COLUMN) {
        SqmlValue key = {0};
        key.type = SQLITE_NULL;
        if (!sqml_value_set(&key, sqlite3_column_value(stmt, 0))) return SQLITE_NOMEM;
        int checked = check_key(cursor, &key);
        sqml_value_clear(&key);
        if (checked != SQLITE_OK) return checked;
    }
    return score_row(cursor, stmt);
}

/* The current native row's prediction, as a value the table keeps. */
static int native_prediction_value(Cursor *cursor, SqmlValue *out) {
    const SqmlModel *model = cursor->model;
    memset(out, 0, sizeof *out);
    if (cursor->has_exact) {
        *out = cursor->exact;
        memset(&cursor->exact, 0, sizeof cursor->exact);
        cursor->exact.type = SQLITE_NULL;
        cursor->has_exact = 0;
        return 1;
    }
    int kind = sqml_model_label_kind(model);
    if (kind == SQML_LABELS_CLUSTER) {
        out->type = SQLITE_INTEGER;
        out->i = cursor->prediction.index;
    } else if (kind == SQML_LABELS_TEXT) {
        const SqmlText *label = sqml_model_text_label(model, (uint32_t)cursor->prediction.index);
        out->type = SQLITE_TEXT;
        out->bytes = malloc(label->size + 1);
        if (out->bytes == NULL) return 0;
        memcpy(out->bytes, label->text, label->size + 1);
        out->size = (int)label->size;
    } else {
        out->type = SQLITE_FLOAT;
        out->d = sqml_model_is_regression(model)
                     ? cursor->prediction.value
                     : sqml_model_number_label(model, (uint32_t)cursor->prediction.index);
        if (isnan(out->d)) out->type = SQLITE_NULL;
    }
    return 1;
}

/* The current native row's probabilities as JSON (NULL when the model has none). */
static char *native_probabilities_json(Cursor *cursor, int *failed) {
    const SqmlModel *model = cursor->model;
    *failed = 0;
    if (!sqml_model_has_probabilities(model)) return NULL;
    if (!cursor->probabilities_ready && cursor->block.on && cursor->mode == ROWS) {
        const uint32_t *leaves =
            cursor->block.leaves + cursor->block.at * sqml_model_n_trees(model);
        sqml_model_probabilities_leaves(model, leaves, cursor->work, cursor->probabilities);
        cursor->probabilities_ready = 1;
    } else if (!cursor->probabilities_ready) {
        uint32_t width = sqml_model_width(model);
        memcpy(cursor->x, cursor->raw, sizeof(double) * width);
        sqml_model_probabilities(model, cursor->x, cursor->work, cursor->probabilities);
        cursor->probabilities_ready = 1;
    }
    SqmlBuffer out = {0};
    sqml_json_probabilities(&out, model, cursor->probabilities, 1);
    if (out.failed) {
        *failed = 1;
        sqml_buffer_free(&out);
        return NULL;
    }
    return out.data;
}

/* -- tree models, a block of rows at a time -------------------------------------------------- */

/* Read up to a block of rows, then walk each tree for all of them while it is in the
 * cache (the same numbers as one row at a time). */
static int fill_block(Cursor *cursor) {
    const SqmlModel *model = cursor->model;
    uint32_t width = sqml_model_width(model);
    uint32_t trees = sqml_model_n_trees(model);
    sqlite3_stmt *stmt = cursor->stmt;
    sqlite3_int64 last = cursor->row_number; /* the number of the last row read before */
    clear_block(cursor);
    cursor->reader.predict = 0;
    size_t count = 0;
    while (count < SQML_BLOCK_ROWS) {
        int rc = step_source(cursor, stmt, cursor->block.x + count * width);
        stmt = cursor->stmt; /* step_source may have reopened it */
        if (rc == SQLITE_DONE) {
            cursor->block.done = 1;
            break;
        }
        if (rc != SQLITE_ROW) return rc;
        SqmlValue *key = &cursor->block.keys[count];
        memset(key, 0, sizeof *key);
        key->type = SQLITE_NULL;
        if (cursor->query.key_kind != KEY_NONE &&
            !sqml_value_set(key, sqlite3_column_value(stmt, 0)))
            return SQLITE_NOMEM;
        cursor->block.n = count + 1; /* the key is the block's to free from here */
        if (cursor->query.key_kind == KEY_COLUMN) {
            int checked = check_key(cursor, key);
            if (checked != SQLITE_OK) return checked;
        }
        char where[256], message[SQML_ERROR_SIZE], full[SQML_ERROR_SIZE + 256];
        if (encode_current(cursor, stmt, cursor->block.x + count * width, message) !=
            SQML_ENCODED) {
            row_name(cursor, stmt, where, sizeof where);
            snprintf(full, sizeof full, "%s%s", where, message);
            return fail(cursor, full);
        }
        count++;
    }
    cursor->block.n = count;
    cursor->block.at = 0;
    if (count == 0) {
        cursor->eof = 1;
        return SQLITE_OK;
    }
    sqml_model_leaves_rows(model, cursor->block.x, count, cursor->block.rounded,
                           cursor->block.leaves);
    for (size_t r = 0; r < count; r++)
        sqml_model_predict_leaves(model, cursor->block.leaves + r * trees, cursor->work,
                                  &cursor->block.predictions[r]);
    count_native(cursor, (long long)count);
    cursor->row_number = last + 1; /* the block's first row is the current one */
    cursor->prediction = cursor->block.predictions[0];
    cursor->probabilities_ready = 0;
    return SQLITE_OK;
}

static int next_in_block(Cursor *cursor) {
    if (cursor->block.n && ++cursor->block.at < cursor->block.n) {
        cursor->row_number++;
        cursor->prediction = cursor->block.predictions[cursor->block.at];
        cursor->probabilities_ready = 0;
        return SQLITE_OK;
    }
    if (cursor->block.done) {
        cursor->eof = 1;
        return SQLITE_OK;
    }
    return fill_block(cursor);
}

/* -- moving through rows ------------------------------------------------------------------- */

/* The next row of the current scan (natively or from the Python side). */
static int next_row(Cursor *cursor) {
    if (!cursor->python && cursor->block.on) return next_in_block(cursor);
    if (!cursor->python) return native_step(cursor, cursor->stmt);
    if (++cursor->index >= cursor->chunk.n) {
        SqmlBridge *bridge = sqml_conn_bridge(table_of(cursor)->conn, NULL);
        for (;;) {
            sqml_chunk_clear(&cursor->chunk);
            cursor->index = 0;
            char *error = NULL;
            int got = bridge ? bridge->table_next(bridge->state, cursor->iterator, &cursor->chunk,
                                                  &error)
                             : -1;
            if (got < 0) return fail_owned(cursor, error);
            if (got == 0) {
                cursor->eof = 1;
                return SQLITE_OK;
            }
            if (cursor->chunk.n > 0) break;
        }
    }
    cursor->row_number++;
    if (cursor->query.key_kind == KEY_COLUMN) return check_key(cursor, &cursor->chunk.keys[cursor->index]);
    return SQLITE_OK;
}

/* Start reading every row for the current arguments. */
static int open_rows(Cursor *cursor) {
    SqmlConn *conn = table_of(cursor)->conn;
    sqlite3 *db = sqml_conn_db(conn);
    close_rows(cursor);
    cursor->row_number = 0;
    cursor->eof = 0;
    cursor->mode = ROWS;
    if (!cursor->python) {
        RowReader *reader = &cursor->reader;
        reader->model = cursor->model;
        reader->cells = cursor->cells;
        reader->n = sqml_model_n_features(cursor->model);
        if (cursor->query.read_sql != NULL &&
            sqlite3_prepare_v2(db, cursor->query.read_sql, -1, &cursor->stmt, NULL) == SQLITE_OK) {
            int at = sqlite3_bind_parameter_index(cursor->stmt, "$" ROW_READER_POINTER);
            if (at > 0 &&
                sqlite3_bind_pointer(cursor->stmt, at, reader, ROW_READER_POINTER, NULL) == SQLITE_OK) {
                cursor->reading = 1;
                return SQLITE_OK;
            }
        }
        /* no reader (a source whose text names the same parameter): columns */
        return open_by_columns(cursor, db);
    }
    SqmlBridge *bridge = sqml_conn_bridge(conn, NULL);
    char *error = NULL;
    sqml_count(0, 1);
    cursor->iterator = bridge ? bridge->table_open(bridge->state, cursor->experiment_value,
                                                   cursor->source_value, cursor->key_value,
                                                   (cursor->plan & PLAN_PROBABILITIES) != 0,
                                                   (cursor->plan & PLAN_ROW_ID) != 0, &error)
                              : NULL;
    if (cursor->iterator == NULL) return fail_owned(cursor, error);
    cursor->index = 0;
    cursor->chunk.n = 0;
    return SQLITE_OK;
}

/* Every row of the source into the made table, once per set of arguments. */
static int make_store(Cursor *cursor) {
    Store *store = &cursor->store;
    int with_probabilities = (cursor->plan & PLAN_PROBABILITIES) != 0;
    int rc = open_rows(cursor);
    if (rc == SQLITE_OK) rc = next_row(cursor);
    while (rc == SQLITE_OK && !cursor->eof) {
        if (store->n == store->capacity) {
            size_t capacity = store->capacity ? store->capacity * 2 : 1024;
            SqmlValue *keys = realloc(store->keys, capacity * sizeof(SqmlValue));
            if (keys) store->keys = keys;
            SqmlValue *predictions = realloc(store->predictions, capacity * sizeof(SqmlValue));
            if (predictions) store->predictions = predictions;
            char **probabilities = realloc(store->probabilities, capacity * sizeof(char *));
            if (probabilities) store->probabilities = probabilities;
            if (!keys || !predictions || !probabilities) return SQLITE_NOMEM;
            store->capacity = capacity;
        }
        SqmlValue *key = &store->keys[store->n], *prediction = &store->predictions[store->n];
        memset(key, 0, sizeof *key);
        memset(prediction, 0, sizeof *prediction);
        key->type = prediction->type = SQLITE_NULL;
        store->probabilities[store->n] = NULL;
        store->n++;
        if (!cursor->python) {
            int failed;
            int copied = cursor->block.on
                             ? sqml_value_copy(key, &cursor->block.keys[cursor->block.at])
                             : sqml_value_set(key, sqlite3_column_value(cursor->stmt, 0));
            if (!copied || !native_prediction_value(cursor, prediction)) return SQLITE_NOMEM;
            if (with_probabilities) {
                store->probabilities[store->n - 1] = native_probabilities_json(cursor, &failed);
                if (failed) return SQLITE_NOMEM;
            }
        } else { /* take the chunk's values over */
            SqmlChunk *chunk = &cursor->chunk;
            *key = chunk->keys[cursor->index];
            memset(&chunk->keys[cursor->index], 0, sizeof(SqmlValue));
            *prediction = chunk->predictions[cursor->index];
            memset(&chunk->predictions[cursor->index], 0, sizeof(SqmlValue));
            if (chunk->probabilities) {
                store->probabilities[store->n - 1] = chunk->probabilities[cursor->index];
                chunk->probabilities[cursor->index] = NULL;
            }
        }
        rc = next_row(cursor);
    }
    if (rc != SQLITE_OK) return rc;
    store->ascending = 1;
    for (size_t i = 0; i < store->n && store->ascending; i++) {
        const SqmlValue *v = &store->keys[i];
        store->ascending = v->type == SQLITE_INTEGER && (i == 0 || v->i > store->keys[i - 1].i);
    }
    close_rows(cursor);
    cursor->store_ready = 1;
    cursor->hint = 0;
    return SQLITE_OK;
}

/* The made table's hash index over its keys (and over text keys' numbers). */
static int index_store(Store *store) {
    if (!index_reserve(&store->index, store->n)) return 0;
    for (size_t i = 0; i < store->n; i++) {
        Key k, number;
        const SqmlValue *v = &store->keys[i];
        if (!key_of(v->type, v->i, v->d, v->bytes, (size_t)v->size, &k)) continue;
        if (!index_put(&store->index, &k, (uint32_t)i)) return 0;
        if (v->type == SQLITE_TEXT && numeric_key_of_text(v->bytes, (size_t)v->size, &number))
            if (!index_put(&store->index, &number, (uint32_t)i)) return 0;
    }
    store->indexed = 1;
    return 1;
}

/* A whole-number key in a made table of ascending integer keys: the row after the last
 * one found first (a join in the source's own order asks for them in turn), else by
 * bisection; -1 when none has it. */
static int64_t find_ascending(Cursor *cursor, int64_t wanted) {
    const Store *store = &cursor->store;
    size_t at = cursor->hint;
    if (at < store->n && store->keys[at].i == wanted) return (int64_t)at;
    size_t low = 0, high = store->n;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (store->keys[middle].i < wanted) low = middle + 1;
        else high = middle;
    }
    return low < store->n && store->keys[low].i == wanted ? (int64_t)low : -1;
}

/* The next row of the made table with the wanted key. */
static int next_stored(Cursor *cursor) {
    for (;;) {
        Key *key = cursor->second_try ? &cursor->number_key : &cursor->wanted_key;
        int64_t row = index_next(&cursor->store.index, key, &cursor->slot);
        if (row >= 0) {
            cursor->current = row;
            cursor->eof = 0;
            return SQLITE_OK;
        }
        if (!cursor->second_try && cursor->number_key.kind) {
            cursor->second_try = 1;
            cursor->slot = (size_t)-1;
            continue;
        }
        cursor->eof = 1;
        return SQLITE_OK;
    }
}

/* -- filtering ------------------------------------------------------------------------------ */

static int same_arguments(Cursor *cursor, sqlite3_value *experiment, sqlite3_value *source,
                          sqlite3_value *key_column, int plan) {
    if (!cursor->prepared) return 0;
    if ((cursor->plan & (PLAN_PROBABILITIES | PLAN_ROW_ID)) != (plan & (PLAN_PROBABILITIES | PLAN_ROW_ID)))
        return 0;
    /* (no copies: a join filters once per outer row) */
    return value_is(&cursor->experiment, experiment) && value_is(&cursor->source, source) &&
           (key_column ? value_is(&cursor->key_column, key_column)
                       : cursor->key_column.type == SQLITE_NULL);
}

/* Decide how rows are made for these arguments: natively, else by the Python side. */
static int prepare(Cursor *cursor, sqlite3_value *experiment, sqlite3_value *source,
                   sqlite3_value *key_column, int plan) {
    SqmlConn *conn = table_of(cursor)->conn;
    char message[SQML_ERROR_SIZE];
    forget_arguments(cursor);
    cursor->plan = plan;
    if (!sqml_value_set(&cursor->experiment, experiment) || !sqml_value_set(&cursor->source, source) ||
        (key_column && !sqml_value_set(&cursor->key_column, key_column)))
        return SQLITE_NOMEM;
    cursor->experiment_value = sqlite3_value_dup(experiment);
    cursor->source_value = sqlite3_value_dup(source);
    cursor->key_value = key_column ? sqlite3_value_dup(key_column) : NULL;
    SqmlDeployment deployment;
    int status = sqml_resolve(conn, experiment, &deployment, message);
    if (status == SQML_RESOLVE_ERROR) return fail(cursor, message);
    int python = status == SQML_RESOLVE_DEFER;
    if (!python && deployment.served == NULL) {
        const char *why = NULL;
        if (sqml_conn_bridge(conn, &why) == NULL) {
            char shown[128];
            sqml_shorten((const char *)sqlite3_value_text(experiment),
                         (size_t)sqlite3_value_bytes(experiment), shown, sizeof shown);
            snprintf(message, sizeof message,
                     "experiment '%s' (model %lld) is served by sqlite-ml's Python side (%s), "
                     "which is not available here: %s",
                     shown, (long long)deployment.model_id, deployment.python,
                     why ? why : "unknown reason");
        }
        python = 1;
    }
    if (!python) {
        cursor->served = deployment.served;
        cursor->model = sqml_served_model(deployment.served);
        status = resolve_source(sqml_conn_db(conn), cursor->model, source, key_column,
                                &cursor->query, message);
        if (status == SQML_ENCODE_ERROR) return fail(cursor, message);
        if (status == SQML_ENCODE_DEFER) {
            sqml_served_release(cursor->served);
            cursor->served = NULL;
            cursor->model = NULL;
            source_free(&cursor->query);
            python = 1;
        }
    }
    if (python) {
        /* The Python side reads the source (and refuses a row_id without a key itself). */
        if (sqml_conn_bridge(conn, NULL) == NULL) return fail(cursor, message);
        cursor->python = 1;
        int keyed = key_column && sqlite3_value_type(key_column) != SQLITE_NULL;
        cursor->query.key_kind = keyed ? KEY_COLUMN : KEY_ROWID;
        cursor->query.key_name = sqlite3_mprintf("%s", keyed ? (const char *)sqlite3_value_text(key_column) : "rowid");
        cursor->query.what = sqlite3_mprintf("the source");
        cursor->prepared = 1;
        return SQLITE_OK;
    }
    cursor->python = 0;
    if ((plan & PLAN_ROW_ID) && cursor->query.key_kind == KEY_NONE) {
        snprintf(message, sizeof message,
                 "sqml_predict_table: %s has no rowid, so row_id cannot be joined or filtered "
                 "on (a row number would pair predictions with the wrong rows); name a key "
                 "column: sqml_predict_table(experiment, source, 'key column'), and join on it",
                 cursor->query.what);
        return fail(cursor, message);
    }
    const SqmlModel *model = cursor->model;
    size_t width = sqml_model_width(model), work = sqml_model_work_size(model);
    size_t classes = sqml_model_n_classes(model) + 1, features = sqml_model_n_features(model);
    cursor->x = malloc(sizeof(double) * (2 * width + work + classes) + sizeof(SqmlCell) * features);
    if (cursor->x == NULL) return SQLITE_NOMEM;
    cursor->raw = cursor->x + width;
    cursor->work = cursor->raw + width;
    cursor->probabilities = cursor->work + work;
    cursor->cells = (SqmlCell *)(cursor->probabilities + classes);
    uint32_t trees = sqml_model_n_trees(model);
    if (trees) {
        cursor->block.x = malloc(sizeof(double) * width * SQML_BLOCK_ROWS);
        cursor->block.rounded = malloc(sizeof(float) * width * SQML_BLOCK_ROWS);
        cursor->block.leaves = malloc(sizeof(uint32_t) * trees * SQML_BLOCK_ROWS);
        cursor->block.keys = calloc(SQML_BLOCK_ROWS, sizeof(SqmlValue));
        cursor->block.predictions = calloc(SQML_BLOCK_ROWS, sizeof(SqmlPrediction));
        if (!cursor->block.x || !cursor->block.rounded || !cursor->block.leaves ||
            !cursor->block.keys || !cursor->block.predictions)
            return SQLITE_NOMEM;
        cursor->block.on = 1;
    }
    cursor->prepared = 1;
    return SQLITE_OK;
}

static int table_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                        sqlite3_value **argv) {
    (void)plan_text;
    Cursor *cursor = (Cursor *)base;
    int expected = 2 + ((plan & PLAN_KEY) ? 1 : 0) + ((plan & PLAN_LOOKUP) ? 1 : 0);
    if (!(plan & PLAN_ARGS) || argc != expected) {
        return fail(cursor, "sqml_predict_table needs an experiment and a source: "
                            "SELECT * FROM sqml_predict_table('experiment', 'table, view or "
                            "SELECT'[, 'key column'])");
    }
    sqlite3_value *key_column = (plan & PLAN_KEY) ? argv[2] : NULL;
    sqlite3_value *wanted = (plan & PLAN_LOOKUP) ? argv[argc - 1] : NULL;
    int rc;
    if (!same_arguments(cursor, argv[0], argv[1], key_column, plan)) {
        rc = prepare(cursor, argv[0], argv[1], key_column, plan);
        if (rc != SQLITE_OK) return rc;
    }
    cursor->plan = plan;
    if (wanted == NULL) { /* a scan of every row */
        rc = open_rows(cursor);
        if (rc == SQLITE_OK) {
            if (cursor->python) cursor->index = (size_t)-1; /* before the first chunk's first row */
            rc = next_row(cursor);
        }
        return rc;
    }
    /* a lookup of row_id = wanted */
    if (sqlite3_value_type(wanted) == SQLITE_NULL) {
        return fail(cursor, "sqml_predict_table: a row_id looked up is NULL (joining on a "
                            "view's rowid? a view has none); name a key column: "
                            "sqml_predict_table(experiment, source, 'key column'), and join on it");
    }
    if (!cursor->python && cursor->query.key_kind == KEY_ROWID) {
        sqlite3 *db = sqml_conn_db(table_of(cursor)->conn);
        close_rows(cursor);
        if (cursor->lookup == NULL &&
            sqlite3_prepare_v2(db, cursor->query.lookup_sql, -1, &cursor->lookup, NULL) != SQLITE_OK) {
            char message[SQML_ERROR_SIZE];
            snprintf(message, sizeof message, "sqml_predict_table: cannot read %s: %s",
                     cursor->query.what, sqlite3_errmsg(db));
            return fail(cursor, message);
        }
        sqlite3_reset(cursor->lookup);
        sqlite3_bind_value(cursor->lookup, 1, wanted);
        cursor->mode = LOOKUP_ROW;
        cursor->eof = 0;
        cursor->row_number = 0;
        return native_step(cursor, cursor->lookup);
    }
    if (!cursor->store_ready) {
        if (cursor->python) cursor->index = (size_t)-1;
        rc = make_store(cursor);
        if (rc != SQLITE_OK) return rc;
    }
    cursor->mode = STORE;
    sqml_value_clear(&cursor->wanted);
    if (!sqml_value_set(&cursor->wanted, wanted)) return SQLITE_NOMEM;
    SqmlValue *w = &cursor->wanted;
    key_of(w->type, w->i, w->d, w->bytes, (size_t)w->size, &cursor->wanted_key);
    memset(&cursor->number_key, 0, sizeof cursor->number_key);
    if (w->type == SQLITE_TEXT) numeric_key_of_text(w->bytes, (size_t)w->size, &cursor->number_key);
    cursor->second_try = 0;
    cursor->slot = (size_t)-1;
    cursor->found_one = 0;
    if (cursor->store.ascending && cursor->wanted_key.kind == 1 && !cursor->number_key.kind) {
        /* keys are unique here, so one row at most */
        int64_t row = find_ascending(cursor, cursor->wanted_key.i);
        cursor->found_one = 1;
        cursor->eof = row < 0;
        if (row >= 0) cursor->current = row, cursor->hint = (size_t)row + 1;
        return SQLITE_OK;
    }
    if (!cursor->store.indexed && !index_store(&cursor->store)) return SQLITE_NOMEM;
    return next_stored(cursor);
}

static int table_next(sqlite3_vtab_cursor *base) {
    Cursor *cursor = (Cursor *)base;
    if (cursor->mode == STORE && cursor->found_one) {
        cursor->eof = 1;
        return SQLITE_OK;
    }
    if (cursor->mode == STORE) return next_stored(cursor);
    if (cursor->mode == LOOKUP_ROW) { /* a rowid names one row */
        cursor->eof = 1;
        return SQLITE_OK;
    }
    return next_row(cursor);
}

static int table_eof(sqlite3_vtab_cursor *base) { return ((Cursor *)base)->eof; }

static int table_column(sqlite3_vtab_cursor *base, sqlite3_context *context, int column) {
    Cursor *cursor = (Cursor *)base;
    if (column >= COL_EXPERIMENT) {
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
    if (cursor->mode == STORE) {
        Store *store = &cursor->store;
        size_t row = (size_t)cursor->current;
        if (column == COL_ROW_ID) sqml_value_result(context, &store->keys[row]);
        else if (column == COL_PREDICTION) sqml_value_result(context, &store->predictions[row]);
        else if (store->probabilities[row])
            sqlite3_result_text(context, store->probabilities[row], -1, SQLITE_TRANSIENT);
        else sqlite3_result_null(context);
        return SQLITE_OK;
    }
    if (cursor->python) {
        SqmlChunk *chunk = &cursor->chunk;
        size_t i = cursor->index;
        if (column == COL_ROW_ID) sqml_value_result(context, &chunk->keys[i]);
        else if (column == COL_PREDICTION) sqml_value_result(context, &chunk->predictions[i]);
        else if (chunk->probabilities && chunk->probabilities[i])
            sqlite3_result_text(context, chunk->probabilities[i], -1, SQLITE_TRANSIENT);
        else sqlite3_result_null(context);
        return SQLITE_OK;
    }
    sqlite3_stmt *stmt = cursor->mode == LOOKUP_ROW ? cursor->lookup : cursor->stmt;
    if (column == COL_ROW_ID) {
        if (cursor->query.key_kind == KEY_NONE) sqlite3_result_null(context);
        else if (cursor->block.on && cursor->mode == ROWS)
            sqml_value_result(context, &cursor->block.keys[cursor->block.at]);
        else sqlite3_result_value(context, sqlite3_column_value(stmt, 0));
    } else if (column == COL_PREDICTION) {
        if (cursor->has_exact) sqml_value_result(context, &cursor->exact);
        else sqml_result_prediction(context, cursor->model, &cursor->prediction);
    } else {
        int failed;
        char *json = native_probabilities_json(cursor, &failed);
        if (failed) sqlite3_result_error_nomem(context);
        else if (json == NULL) sqlite3_result_null(context);
        else sqlite3_result_text(context, json, -1, free);
    }
    return SQLITE_OK;
}

static int table_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
    *rowid = ((Cursor *)base)->row_number;
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

int sqml_attach_table(sqlite3 *db, SqmlConn *conn) {
    int rc = sqlite3_create_function_v2(db, ROW_READER_FUNCTION, -1,
                                        SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, read_row_function,
                                        NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
    sqml_conn_retain(conn); /* SQLite releases it with the module (also on failure) */
    return sqlite3_create_module_v2(db, "sqml_predict_table", &predict_table_module, conn,
                                    sqml_conn_release);
}
