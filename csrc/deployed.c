/* Which model an experiment has deployed, read with SQL, and the native models loaded
 * from the database: shared by every connection of the process, keyed by the SHA-256 the
 * native form was stored with (checked against its bytes before it is parsed), so an
 * entry can never be stale. Each connection remembers what every experiment resolved to
 * while a cheap reading of the database (its data version, its own changes) stays the
 * same, as the Python side's model cache does (ops/prediction.py). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "bridge.h"

#define MAX_CACHED_MODELS 64

struct SqmlServed {
    int refs; /* the cache's own reference plus one per user (atomic) */
    char digest[65];
    SqmlModel *model;
    unsigned long long used;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static SqmlServed *cache[MAX_CACHED_MODELS];
static unsigned long long cache_clock;
static long long counted_native, counted_python;

void sqml_count(int native_rows, int python_calls) {
    if (native_rows) __atomic_add_fetch(&counted_native, native_rows, __ATOMIC_RELAXED);
    if (python_calls) __atomic_add_fetch(&counted_python, python_calls, __ATOMIC_RELAXED);
}

void sqml_counts(long long *native_rows, long long *python_calls) {
    *native_rows = __atomic_load_n(&counted_native, __ATOMIC_RELAXED);
    *python_calls = __atomic_load_n(&counted_python, __ATOMIC_RELAXED);
}

const SqmlModel *sqml_served_model(const SqmlServed *served) { return served->model; }

void sqml_served_retain(SqmlServed *served) {
    __atomic_add_fetch(&served->refs, 1, __ATOMIC_RELAXED);
}

