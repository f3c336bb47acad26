/* The scalar SQL functions the native scorer answers: sqml_predict (a JSON object or
 * array, or the values one by one), sqml_predict_batch and sqml_predict_proba. A model
 * served natively is scored here without Python; anything else (a Python-served model,
 * an error the Python side words, a near tie only scikit-learn's own arithmetic
 * decides) goes to the Python side when there is one, and is answered as well as C can
 * (or refused with a clear message) when there is none. In a host, the functions that
 * always need Python get a trampoline that starts it on first use. */
#include <stdio.h>
#include <stdlib.h>

#include "bridge.h"

#ifndef SQML_VERSION
#define SQML_VERSION "unknown"
#endif

void sqml_to_python(SqmlConn *conn, const char *name, sqlite3_context *context, int argc,
                    sqlite3_value **argv, const char *message) {
    const char *why = NULL;
    SqmlBridge *bridge = sqml_conn_bridge(conn, &why);
    if (bridge != NULL) {
        sqml_count(0, 1);
        bridge->call(bridge->state, name, context, argc, argv);
        return;
    }
    if (message != NULL) {
        sqlite3_result_error(context, message, -1);
        return;
    }
    char *text = sqlite3_mprintf("%s needs sqlite-ml's Python side, which is not available "
                                 "here: %s",
                                 name, why ? why : "unknown reason");
    if (text == NULL) sqlite3_result_error_nomem(context);
    else sqlite3_result_error(context, text, -1);
    sqlite3_free(text);
}

void sqml_result_prediction(sqlite3_context *context, const SqmlModel *model,
                            const SqmlPrediction *prediction) {
    int kind = sqml_model_label_kind(model);
    if (kind == SQML_LABELS_CLUSTER) {
        sqlite3_result_int64(context, prediction->index);
    } else if (sqml_model_is_regression(model)) {
        sqlite3_result_double(context, prediction->value);
    } else if (kind == SQML_LABELS_TEXT) {
        const SqmlText *label = sqml_model_text_label(model, (uint32_t)prediction->index);
        sqlite3_result_text(context, label->text, (int)label->size, SQLITE_TRANSIENT);
    } else {
        sqlite3_result_double(context,
                              sqml_model_number_label(model, (uint32_t)prediction->index));
    }
}

/* What is said of a model the Python side serves, when there is no Python side. */
static void python_served_message(sqlite3_value *experiment, const SqmlDeployment *deployment,
                                  const char *why, char *message) {
    char shown[128];
    sqml_shorten((const char *)sqlite3_value_text(experiment),
                 (size_t)sqlite3_value_bytes(experiment), shown, sizeof shown);
    snprintf(message, SQML_ERROR_SIZE,
             "experiment '%s' (model %lld) is served by sqlite-ml's Python side (%s), which is "
             "not available here: %s",
             shown, (long long)deployment->model_id, deployment->python,
             why ? why : "unknown reason");
}

/* The deployed model of argv[0] when it is served natively (retained: release it);
 * otherwise the call has been handed to Python or answered with an error. */
static SqmlServed *native_model(SqmlConn *conn, const char *name, sqlite3_context *context,
                                int argc, sqlite3_value **argv) {
    char message[SQML_ERROR_SIZE];
    SqmlDeployment deployment;
    int status = sqml_resolve(conn, argv[0], &deployment, message);
    if (status == SQML_RESOLVE_ERROR) {
        sqlite3_result_error(context, message, -1);
        return NULL;
    }
    if (status == SQML_RESOLVE_DEFER) {
        sqml_to_python(conn, name, context, argc, argv, message);
        return NULL;
    }
    if (deployment.served == NULL) {
        const char *why = NULL;
        if (sqml_conn_bridge(conn, &why) == NULL)
            python_served_message(argv[0], &deployment, why, message);
        sqml_to_python(conn, name, context, argc, argv, message);
        return NULL;
    }
    return deployment.served;
}

