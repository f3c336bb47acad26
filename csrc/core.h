/*
 * The native scorer: pure C, no Python. Compiled into both shared objects:
 *
 *  - sqml.so (extension.c): a SQLite loadable extension that links no Python at all.
 *    `.load` it into any host (the sqlite3 shell, a Go, Node or Rust program): every
 *    sqml_* function is registered; natively served models predict without an
 *    interpreter, and everything else starts the Python side lazily (dlopen of the
 *    package's _native module, see bridge.h) the first time a function needs it;
 *  - _native.so (the CPython module): the same scorer serves Python connections
 *    (sqlite_ml.register), with the Python callables as the fallback.
 *
 * The files, by role:
 *  - sha256.c: the digest a native form is stored with;
 *  - model_load.c: the native model format (ml/native_format.py writes it), parsed and
 *    validated before anything walks it; models are immutable once loaded;
 *  - model_score.c: features -> encoded row -> prediction, probabilities (no SQLite);
 *  - json_row.c: JSON text -> feature values; Python-compatible number and JSON output;
 *  - deployed.c: which model an experiment has deployed (SQL), the process-wide cache of
 *    loaded native models and each connection's state (SqmlConn);
 *  - scoring.c: the SQL functions sqml_predict, sqml_predict_batch, sqml_predict_proba
 *    and the trampolines of the functions that need Python;
 *  - table.c: the sqml_predict_table virtual table (native rows, or the Python side's);
 *  - rows.c: table-valued functions whose rows the Python side computes.
 *
 * What one file gives another is named sqml_* and hidden (-fvisibility=hidden); the
 * only exported symbols are the entry points.
 */
#ifndef SQML_CORE_H
#define SQML_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#if defined(__GNUC__) && !defined(_WIN32)
#define SQML_HIDDEN __attribute__((visibility("hidden")))
#define SQML_EXPORT __attribute__((visibility("default")))
#else
#define SQML_HIDDEN
#define SQML_EXPORT
#endif

#define SQML_ERROR_SIZE 1024

/* sha256.c ----------------------------------------------------------------------------- */

/* The lowercase hex SHA-256 of data (65 bytes with the NUL). */
SQML_HIDDEN void sqml_sha256_hex(const void *data, size_t size, char hex[65]);

/* model_load.c -------------------------------------------------------------------------- */

enum { SQML_LABELS_NUMERIC = 0, SQML_LABELS_TEXT = 1, SQML_LABELS_CLUSTER = 2 };
enum { SQML_FEATURE_NUMERIC = 0, SQML_FEATURE_ONE_HOT = 1, SQML_FEATURE_ORDINAL = 2,
       SQML_FEATURE_TARGET = 3 };

typedef struct {
    const char *text; /* NUL-terminated copy */
    uint32_t size;
} SqmlText;

typedef struct {
    SqmlText name;
    uint32_t kind, required, n_categories, outputs, offset, width;
    SqmlText *categories;
    double *aliases; /* the float whose repr is the category, else NaN */
    double *target;  /* n_categories x outputs */
    uint32_t *slots; /* open addressing: category index + 1, 0 empty */
    uint32_t n_slots;
} SqmlFeature;

typedef struct SqmlModel SqmlModel;

/* A validated model, or NULL with the failed check in error. The blob is copied. */
SQML_HIDDEN SqmlModel *sqml_model_load(const unsigned char *blob, size_t size,
                                       char error[SQML_ERROR_SIZE]);
SQML_HIDDEN void sqml_model_free(SqmlModel *model);