void sqml_served_release(SqmlServed *served) {
    if (served == NULL) return;
    if (__atomic_sub_fetch(&served->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        sqml_model_free(served->model);
        free(served);
    }
}

/* The cached model with this digest, retained; NULL when none. */
static SqmlServed *cache_find(const char *digest) {
    SqmlServed *found = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < MAX_CACHED_MODELS; i++) {
        if (cache[i] && strcmp(cache[i]->digest, digest) == 0) {
            found = cache[i];
            __atomic_add_fetch(&found->refs, 1, __ATOMIC_RELAXED);
            found->used = ++cache_clock;
            break;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

/* Keep a freshly loaded model (or the one another thread loaded meanwhile), retained. */
static SqmlServed *cache_add(const char *digest, SqmlModel *model) {
    SqmlServed *fresh = calloc(1, sizeof(SqmlServed));
    if (fresh == NULL) {
        sqml_model_free(model);
        return NULL;
    }
    memcpy(fresh->digest, digest, 65);
    fresh->model = model;
    SqmlServed *evicted = NULL, *result = fresh;
    pthread_mutex_lock(&cache_lock);
    int slot = -1;
    for (int i = 0; i < MAX_CACHED_MODELS; i++) {
        if (cache[i] && strcmp(cache[i]->digest, digest) == 0) {
            result = cache[i]; /* loaded by another connection meanwhile */
            break;
        }
        if (cache[i] == NULL && slot < 0) slot = i;
    }
    if (result == fresh) {
        if (slot < 0) { /* the least recently used goes (its users keep their reference) */
            slot = 0;
            for (int i = 1; i < MAX_CACHED_MODELS; i++)
                if (cache[i]->used < cache[slot]->used) slot = i;
            evicted = cache[slot];
            if (__atomic_sub_fetch(&evicted->refs, 1, __ATOMIC_ACQ_REL) != 0) evicted = NULL;
        }
        fresh->refs = 1; /* the cache's */
        cache[slot] = fresh;
    }
    __atomic_add_fetch(&result->refs, 1, __ATOMIC_RELAXED);
    result->used = ++cache_clock;
    pthread_mutex_unlock(&cache_lock);
    if (result != fresh) {
        sqml_model_free(model);
        free(fresh);
    }
    if (evicted) {
        sqml_model_free(evicted->model);
        free(evicted);
    }
    return result;
}

/* -- the connection --------------------------------------------------------------------- */

typedef struct {
    char *name;
    size_t size;
    long long reading;
    sqlite3_int64 model_id;
    SqmlServed *served;
    char *python;  /* why Python serves it */
    char *refused; /* why nothing serves it */
} Entry;

/* A model compiled on demand whose form could not be stored (a read-only database). */
typedef struct {
    sqlite3_int64 model_id;
    char digest[65];
    SqmlServed *served;
    char *python;
} Compiled;

struct SqmlConn {
    sqlite3 *db;
    int refs;
    SqmlBridge bridge;
    int bridge_state; /* 0 not started, 1 ready, -1 cannot start */
    char *bridge_error;
    SqmlBridgeStarter starter;
    Entry *entries;
    size_t n_entries;
    Compiled *compiled;
    size_t n_compiled;
    pthread_mutex_t lock; /* one connection may be used from several threads */
    SqmlJsonScratch *scratch; /* a JSON row's scratch, kept between calls (sqml_conn_scratch) */
};

SqmlConn *sqml_conn_new(sqlite3 *db, const SqmlBridge *bridge, SqmlBridgeStarter starter) {
    SqmlConn *conn = calloc(1, sizeof(SqmlConn));
    if (conn == NULL) return NULL;
    conn->db = db;
    conn->refs = 1;
    pthread_mutexattr_t recursive;
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&conn->lock, &recursive);
    pthread_mutexattr_destroy(&recursive);
    if (bridge) {
        conn->bridge = *bridge;
        conn->bridge_state = 1;
    }
    conn->starter = starter;
    return conn;
}

void sqml_conn_retain(SqmlConn *conn) {
    pthread_mutex_lock(&conn->lock);
    conn->refs++;
    pthread_mutex_unlock(&conn->lock);
}

static void forget_entries(SqmlConn *conn) {
    for (size_t i = 0; i < conn->n_entries; i++) {
        free(conn->entries[i].name);
        free(conn->entries[i].python);
        free(conn->entries[i].refused);
        sqml_served_release(conn->entries[i].served);
    }
    conn->n_entries = 0;
}

void sqml_conn_release(void *data) {
    SqmlConn *conn = (SqmlConn *)data;
    pthread_mutex_lock(&conn->lock);
    int last = --conn->refs == 0;
    pthread_mutex_unlock(&conn->lock);
    if (!last) return;
    forget_entries(conn);
    free(conn->entries);
    for (size_t i = 0; i < conn->n_compiled; i++) {
        sqml_served_release(conn->compiled[i].served);
        free(conn->compiled[i].python);
    }
    free(conn->compiled);
    sqml_json_scratch_free(conn->scratch);
    if (conn->bridge_state == 1 && conn->bridge.release) conn->bridge.release(conn->bridge.state);
    sqlite3_free(conn->bridge_error);
    pthread_mutex_destroy(&conn->lock);
    free(conn);
}

sqlite3 *sqml_conn_db(SqmlConn *conn) { return conn->db; }

/* The scratch a call reads its JSON row with: the one the connection keeps (taken, so a
 * call nested in another's arguments gets its own), else a new one; NULL when out of
 * memory. */
SqmlJsonScratch *sqml_conn_scratch(SqmlConn *conn) {
    SqmlJsonScratch *kept = __atomic_exchange_n(&conn->scratch, NULL, __ATOMIC_ACQ_REL);
    return kept ? kept : sqml_json_scratch_new();
}

/* Give a call's scratch back: kept for the next call when it is small (emptied), else
 * freed. NULL is allowed. */
void sqml_conn_scratch_done(SqmlConn *conn, SqmlJsonScratch *scratch) {
    if (scratch == NULL) return;
    SqmlJsonScratch *empty = NULL;
    if (!sqml_json_scratch_recycle(scratch) ||
        !__atomic_compare_exchange_n(&conn->scratch, &empty, scratch, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        sqml_json_scratch_free(scratch);
}

SqmlBridge *sqml_conn_bridge(SqmlConn *conn, const char **why) {
    if (conn->bridge_state == 0) {
        char *error = NULL;
        if (conn->starter && conn->starter(conn->db, &conn->bridge, &error) == 0) {
            conn->bridge_state = 1;
        } else {
            conn->bridge_state = -1;
            conn->bridge_error =
                error ? error : sqlite3_mprintf("sqlite-ml's Python side is not available here");
        }
    }
    if (conn->bridge_state == 1) return &conn->bridge;
    if (why) *why = conn->bridge_error;
    return NULL;
}

/* -- reading the database --------------------------------------------------------------- */

/* A reading that moves whenever the main database may have changed; 0 (no reading) where
 * it cannot vouch: no transaction open yet, or an explicit transaction that writes (a
 * ROLLBACK TO moves no counter). The same rule as sqlite/probe.py. */
static int change_reading(sqlite3 *db, long long *reading) {
#if SQLITE_VERSION_NUMBER >= 3034000
    if (sqlite3_libversion_number() < 3034000) return 0;
    int state = sqlite3_txn_state(db, "main");
    unsigned int version = 0;
    if (state <= 0 || sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &version))
        return 0;
    if (state == SQLITE_TXN_WRITE) {
        if (!sqlite3_get_autocommit(db)) return 0;
        *reading = -((long long)version << 32) - (long long)sqlite3_total_changes(db) - 1;
        return 1;
    }
    *reading = (long long)version;
    return 1;
#else
    (void)db;
    (void)reading;
    return 0;
#endif
}

/* The deployment, with what says whose model it is (columns 7-9: the model exists, its
 * run is the experiment's, that run's status): a model of another experiment, of a run
 * that did not succeed, or a missing one is never served (the store's triggers prevent
 * it; an edited database may not have them). */
#define DEPLOYED_OWNER                                                                      \
    " m.id IS NOT NULL, r.experiment_id IS e.id, r.status, d.id"                            \
    " FROM sqml_experiments AS e JOIN sqml_deployments AS d ON d.experiment_id = e.id"      \
    " LEFT JOIN sqml_models AS m ON m.id = d.model_id LEFT JOIN sqml_runs AS r ON r.id = "  \
    "m.run_id WHERE e.name = ?1 AND d.active ORDER BY d.id DESC LIMIT 1"
static const char DEPLOYED_SQL[] =
    "SELECT d.model_id, m.native_digest, m.serving, m.serving_reason, m.digest,"
    " m.feature_schema, length(m.data)," DEPLOYED_OWNER;
/* A database of schema version 2 (sqlite-ml 0.3.0) has no native columns yet. */
static const char DEPLOYED_SQL_V2[] = "SELECT d.model_id, NULL, NULL, NULL, NULL, NULL, NULL,"
    DEPLOYED_OWNER;

/* What the Python side says of a deployment whose model is not the experiment's own
 * (ops/experiments.py), for when it is not there to say it; 0 when the model is its own. */
static int not_own_model(sqlite3_stmt *stmt, const char *name, size_t size, char *message) {
    int found = sqlite3_column_int(stmt, 7), own = sqlite3_column_int(stmt, 8);
    const char *status = (const char *)sqlite3_column_text(stmt, 9);
    if (found && own && status != NULL && strcmp(status, "success") == 0) return 0;
    char problem[160], shown[128];
    if (!found)
        snprintf(problem, sizeof problem, "which is missing from sqml_models");
    else if (!own)
        snprintf(problem, sizeof problem, "which belongs to another experiment (or to no run)");
    else if (status == NULL)
        snprintf(problem, sizeof problem, "whose run has status NULL, not 'success'");
    else
        snprintf(problem, sizeof problem, "whose run has status '%.64s', not 'success'", status);
    sqml_shorten(name, size, shown, sizeof shown);
    snprintf(message, SQML_ERROR_SIZE,
             "experiment '%s''s active deployment %lld points at model %lld, %s; the sqml_* "
             "tables were edited: deploy one of the experiment's own models (sqml_deploy) or "
             "retrain",
             shown, (long long)sqlite3_column_int64(stmt, 10),
             (long long)sqlite3_column_int64(stmt, 0), problem);
    return 1;
}

/* The message the Python side gives for an experiment without a deployed model, for
 * when it is not there to give it. */
static void no_deployment_message(sqlite3 *db, const char *name, char *message) {
    sqlite3_stmt *stmt = NULL;
    char shown[128];
    sqml_shorten(name, strlen(name), shown, sizeof shown);
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqml_experiments WHERE name = ?1", -1, &stmt,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        int exists = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
        if (exists) {
            snprintf(message, SQML_ERROR_SIZE,
                     "experiment '%s' has no deployed model yet; train one successfully with "
                     "sqml_train first",
                     shown);
            return;
        }
    }
    SqmlBuffer names = {0};
    stmt = NULL;
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqml_experiments ORDER BY name LIMIT 21", -1,
                           &stmt, NULL) == SQLITE_OK) {
        int count = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            if (count == 20) {
                sqml_buffer_text(&names, ", ...");
                break;
            }
            if (count++) sqml_buffer_text(&names, ", ");
            sqml_buffer_text(&names, "'");
            sqml_buffer_text(&names, (const char *)sqlite3_column_text(stmt, 0));
            sqml_buffer_text(&names, "'");
        }
        sqlite3_finalize(stmt);
    }
    snprintf(message, SQML_ERROR_SIZE,
             "unknown experiment '%s'; experiments in this database: %s", shown,
             names.data && names.size ? names.data : "none yet");
    sqml_buffer_free(&names);
}