/* The native model of a name(experiment_name, features) call, or NULL when the call has
 * been answered otherwise (a wrong argument count, an error, the Python side). */
static SqmlServed *features_model(SqmlConn *conn, const char *name, sqlite3_context *context,
                                  int argc, sqlite3_value **argv) {
    if (argc != 2) {
        char message[SQML_ERROR_SIZE];
        snprintf(message, sizeof message,
                 "%s takes 2 arguments, got %d; usage: %s(experiment_name, features)", name, argc,
                 name);
        sqml_to_python(conn, name, context, argc, argv, message);
        return NULL;
    }
    return native_model(conn, name, context, argc, argv);
}

/* The native model of a name(experiment_name, features) or name(experiment_name, value1,
 * value2, ...) call, or NULL when the call has been answered otherwise. */
static SqmlServed *values_model(SqmlConn *conn, const char *name, sqlite3_context *context,
                                int argc, sqlite3_value **argv) {
    if (argc < 2) {
        char message[SQML_ERROR_SIZE];
        snprintf(message, sizeof message,
                 "%s takes 2 or more arguments, got %d; usage: %s(experiment_name, features) or "
                 "%s(experiment_name, value1, value2, ...)",
                 name, argc, name, name);
        sqml_to_python(conn, name, context, argc, argv, message);
        return NULL;
    }
    return native_model(conn, name, context, argc, argv);
}

/* Per-call memory: the encoded row, scratch, cells and probabilities (on the stack for
 * the common small model). */
#define SMALL_SPACE 2048
typedef struct {
    double *x, *work, *probabilities;
    SqmlCell *cells;
    void *memory;  /* malloc'd, or NULL */
    double small[SMALL_SPACE];
} Space;

static void space_free(Space *space) { free(space->memory); }

static int space_for(const SqmlModel *model, Space *space) {
    size_t width = sqml_model_width(model), work = sqml_model_work_size(model);
    size_t classes = sqml_model_n_classes(model) + 1, features = sqml_model_n_features(model);
    size_t bytes = sizeof(double) * (width + work + classes) + sizeof(SqmlCell) * features;
    space->memory = NULL;
    double *memory = space->small;
    if (bytes > sizeof space->small) {
        space->memory = malloc(bytes);
        if (space->memory == NULL) return 0;
        memory = (double *)space->memory;
    }
    space->x = memory;
    space->work = space->x + width;
    space->probabilities = space->work + work;
    space->cells = (SqmlCell *)(space->probabilities + classes);
    return 1;
}

void sqml_cell_from_value(sqlite3_value *value, SqmlCell *cell) {
    memset(cell, 0, sizeof *cell);
    switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
        cell->type = SQML_CELL_INTEGER;
        cell->i = sqlite3_value_int64(value);
        break;
    case SQLITE_FLOAT:
        cell->type = SQML_CELL_REAL;
        cell->d = sqlite3_value_double(value);
        break;
    case SQLITE_TEXT:
        cell->type = SQML_CELL_TEXT;
        cell->text = (const char *)sqlite3_value_text(value);
        cell->size = (size_t)sqlite3_value_bytes(value);
        if (cell->text == NULL) cell->type = SQML_CELL_NULL;
        break;
    case SQLITE_BLOB:
        cell->type = SQML_CELL_BLOB;
        cell->size = (size_t)sqlite3_value_bytes(value);
        break;
    default:
        cell->type = SQML_CELL_NULL;
    }
}