SQML_HIDDEN uint32_t sqml_model_n_features(const SqmlModel *model);
/* The SHA-256 of the skops blob the form was compiled from ("" when not recorded). */
SQML_HIDDEN const char *sqml_model_digest(const SqmlModel *model);
/* The SHA-256 of the feature schema's JSON it was compiled with ("" when not recorded). */
SQML_HIDDEN const char *sqml_model_schema_digest(const SqmlModel *model);
/* The length of the skops blob it was compiled from (0 when not recorded). */
SQML_HIDDEN double sqml_model_size(const SqmlModel *model);
SQML_HIDDEN const SqmlFeature *sqml_model_feature(const SqmlModel *model, uint32_t index);
SQML_HIDDEN uint32_t sqml_model_width(const SqmlModel *model);
SQML_HIDDEN int sqml_model_label_kind(const SqmlModel *model);
SQML_HIDDEN uint32_t sqml_model_n_classes(const SqmlModel *model);
/* Whether predict_proba exists for the model. */
SQML_HIDDEN int sqml_model_has_probabilities(const SqmlModel *model);
SQML_HIDDEN int sqml_model_is_regression(const SqmlModel *model);
/* A class label: text labels as text, numeric labels as numbers (index < n_classes). */
SQML_HIDDEN const SqmlText *sqml_model_text_label(const SqmlModel *model, uint32_t index);
SQML_HIDDEN double sqml_model_number_label(const SqmlModel *model, uint32_t index);
/* Doubles of scratch space a prediction needs (see sqml_model_predict). */
SQML_HIDDEN size_t sqml_model_work_size(const SqmlModel *model);
/* The index of the feature named exactly so, or -1. */
SQML_HIDDEN int64_t sqml_model_feature_named(const SqmlModel *model, const char *name,
                                             size_t size);
/* The category's index in a feature's table, or -1. */
SQML_HIDDEN int64_t sqml_feature_category(const SqmlFeature *feature, const char *text,
                                          size_t size);

/* model_score.c ------------------------------------------------------------------------- */

enum { SQML_SCORED = 0, SQML_UNSURE = 1 };

typedef struct {
    double value;     /* regression (and the raw value of numeric labels) */
    int64_t index;    /* class position or cluster id */
} SqmlPrediction;

/* x: an encoded row (width doubles, NaN where missing), imputed and scaled in place;
 * work: sqml_model_work_size() doubles. SQML_UNSURE: a linear score or a centroid
 * distance too close to call for the exact answer of scikit-learn's own arithmetic
 * (the caller asks the Python side when it can; the result is filled either way). */
SQML_HIDDEN int sqml_model_predict(const SqmlModel *model, double *x, double *work,
                                   SqmlPrediction *out);
/* Class probabilities (n_classes doubles) for an encoded row, as predict_proba. */
SQML_HIDDEN void sqml_model_probabilities(const SqmlModel *model, double *x, double *work,
                                          double *out);

/* Tree models scored in blocks of rows (each tree walked for every row of the block while
 * it is in the cache): the leaf of every tree for n encoded rows (x: n x width, imputed
 * and scaled in place; rounded: n x width floats of scratch; leaves: n x n_trees), then
 * each row's prediction and probabilities from its leaves. The same numbers as
 * sqml_model_predict and sqml_model_probabilities. */
#define SQML_BLOCK_ROWS 256
SQML_HIDDEN int sqml_model_has_trees(const SqmlModel *model);
SQML_HIDDEN uint32_t sqml_model_n_trees(const SqmlModel *model);
SQML_HIDDEN void sqml_model_leaves_rows(const SqmlModel *model, double *x, size_t n,
                                        float *rounded, uint32_t *leaves);
SQML_HIDDEN void sqml_model_predict_leaves(const SqmlModel *model, const uint32_t *leaves,
                                           double *work, SqmlPrediction *out);
SQML_HIDDEN void sqml_model_probabilities_leaves(const SqmlModel *model,
                                                 const uint32_t *leaves, double *work,
                                                 double *out);

/* Feature values, the way every input form (JSON, SQL arguments, a source row) gives
 * them to the encoder. */
enum {
    SQML_CELL_NULL,
    SQML_CELL_INTEGER,     /* i (and, from JSON, the token in text) */
    SQML_CELL_BIG_INTEGER, /* a JSON integer beyond int64: the token in text */
    SQML_CELL_REAL,
    SQML_CELL_TEXT,
    SQML_CELL_BOOL,
    SQML_CELL_BLOB,
    SQML_CELL_NESTED /* a JSON object or array (text: its JSON) */
};