/* Load, check and cache a stored native form; NULL with the reason it is refused. */
static SqmlServed *load_stored(sqlite3 *db, sqlite3_int64 model_id, const char *digest,
                               char *message) {
    SqmlServed *served = cache_find(digest);
    if (served) return served;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT native_model FROM sqml_models WHERE id = ?1", -1,
                                &stmt, NULL);
    if (rc != SQLITE_OK) {
        snprintf(message, SQML_ERROR_SIZE, "cannot read model %lld's native form: %s",
                 (long long)model_id, sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    sqlite3_bind_int64(stmt, 1, model_id);
    if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_type(stmt, 0) != SQLITE_BLOB) {
        snprintf(message, SQML_ERROR_SIZE,
                 "model %lld records a native form digest but holds no native form (damaged "
                 "or tampered with); it is not served: retrain the experiment",
                 (long long)model_id);
        sqlite3_finalize(stmt);
        return NULL;
    }
    const unsigned char *blob = sqlite3_column_blob(stmt, 0);
    int size = sqlite3_column_bytes(stmt, 0);
    char actual[65], error[SQML_ERROR_SIZE];
    sqml_sha256_hex(blob, (size_t)size, actual);
    if (strcmp(actual, digest) != 0) {
        snprintf(message, SQML_ERROR_SIZE,
                 "model %lld's native form does not match the SHA-256 recorded with it "
                 "(corrupted or tampered with); it is not served: retrain the experiment",
                 (long long)model_id);
        sqlite3_finalize(stmt);
        return NULL;
    }
    SqmlModel *model = sqml_model_load(blob, (size_t)size, error);
    sqlite3_finalize(stmt);
    if (model == NULL) {
        snprintf(message, SQML_ERROR_SIZE,
                 "model %lld's native form is refused (%s); it is not served: retrain the "
                 "experiment",
                 (long long)model_id, error);
        return NULL;
    }
    served = cache_add(digest, model);
    if (served == NULL) snprintf(message, SQML_ERROR_SIZE, "out of memory");
    return served;
}