int sqml_encode_numbers(const SqmlModel *model, sqlite3_value **values, double *x) {
    uint32_t n = sqml_model_n_features(model);
    for (uint32_t f = 0; f < n; f++) {
        const SqmlFeature *feature = sqml_model_feature(model, f);
        if (feature->kind != SQML_FEATURE_NUMERIC) return 0;
        double *out = x + feature->offset;
        switch (sqlite3_value_type(values[f])) {
        case SQLITE_FLOAT:
            *out = sqlite3_value_double(values[f]);
            if (!isfinite(*out)) return 0;
            break;
        case SQLITE_INTEGER:
            *out = (double)sqlite3_value_int64(values[f]);
            break;
        case SQLITE_NULL:
            if (feature->required) return 0;
            *out = NAN;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

/* Cells from one JSON row given as a SQL value (the whole text must be that row). */
static int cells_from_json(const SqmlModel *model, sqlite3_value *value, SqmlJsonScratch *scratch,
                           SqmlCell *cells, const char *what, char *message) {
    int type = sqlite3_value_type(value);
    if (type != SQLITE_TEXT) {
        char shown[64];
        if (type == SQLITE_NULL) snprintf(shown, sizeof shown, "NULL");
        else if (type == SQLITE_BLOB)
            snprintf(shown, sizeof shown, "a BLOB of %d bytes", sqlite3_value_bytes(value));
        else if (type == SQLITE_INTEGER)
            snprintf(shown, sizeof shown, "%lld", (long long)sqlite3_value_int64(value));
        else {
            SqmlBuffer b = {0};
            sqml_buffer_double(&b, sqlite3_value_double(value));
            snprintf(shown, sizeof shown, "%s", b.data ? b.data : "a number");
            sqml_buffer_free(&b);
        }
        snprintf(message, SQML_ERROR_SIZE,
                 "%s must be JSON text (an object keyed by column name or an array in "
                 "training-column order), got %s",
                 what, shown);
        return type == SQLITE_BLOB ? SQML_ENCODE_DEFER : SQML_ENCODE_ERROR;
    }
    const char *text = (const char *)sqlite3_value_text(value);
    size_t size = (size_t)sqlite3_value_bytes(value), position = 0;
    int status = sqml_json_row(model, text, size, &position, scratch, cells, what, "", message);
    if (status != SQML_ENCODED) return status;
    sqml_json_skip_space(text, size, &position);
    if (position != size) {
        char shown[128];
        sqml_shorten(text, size, shown, sizeof shown);
        snprintf(message, SQML_ERROR_SIZE, "%s is not valid JSON (extra data at character %zu): %s",
                 what, position, shown);
        return SQML_ENCODE_ERROR;
    }
    return SQML_ENCODED;
}

static void quoted_feature_names(const SqmlModel *model, SqmlBuffer *out) {
    for (uint32_t i = 0; i < sqml_model_n_features(model); i++) {
        const SqmlFeature *feature = sqml_model_feature(model, i);
        if (i) sqml_buffer_text(out, ", ");
        sqml_buffer_text(out, "'");
        sqml_buffer_add(out, feature->name.text, feature->name.size);
        sqml_buffer_text(out, "'");
    }
}

/* The cells of name(experiment_name, ...)'s features (argc >= 2): one JSON row, a
 * one-feature model's value alone (a number or NULL), or the values one by one in
 * training order, as the Python side takes them (*scratch: made for JSON, to be freed). */
static int cells_from_arguments(SqmlConn *conn, const SqmlModel *model, const char *name, int argc,
                                sqlite3_value **argv, SqmlJsonScratch **scratch, SqmlCell *cells,
                                char *message) {
    uint32_t n = sqml_model_n_features(model);
    int type = sqlite3_value_type(argv[1]);
    int alone = argc == 2 && n == 1 &&
                (type == SQLITE_NULL || type == SQLITE_INTEGER || type == SQLITE_FLOAT);
    if (argc == 2 && !alone) {
        *scratch = sqml_conn_scratch(conn);
        return *scratch ? cells_from_json(model, argv[1], *scratch, cells, "features", message)
                        : SQML_ENCODE_DEFER;
    }
    if ((uint32_t)(argc - 1) != n) {
        SqmlBuffer b = {0};
        char head[160];
        snprintf(head, sizeof head,
                 "%s got %d feature values but the model expects %u, in this order: ", name,
                 argc - 1, n);
        sqml_buffer_text(&b, head);
        quoted_feature_names(model, &b);
        snprintf(message, SQML_ERROR_SIZE, "%s", b.data ? b.data : head);
        sqml_buffer_free(&b);
        return SQML_ENCODE_ERROR;
    }
    for (uint32_t i = 0; i < n; i++) sqml_cell_from_value(argv[i + 1], &cells[i]);
    return SQML_ENCODED;
}

/* The row of a function's arguments encoded into space->x: numbers straight from the
 * values when they allow it, else through cells (cells_from_arguments). */
static int encode_arguments(SqmlConn *conn, const SqmlModel *model, const char *name, int argc,
                            sqlite3_value **argv, SqmlJsonScratch **scratch, Space *space,
                            char *message) {
    if ((uint32_t)(argc - 1) == sqml_model_n_features(model) &&
        sqml_encode_numbers(model, argv + 1, space->x))
        return SQML_ENCODED;
    int status =
        cells_from_arguments(conn, model, name, argc, argv, scratch, space->cells, message);
    if (status == SQML_ENCODED) status = sqml_encode_cells(model, space->cells, "", space->x, message);
    return status;
}

static void predict_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    SqmlConn *conn = (SqmlConn *)sqlite3_user_data(context);
    char message[SQML_ERROR_SIZE];
    SqmlServed *served = values_model(conn, "sqml_predict", context, argc, argv);
    if (served == NULL) return;
    const SqmlModel *model = sqml_served_model(served);
    Space space;
    SqmlJsonScratch *scratch = NULL;
    if (!space_for(model, &space)) {
        sqml_served_release(served);
        sqlite3_result_error_nomem(context);
        return;
    }
    int status = encode_arguments(conn, model, "sqml_predict", argc, argv, &scratch, &space, message);
    if (status != SQML_ENCODED) {
        sqml_to_python(conn, "sqml_predict", context, argc, argv, message);
    } else {
        SqmlPrediction prediction;
        if (sqml_model_predict(model, space.x, space.work, &prediction) == SQML_UNSURE &&
            sqml_conn_bridge(conn, NULL) != NULL) {
            sqml_to_python(conn, "sqml_predict", context, argc, argv, NULL);
        } else {
            sqml_count(1, 0);
            sqml_result_prediction(context, model, &prediction);
        }
    }
    sqml_conn_scratch_done(conn, scratch);
    space_free(&space);
    sqml_served_release(served);
}

void sqml_json_prediction(SqmlBuffer *b, const SqmlModel *model, const SqmlPrediction *p) {
    int kind = sqml_model_label_kind(model);
    char digits[32];
    if (kind == SQML_LABELS_CLUSTER) {
        snprintf(digits, sizeof digits, "%lld", (long long)p->index);
        sqml_buffer_text(b, digits);
    } else if (kind == SQML_LABELS_TEXT) {
        const SqmlText *label = sqml_model_text_label(model, (uint32_t)p->index);
        sqml_buffer_json_string(b, label->text, label->size);
    } else {
        double value = sqml_model_is_regression(model)
                           ? p->value
                           : sqml_model_number_label(model, (uint32_t)p->index);
        if (isfinite(value)) sqml_buffer_double(b, value);
        else sqml_buffer_text(b, "null"); /* JSON has no NaN or infinity */
    }
}

static void batch_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    SqmlConn *conn = (SqmlConn *)sqlite3_user_data(context);
    char message[SQML_ERROR_SIZE];
    SqmlServed *served = features_model(conn, "sqml_predict_batch", context, argc, argv);
    if (served == NULL) return;
    const SqmlModel *model = sqml_served_model(served);
    Space space;
    SqmlJsonScratch *scratch = sqml_conn_scratch(conn);
    SqmlBuffer out = {0};
    int status = SQML_ENCODED, unsure = 0;
    long rows = 0;
    if (scratch == NULL || !space_for(model, &space)) {
        sqml_conn_scratch_done(conn, scratch);
        sqml_served_release(served);
        sqlite3_result_error_nomem(context);
        return;
    }
    int is_text = sqlite3_value_type(argv[1]) == SQLITE_TEXT; /* before reading it as text */
    const char *text = is_text ? (const char *)sqlite3_value_text(argv[1]) : NULL;
    size_t size = is_text ? (size_t)sqlite3_value_bytes(argv[1]) : 0, at = 0;
    if (!is_text || text == NULL) {
        snprintf(message, sizeof message,
                 "batch features must be JSON text (an object keyed by column name or an array "
                 "in training-column order)");
        status = SQML_ENCODE_DEFER;
    } else {
        sqml_json_skip_space(text, size, &at);
        if (at >= size || text[at] != '[') {
            char shown[128];
            sqml_shorten(text, size, shown, sizeof shown);
            snprintf(message, sizeof message,
                     "batch features must be a JSON array of objects or arrays, got %s", shown);
            status = SQML_ENCODE_ERROR;
        }
    }
    if (status == SQML_ENCODED) {
        at++;
        sqml_buffer_text(&out, "[");
        sqml_json_skip_space(text, size, &at);
        int empty = at < size && text[at] == ']';
        if (empty) at++;
        while (!empty) {
            char where[48];
            snprintf(where, sizeof where, " (item %ld)", rows);
            status = sqml_json_row(model, text, size, &at, scratch, space.cells, "features", where,
                                   message);
            if (status == SQML_ENCODED)
                status = sqml_encode_cells(model, space.cells, where, space.x, message);
            if (status != SQML_ENCODED) break;
            SqmlPrediction prediction;
            if (sqml_model_predict(model, space.x, space.work, &prediction) == SQML_UNSURE)
                unsure = 1;
            if (rows++) sqml_buffer_text(&out, ", ");
            sqml_json_prediction(&out, model, &prediction);
            sqml_json_skip_space(text, size, &at);
            if (at < size && text[at] == ',') {
                at++;
                continue;
            }
            if (at < size && text[at] == ']') {
                at++;
                break;
            }
            snprintf(message, sizeof message,
                     "batch features is not valid JSON (expecting ',' or ']' at character %zu)", at);
            status = SQML_ENCODE_ERROR;
            break;
        }
        if (status == SQML_ENCODED) {
            sqml_json_skip_space(text, size, &at);
            if (at != size) {
                snprintf(message, sizeof message,
                         "batch features is not valid JSON (extra data at character %zu)", at);
                status = SQML_ENCODE_ERROR;
            }
        }
        sqml_buffer_text(&out, "]");
    }
    if (status != SQML_ENCODED || (unsure && sqml_conn_bridge(conn, NULL) != NULL)) {
        sqml_to_python(conn, "sqml_predict_batch", context, argc, argv,
                       status != SQML_ENCODED ? message : NULL);
    } else if (out.failed) {
        sqlite3_result_error_nomem(context);
    } else {
        sqml_count((int)rows, 0);
        sqlite3_result_text(context, out.data, (int)out.size, SQLITE_TRANSIENT);
    }
    sqml_buffer_free(&out);
    sqml_conn_scratch_done(conn, scratch);
    space_free(&space);
    sqml_served_release(served);
}

int sqml_json_probabilities(SqmlBuffer *b, const SqmlModel *model, const double *p,
                            int nonfinite_as_null) {
    uint32_t n = sqml_model_n_classes(model);
    int kind = sqml_model_label_kind(model);
    for (uint32_t k = 0; k < n; k++)
        if (!isfinite(p[k]) && !nonfinite_as_null) return 0;
    sqml_buffer_text(b, "{");
    for (uint32_t k = 0; k < n; k++) {
        if (k) sqml_buffer_text(b, ", ");
        if (kind == SQML_LABELS_TEXT) {
            const SqmlText *label = sqml_model_text_label(model, k);
            sqml_buffer_json_string(b, label->text, label->size);
        } else { /* a numeric label as the text of its REAL: "0.0", "1.0" */
            SqmlBuffer key = {0};
            sqml_buffer_double(&key, sqml_model_number_label(model, k) + 0.0);
            sqml_buffer_json_string(b, key.data ? key.data : "", key.size);
            sqml_buffer_free(&key);
        }
        sqml_buffer_text(b, ": ");
        if (isfinite(p[k])) sqml_buffer_double(b, p[k]);
        else sqml_buffer_text(b, "null");
    }
    sqml_buffer_text(b, "}");
    return 1;
}

static void proba_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    SqmlConn *conn = (SqmlConn *)sqlite3_user_data(context);
    char message[SQML_ERROR_SIZE];
    SqmlServed *served = values_model(conn, "sqml_predict_proba", context, argc, argv);
    if (served == NULL) return;
    const SqmlModel *model = sqml_served_model(served);
    if (!sqml_model_has_probabilities(model)) {
        char shown[128];
        sqml_shorten((const char *)sqlite3_value_text(argv[0]), (size_t)sqlite3_value_bytes(argv[0]),
                     shown, sizeof shown);
        if (sqml_model_is_regression(model))
            snprintf(message, sizeof message,
                     "experiment '%s' is a regression model: it predicts numbers, not class "
                     "probabilities; use sqml_predict for its predictions",
                     shown);
        else
            snprintf(message, sizeof message,
                     "experiment '%s' does not give class probabilities", shown);
        sqml_served_release(served);
        sqml_to_python(conn, "sqml_predict_proba", context, argc, argv, message);
        return;
    }
    Space space;
    SqmlJsonScratch *scratch = NULL;
    if (!space_for(model, &space)) {
        sqml_served_release(served);
        sqlite3_result_error_nomem(context);
        return;
    }
    int status =
        encode_arguments(conn, model, "sqml_predict_proba", argc, argv, &scratch, &space, message);
    SqmlBuffer out = {0};
    if (status == SQML_ENCODED) {
        sqml_model_probabilities(model, space.x, space.work, space.probabilities);
        if (!sqml_json_probabilities(&out, model, space.probabilities, 0)) {
            snprintf(message, sizeof message,
                     "the probabilities for these features are not numbers; a feature value is "
                     "probably too large for the model");
            status = SQML_ENCODE_ERROR;
        }
    }
    if (status != SQML_ENCODED) {
        sqml_to_python(conn, "sqml_predict_proba", context, argc, argv, message);
    } else if (out.failed) {
        sqlite3_result_error_nomem(context);
    } else {
        sqml_count(1, 0);
        sqlite3_result_text(context, out.data, (int)out.size, SQLITE_TRANSIENT);
    }
    sqml_buffer_free(&out);
    sqml_conn_scratch_done(conn, scratch);
    space_free(&space);
    sqml_served_release(served);
}