typedef struct {
    int type;
    int64_t i;
    double d;
    const char *text;
    size_t size;
} SqmlCell;

enum { SQML_ENCODED = 0, SQML_ENCODE_ERROR = 1, SQML_ENCODE_DEFER = 2 };

/* Encode one row's feature values (n_features cells, in the model's feature order) into
 * x (width doubles). On SQML_ENCODE_ERROR message holds the user's error (prefixed by
 * where, e.g. " (item 3)"); on SQML_ENCODE_DEFER a value only the Python side reads
 * exactly (unusual text forms), with the reason in message. */
SQML_HIDDEN int sqml_encode_cells(const SqmlModel *model, const SqmlCell *cells,
                                  const char *where, double *x, char message[SQML_ERROR_SIZE]);

/* json_row.c ---------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t size, capacity;
    int failed; /* out of memory */
} SqmlBuffer;

SQML_HIDDEN void sqml_buffer_add(SqmlBuffer *buffer, const char *data, size_t size);
SQML_HIDDEN void sqml_buffer_text(SqmlBuffer *buffer, const char *text);
SQML_HIDDEN void sqml_buffer_free(SqmlBuffer *buffer);
/* A double as Python's repr writes it ("0.1", "1e-05", "1.0", "nan", "inf"). */
SQML_HIDDEN void sqml_buffer_double(SqmlBuffer *buffer, double value);
/* A string as json.dumps writes it (ensure_ascii: non-ASCII as \uXXXX). */
SQML_HIDDEN void sqml_buffer_json_string(SqmlBuffer *buffer, const char *text, size_t size);

/* One JSON row: the cells of each model feature (by name for an object, by position for
 * an array), parsed from text[*position]. Returns SQML_ENCODED with *position past the
 * row, or an error / defer with the message. Cells' texts point into scratch or text. */
typedef struct SqmlJsonScratch SqmlJsonScratch;
SQML_HIDDEN SqmlJsonScratch *sqml_json_scratch_new(void);
SQML_HIDDEN void sqml_json_scratch_free(SqmlJsonScratch *scratch);
/* Empty a scratch for another row; 0 when it grew too large to be worth keeping. */
SQML_HIDDEN int sqml_json_scratch_recycle(SqmlJsonScratch *scratch);
SQML_HIDDEN int sqml_json_row(const SqmlModel *model, const char *text, size_t size,
                              size_t *position, SqmlJsonScratch *scratch, SqmlCell *cells,
                              const char *what, const char *where,
                              char message[SQML_ERROR_SIZE]);
/* A JSON number's text (NUL-terminated) as the parser reads it: Python's float(). */
SQML_HIDDEN double sqml_json_number(const char *text, size_t size);
/* Skip JSON whitespace from *position. */
SQML_HIDDEN void sqml_json_skip_space(const char *text, size_t size, size_t *position);
/* A value quoted for a message as Python's shorten(json.dumps(value)) does. */
SQML_HIDDEN void sqml_describe_cell(const SqmlCell *cell, char *out, size_t size);
/* Python's shorten(text): cut at 80 characters with "...". */
SQML_HIDDEN void sqml_shorten(const char *text, size_t size, char *out, size_t out_size);

/* The prediction and probabilities of a scored row as SQL and JSON ------------------- */

SQML_HIDDEN void sqml_result_prediction(sqlite3_context *context, const SqmlModel *model,
                                        const SqmlPrediction *prediction);
SQML_HIDDEN void sqml_json_prediction(SqmlBuffer *buffer, const SqmlModel *model,
                                      const SqmlPrediction *prediction);
/* {"label": p, ...} as sqml_predict_proba writes it; 0 when a probability is not
 * finite (then nonfinite_as_null writes null for it, else nothing is written). */
SQML_HIDDEN int sqml_json_probabilities(SqmlBuffer *buffer, const SqmlModel *model,
                                        const double *probabilities, int nonfinite_as_null);

#endif