/* A model stored without a native form (written by an older version): the Python side
 * compiles it once per connection (and stores it when the database can be written). */
static int compile_on_demand(SqmlConn *conn, sqlite3_int64 model_id, Entry *entry,
                             char *message) {
    for (size_t i = 0; i < conn->n_compiled; i++) {
        Compiled *known = &conn->compiled[i];
        if (known->model_id != model_id) continue;
        if (known->served) {
            sqml_served_retain(known->served);
            entry->served = known->served;
        } else {
            entry->python = strdup(known->python);
        }
        return SQML_RESOLVED;
    }
    const char *why = NULL;
    SqmlBridge *bridge = sqml_conn_bridge(conn, &why);
    if (bridge == NULL) {
        snprintf(message, SQML_ERROR_SIZE,
                 "model %lld was stored without a native form (by an older sqlite-ml), and "
                 "compiling one needs sqlite-ml's Python side, which is not available here: %s",
                 (long long)model_id, why ? why : "unknown reason");
        return SQML_RESOLVE_ERROR;
    }
    unsigned char *blob = NULL;
    int size = 0;
    char *reason = NULL;
    sqml_count(0, 1);
    int got = bridge->native_form(bridge->state, model_id, &blob, &size, &reason);
    if (got < 0) {
        snprintf(message, SQML_ERROR_SIZE, "%s", reason ? reason : "cannot compile the model");
        sqlite3_free(reason);
        return SQML_RESOLVE_DEFER;
    }
    Compiled *grown = realloc(conn->compiled, (conn->n_compiled + 1) * sizeof(Compiled));
    if (grown == NULL) {
        sqlite3_free(blob);
        sqlite3_free(reason);
        snprintf(message, SQML_ERROR_SIZE, "out of memory");
        return SQML_RESOLVE_ERROR;
    }
    conn->compiled = grown;
    Compiled *known = &conn->compiled[conn->n_compiled];
    memset(known, 0, sizeof *known);
    known->model_id = model_id;
    if (got == 0) {
        known->python = strdup(reason ? reason : "not in the native format");
        sqlite3_free(reason);
        conn->n_compiled++;
        entry->python = strdup(known->python);
        return SQML_RESOLVED;
    }
    char error[SQML_ERROR_SIZE];
    sqml_sha256_hex(blob, (size_t)size, known->digest);
    SqmlServed *served = cache_find(known->digest);
    if (served == NULL) {
        SqmlModel *model = sqml_model_load(blob, (size_t)size, error);
        if (model == NULL) {
            sqlite3_free(blob);
            snprintf(message, SQML_ERROR_SIZE,
                     "model %lld's freshly compiled native form is refused (%s)",
                     (long long)model_id, error);
            return SQML_RESOLVE_ERROR;
        }
        served = cache_add(known->digest, model);
    }
    sqlite3_free(blob);
    if (served == NULL) {
        snprintf(message, SQML_ERROR_SIZE, "out of memory");
        return SQML_RESOLVE_ERROR;
    }
    known->served = served;
    conn->n_compiled++;
    sqml_served_retain(served);
    entry->served = served;
    return SQML_RESOLVED;
}