static int register_function(sqlite3 *db, SqmlConn *conn, const char *name, int flags,
                             void (*call)(sqlite3_context *, int, sqlite3_value **)) {
    sqml_conn_retain(conn); /* SQLite releases it with the function (also on failure) */
    return sqlite3_create_function_v2(db, name, -1, SQLITE_UTF8 | flags, conn, call, NULL, NULL,
                                      sqml_conn_release);
}

int sqml_attach_scoring(sqlite3 *db, SqmlConn *conn, char **error) {
    static const struct {
        const char *name;
        void (*call)(sqlite3_context *, int, sqlite3_value **);
    } functions[] = {
        {"sqml_predict", predict_function},
        {"sqml_predict_batch", batch_function},
        {"sqml_predict_proba", proba_function},
    };
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        int rc = register_function(db, conn, functions[i].name, 0, functions[i].call);
        if (rc != SQLITE_OK) {
            if (error) *error = sqlite3_mprintf("could not register %s", functions[i].name);
            return rc;
        }
    }
    int rc = sqml_attach_table(db, conn);
    if (rc != SQLITE_OK) {
        if (error) *error = sqlite3_mprintf("could not register sqml_predict_table");
        return rc;
    }
    return sqml_attach_rows(db, conn, error);
}

/* -- a host's other functions ---------------------------------------------------------- */

/* Every other function of sql/registry.py (tests/test_native_host.py checks the list). */
static const struct {
    const char *name;
    int deterministic, direct_only;
} PYTHON_FUNCTIONS[] = {
    {"sqml_python_version", 1, 0},
    {"sqml_sklearn_version", 1, 0},
    {"sqml_load_dataset", 0, 1},
    {"sqml_train", 0, 1},
    {"sqml_deploy", 0, 1},
    {"sqml_delete_experiment", 0, 1},
    {"sqml_rename_experiment", 0, 1},
    {"sqml_tag", 0, 1},
    {"sqml_note", 0, 1},
    {"sqml_feature_importance", 0, 0},
    {"sqml_drift", 0, 0},
    {"sqml_explain", 0, 0},
    {"sqml_evaluate", 0, 0},
    {"sqml_export_model", 0, 0},
    {"sqml_embed", 0, 0},
    {"sqml_embed_batch", 0, 0},
    {"sqml_classify_text", 0, 0},
};

typedef struct {
    SqmlConn *conn;
    const char *name;
} Trampoline;

static void python_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    Trampoline *trampoline = (Trampoline *)sqlite3_user_data(context);
    sqml_to_python(trampoline->conn, trampoline->name, context, argc, argv, NULL);
}

static void trampoline_destroy(void *data) {
    Trampoline *trampoline = (Trampoline *)data;
    sqml_conn_release(trampoline->conn);
    free(trampoline);
}