static int lookup(SqmlConn *conn, const char *name, size_t size, Entry *entry, char *message) {
    sqlite3 *db = conn->db;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, DEPLOYED_SQL, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        stmt = NULL;
        rc = sqlite3_prepare_v2(db, DEPLOYED_SQL_V2, -1, &stmt, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(message, SQML_ERROR_SIZE,
                 "this database has no sqlite-ml tables yet (%s); train a model first with "
                 "sqml_train",
                 sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return SQML_RESOLVE_DEFER;
    }
    sqlite3_bind_text(stmt, 1, name, (int)size, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE) no_deployment_message(db, name, message);
        else snprintf(message, SQML_ERROR_SIZE, "sqml_predict: %s", sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return SQML_RESOLVE_DEFER;
    }
    if (not_own_model(stmt, name, size, message)) {
        sqlite3_finalize(stmt);
        return SQML_RESOLVE_DEFER;
    }
    entry->model_id = sqlite3_column_int64(stmt, 0);
    const char *digest = (const char *)sqlite3_column_text(stmt, 1);
    const char *serving = (const char *)sqlite3_column_text(stmt, 2);
    const char *reason = (const char *)sqlite3_column_text(stmt, 3);
    int status = SQML_RESOLVED;
    const char *model_digest = (const char *)sqlite3_column_text(stmt, 4);
    if (digest != NULL) {
        char copy[65], model_copy[65], schema_digest[65];
        snprintf(copy, sizeof copy, "%s", digest);
        snprintf(model_copy, sizeof model_copy, "%s", model_digest ? model_digest : "");
        const char *schema = (const char *)sqlite3_column_text(stmt, 5);
        sqml_sha256_hex(schema ? schema : "", schema ? (size_t)sqlite3_column_bytes(stmt, 5) : 0,
                        schema_digest);
        double data_size = (double)sqlite3_column_int64(stmt, 6);
        sqlite3_finalize(stmt);
        entry->served = load_stored(db, entry->model_id, copy, message);
        if (entry->served == NULL) { /* the form fails its checks: served by nothing */
            entry->refused = strdup(message);
            return SQML_RESOLVE_ERROR;
        }
        /* The form beside another model than the one it was compiled from (the skops blob
         * and its digest replaced, or the form moved from another row), or the feature
         * schema edited since: the Python side reads and checks what is stored (and serves
         * it, or says what is wrong with it). */
        const SqmlModel *model = sqml_served_model(entry->served);
        const char *compiled_from = sqml_model_digest(model);
        const char *compiled_with = sqml_model_schema_digest(model);
        const char *changed = NULL;
        if ((*compiled_from && strcmp(compiled_from, model_copy) != 0) ||
            (sqml_model_size(model) != 0 && sqml_model_size(model) != data_size))
            changed = "its stored model is not the one its native form was compiled from";
        else if (*compiled_with && strcmp(compiled_with, schema_digest) != 0)
            changed = "its feature schema was edited after its native form was compiled";
        if (changed) {
            sqml_served_release(entry->served);
            entry->served = NULL;
            entry->python = strdup(changed);
        }
        return status;
    }
    if (serving != NULL && strcmp(serving, "python") == 0) {
        entry->python = strdup(reason ? reason : "not in the native format");
        sqlite3_finalize(stmt);
        return SQML_RESOLVED;
    }
    sqlite3_finalize(stmt);
    return compile_on_demand(conn, entry->model_id, entry, message);
}

static void describe_value(sqlite3_value *value, char *out, size_t size) {
    switch (sqlite3_value_type(value)) {
    case SQLITE_NULL:
        snprintf(out, size, "NULL");
        break;
    case SQLITE_INTEGER:
        snprintf(out, size, "%lld", (long long)sqlite3_value_int64(value));
        break;
    case SQLITE_FLOAT: {
        SqmlBuffer b = {0};
        sqml_buffer_double(&b, sqlite3_value_double(value));
        snprintf(out, size, "%s", b.data ? b.data : "?");
        sqml_buffer_free(&b);
        break;
    }
    case SQLITE_BLOB:
        snprintf(out, size, "a BLOB of %d bytes", sqlite3_value_bytes(value));
        break;
    default: {
        char shown[128];
        sqml_shorten((const char *)sqlite3_value_text(value), (size_t)sqlite3_value_bytes(value),
                     shown, sizeof shown);
        snprintf(out, size, "'%s'", shown);
    }
    }
}

int sqml_resolve(SqmlConn *conn, sqlite3_value *experiment, SqmlDeployment *out,
                 char message[SQML_ERROR_SIZE]) {
    /* the type first: reading a BLOB or a number as text would change its type */
    int text = sqlite3_value_type(experiment) == SQLITE_TEXT;
    const char *name = text ? (const char *)sqlite3_value_text(experiment) : NULL;
    size_t size = text ? (size_t)sqlite3_value_bytes(experiment) : 0;
    int blank = 1;
    for (size_t i = 0; name && i < size; i++) {
        char c = name[i];
        if (!(c == ' ' || (c >= '\t' && c <= '\r'))) {
            blank = 0;
            break;
        }
    }
    if (!text || blank || name == NULL) {
        char shown[160];
        describe_value(experiment, shown, sizeof shown);
        snprintf(message, SQML_ERROR_SIZE, "experiment name must be non-empty text, got %s",
                 shown);
        return SQML_RESOLVE_DEFER;
    }
    pthread_mutex_lock(&conn->lock);
    long long reading = 0;
    int vouched = change_reading(conn->db, &reading);
    Entry *entry = NULL;
    for (size_t i = 0; i < conn->n_entries; i++) {
        Entry *e = &conn->entries[i];
        if (e->size == size && memcmp(e->name, name, size) == 0) {
            entry = e;
            break;
        }
    }
    if (entry && !(vouched && entry->reading == reading)) {
        forget_entries(conn); /* something changed: ask again for every experiment */
        entry = NULL;
    }
    int status = SQML_RESOLVED;
    if (entry == NULL) {
        Entry fresh = {0};
        status = lookup(conn, name, size, &fresh, message);
        if (status == SQML_RESOLVE_DEFER) {
            free(fresh.python);
            sqml_served_release(fresh.served);
            pthread_mutex_unlock(&conn->lock);
            return status;
        }
        /* read again: looking up may have started a transaction or written a form */
        if (!change_reading(conn->db, &fresh.reading)) fresh.reading = 0;
        fresh.name = malloc(size + 1);
        Entry *grown = realloc(conn->entries, (conn->n_entries + 1) * sizeof(Entry));
        if (fresh.name == NULL || grown == NULL) {
            free(fresh.name);
            free(fresh.python);
            free(fresh.refused);
            sqml_served_release(fresh.served);
            if (grown) conn->entries = grown;
            pthread_mutex_unlock(&conn->lock);
            snprintf(message, SQML_ERROR_SIZE, "out of memory");
            return SQML_RESOLVE_ERROR;
        }
        memcpy(fresh.name, name, size);
        fresh.name[size] = '\0';
        fresh.size = size;
        conn->entries = grown;
        /* an entry valid only for this call when the reading could not vouch */
        if (!vouched) fresh.reading = 0x7fffffffffffffffLL;
        conn->entries[conn->n_entries++] = fresh;
        entry = &conn->entries[conn->n_entries - 1];
    }
    if (entry->refused) {
        snprintf(message, SQML_ERROR_SIZE, "%s", entry->refused);
        status = SQML_RESOLVE_ERROR;
    } else {
        out->model_id = entry->model_id;
        out->served = entry->served;
        if (out->served) sqml_served_retain(out->served);
        else snprintf(out->python, sizeof out->python, "%s", entry->python ? entry->python : "");
        status = SQML_RESOLVED;
    }
    pthread_mutex_unlock(&conn->lock);
    return status;
}