static void binding_mode_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_text(context, "native-host", -1, SQLITE_STATIC);
}

static void version_function(sqlite3_context *context, int argc, sqlite3_value **argv) {
    (void)argv;
    if (argc != 0) {
        sqlite3_result_error(context, "sqml_version takes 0 arguments", -1);
        return;
    }
    sqlite3_result_text(context, SQML_VERSION, -1, SQLITE_STATIC);
}

int sqml_attach_host(sqlite3 *db, SqmlConn *conn, char **error) {
    int rc = sqml_attach_scoring(db, conn, error);
    if (rc != SQLITE_OK) return rc;
    int direct = sqlite3_libversion_number() >= 3030000 ? SQLITE_DIRECTONLY : 0;
    for (size_t i = 0; i < sizeof PYTHON_FUNCTIONS / sizeof PYTHON_FUNCTIONS[0]; i++) {
        Trampoline *trampoline = malloc(sizeof(Trampoline));
        if (trampoline == NULL) return SQLITE_NOMEM;
        sqml_conn_retain(conn);
        trampoline->conn = conn;
        trampoline->name = PYTHON_FUNCTIONS[i].name;
        int flags = SQLITE_UTF8 | (PYTHON_FUNCTIONS[i].deterministic ? SQLITE_DETERMINISTIC : 0) |
                    (PYTHON_FUNCTIONS[i].direct_only ? direct : 0);
        rc = sqlite3_create_function_v2(db, trampoline->name, -1, flags, trampoline,
                                        python_function, NULL, NULL, trampoline_destroy);
        if (rc != SQLITE_OK) {
            if (error) *error = sqlite3_mprintf("could not register %s", trampoline->name);
            return rc;
        }
    }
    rc = sqlite3_create_function_v2(db, "sqml_binding_mode", 0,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                    binding_mode_function, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function_v2(db, "sqml_version", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                        NULL, version_function, NULL, NULL, NULL);
    if (rc != SQLITE_OK && error) *error = sqlite3_mprintf("could not register sqml_version");
    return rc;
}
