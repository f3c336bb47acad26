/* Scoring a validated native model: feature values -> the encoded row (the feature
 * schema's rules, as ml/features.py applies them) -> imputed and scaled -> the
 * estimator, with scikit-learn's arithmetic in scikit-learn's order. Compiled with
 * -ffp-contract=off: a fused multiply-add would round differently from numpy. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

/* -- feature values ------------------------------------------------------------------- */

enum { NUMBER = 0, MISSING = 1, BAD = 2, UNUSUAL = 3 };

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int same_word(const char *text, size_t size, const char *word) {
    size_t n = strlen(word);
    if (size != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

/* Text as Python's float() after strip() reads it (as_number in ml/values.py): the
 * number, MISSING for blank or NaN, BAD for anything float() refuses or infinity, and
 * UNUSUAL for what only Python reads exactly (non-ASCII digits or spaces, underscores). */
static int number_from_text(const char *text, size_t size, double *out) {
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80 || (c >= 0x1c && c <= 0x1f) || c == '_') return UNUSUAL;
    }
    while (size && is_space(text[0])) text++, size--;
    while (size && is_space(text[size - 1])) size--;
    if (size == 0) return MISSING;
    const char *body = text;
    size_t rest = size;
    if (*body == '+' || *body == '-') body++, rest--;
    if (same_word(body, rest, "nan")) return MISSING;
    if (same_word(body, rest, "inf") || same_word(body, rest, "infinity")) return BAD;
    size_t i = 0, digits = 0;
    while (i < rest && body[i] >= '0' && body[i] <= '9') i++, digits++;
    if (i < rest && body[i] == '.') {
        i++;
        while (i < rest && body[i] >= '0' && body[i] <= '9') i++, digits++;
    }
    if (digits == 0) return BAD;
    if (i < rest && (body[i] == 'e' || body[i] == 'E')) {
        i++;
        if (i < rest && (body[i] == '+' || body[i] == '-')) i++;
        size_t exponent = 0;
        while (i < rest && body[i] >= '0' && body[i] <= '9') i++, exponent++;
        if (exponent == 0) return BAD;
    }
    if (i != rest) return BAD;
    char small[128];
    char *copy = size < sizeof small ? small : malloc(size + 1);
    if (copy == NULL) return UNUSUAL;
    memcpy(copy, text, size);
    copy[size] = '\0';
    *out = strtod(copy, NULL);
    if (copy != small) free(copy);
    return isinf(*out) ? BAD : NUMBER;
}

static int number_of(const SqmlCell *cell, double *out) {
    switch (cell->type) {
    case SQML_CELL_NULL:
        return MISSING;
    case SQML_CELL_REAL:
        *out = cell->d;
        return isfinite(cell->d) ? NUMBER : BAD;
    case SQML_CELL_INTEGER:
        *out = (double)cell->i;
        return NUMBER;
    case SQML_CELL_BIG_INTEGER:
        *out = strtod(cell->text, NULL); /* the token: digits only, NUL-terminated */
        return isfinite(*out) ? NUMBER : BAD;
    case SQML_CELL_BOOL:
        *out = cell->i ? 1.0 : 0.0;
        return NUMBER;
    case SQML_CELL_TEXT:
        return number_from_text(cell->text, cell->size, out);
    case SQML_CELL_BLOB:
        return UNUSUAL;
    default:
        return BAD;
    }
}

/* The category index of a value as category_of (ml/values.py) makes its text: integers
 * (and whole REALs) as digits, other REALs by their numeric alias, text as it is. -1 for
 * no category (unseen); -2 BAD (a nested JSON value); -3 UNUSUAL (a BLOB). */
static int64_t category_of(const SqmlFeature *feature, const SqmlCell *cell) {
    char digits[400];
    switch (cell->type) {
    case SQML_CELL_INTEGER:
        if (cell->text != NULL) {
            if (cell->size == 2 && memcmp(cell->text, "-0", 2) == 0)
                return sqml_feature_category(feature, "0", 1);
            return sqml_feature_category(feature, cell->text, cell->size);
        }
        snprintf(digits, sizeof digits, "%lld", (long long)cell->i);
        return sqml_feature_category(feature, digits, strlen(digits));
    case SQML_CELL_BIG_INTEGER:
        return sqml_feature_category(feature, cell->text, cell->size);
    case SQML_CELL_REAL: {
        double v = cell->d;
        if (isfinite(v) && v == floor(v)) {
            if (v == 0) return sqml_feature_category(feature, "0", 1);
            /* glibc prints a double's exact value: the digits of int(v) */
            snprintf(digits, sizeof digits, "%.0f", v);
            return sqml_feature_category(feature, digits, strlen(digits));
        }
        for (uint32_t c = 0; c < feature->n_categories; c++)
            if (feature->aliases[c] == v) return c;
        return -1;
    }
    case SQML_CELL_TEXT:
        return sqml_feature_category(feature, cell->text, cell->size);
    case SQML_CELL_BOOL:
        return cell->i ? sqml_feature_category(feature, "True", 4)
                       : sqml_feature_category(feature, "False", 5);
    case SQML_CELL_BLOB:
        return -3;
    case SQML_CELL_NESTED:
        return -2;
    default:
        return -1;
    }
}

int sqml_encode_cells(const SqmlModel *m, const SqmlCell *cells, const char *where, double *x,
                      char message[SQML_ERROR_SIZE]) {
    for (uint32_t f = 0; f < m->n_features; f++) {
        const SqmlFeature *feature = &m->features[f];
        const SqmlCell *cell = &cells[f];
        double *out = x + feature->offset;
        if (cell->type == SQML_CELL_NULL && feature->required) {
            snprintf(message, SQML_ERROR_SIZE,
                     "feature '%s'%s is null, but the model was trained with preprocess "
                     "impute 'error' for it: give it a value",
                     feature->name.text, where);
            return SQML_ENCODE_ERROR;
        }
        char shown[128];
        if (feature->kind == SQML_FEATURE_NUMERIC) {
            double value = NAN;
            int kind = number_of(cell, &value);
            if (kind == NUMBER) {
                out[0] = value;
                continue;
            }
            if (kind == MISSING) {
                out[0] = NAN;
                continue;
            }
            sqml_describe_cell(cell, shown, sizeof shown);
            snprintf(message, SQML_ERROR_SIZE, "feature '%s'%s expects a number or null, got %s",
                     feature->name.text, where, shown);
            return kind == BAD ? SQML_ENCODE_ERROR : SQML_ENCODE_DEFER;
        }
        int64_t hit = cell->type == SQML_CELL_NULL ? -1 : category_of(feature, cell);
        if (hit < -1) {
            sqml_describe_cell(cell, shown, sizeof shown);
            snprintf(message, SQML_ERROR_SIZE,
                     "feature '%s'%s expects a text category or null, got %s",
                     feature->name.text, where, shown);
            return hit == -2 ? SQML_ENCODE_ERROR : SQML_ENCODE_DEFER;
        }
        switch (feature->kind) {
        case SQML_FEATURE_ONE_HOT:
            for (uint32_t c = 0; c < feature->width; c++) out[c] = 0.0;
            if (hit >= 0) out[hit] = 1.0;
            break;
        case SQML_FEATURE_ORDINAL:
            out[0] = hit >= 0 ? (double)hit : NAN;
            break;
        default: /* target */
            for (uint32_t o = 0; o < feature->outputs; o++)
                out[o] = hit >= 0 ? feature->target[(size_t)hit * feature->outputs + o] : NAN;
        }
    }
    return SQML_ENCODED;
}

/* -- the estimators ------------------------------------------------------------------- */

/* A bound on how far any summation order of n products can stray from another (with
 * room to spare): (n + 2) units of roundoff, doubled twice. */
static double roundoff(uint32_t n) { return 4.0 * (n + 2.0) * 0x1p-52; }

static void preprocess(const SqmlModel *m, double *x) {
    for (uint32_t i = 0; i < m->width; i++) {
        double v = x[i];
        if (v != v) v = m->fill[i];
        v -= m->center[i];
        v /= m->scale[i];
        x[i] = v;
    }
}

static uint32_t first_max(const double *values, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (values[i] > values[best]) best = i;
    return best;
}

static double expit(double v) { return 1.0 / (1.0 + exp(-v)); }

static void softmax(double *values, uint32_t n) {
    double top = values[0];
    for (uint32_t i = 1; i < n; i++)
        if (values[i] > top) top = values[i];
    double total = 0;
    for (uint32_t i = 0; i < n; i++) {
        values[i] = exp(values[i] - top);
        total += values[i];
    }
    for (uint32_t i = 0; i < n; i++) values[i] /= total;
}

/* The dot product of a and x in order, and the sum of its terms' magnitudes (which
 * bounds its rounding error in any order). */
static double dot(const double *a, const double *x, uint32_t n, double *magnitude) {
    double sum = 0, size = 0;
    for (uint32_t i = 0; i < n; i++) {
        double term = a[i] * x[i];
        sum += term;
        size += fabs(term);
    }
    *magnitude = size;
    return sum;
}

/* scores (outputs) and the magnitudes their rounding error is bounded by (outputs). */
static void linear_scores(const SqmlModel *m, const double *x, double *scores, double *bounds) {
    for (uint32_t k = 0; k < m->outputs; k++) {
        double magnitude;
        scores[k] = dot(m->coef + (size_t)k * m->width, x, m->width, &magnitude) + m->intercept[k];
        bounds[k] = magnitude + fabs(m->intercept[k]);
    }
}

static int linear_predict(const SqmlModel *m, const double *x, double *work, SqmlPrediction *out) {
    double *scores = work, *bounds = work + m->outputs;
    linear_scores(m, x, scores, bounds);
    double eps = roundoff(m->width);
    if (m->decision == LINEAR_VALUE) {
        out->value = scores[0];
        out->index = 0;
        /* equal to 1e-9 relative whichever order scikit-learn's BLAS sums in */
        return eps * bounds[0] < 0.5e-9 * fabs(scores[0]) ? SQML_SCORED : SQML_UNSURE;
    }
    if (m->decision == LINEAR_BINARY) {
        out->index = scores[0] > 0 ? 1 : 0;
        return fabs(scores[0]) > eps * bounds[0] ? SQML_SCORED : SQML_UNSURE;
    }
    uint32_t best = first_max(scores, m->outputs);
    out->index = best;
    for (uint32_t k = 0; k < m->outputs; k++) {
        if (k == best) continue;
        if (scores[best] - scores[k] <= eps * (bounds[best] + bounds[k])) return SQML_UNSURE;
    }
    return SQML_SCORED;
}

static void linear_probabilities(const SqmlModel *m, const double *x, double *work,
                                 double *out) {
    double *scores = work, *bounds = work + m->outputs;
    linear_scores(m, x, scores, bounds);
    if (m->probability == LINEAR_PROBA_SOFTMAX) {
        memcpy(out, scores, sizeof(double) * m->outputs);
        softmax(out, m->outputs);
        return;
    }
    if (m->outputs == 1) { /* binary one-vs-rest: [1 - p, p] */
        double p = expit(scores[0]);
        out[0] = 1 - p;
        out[1] = p;
        return;
    }
    double total = 0;
    for (uint32_t k = 0; k < m->outputs; k++) {
        out[k] = expit(scores[k]);
        total += out[k];
    }
    for (uint32_t k = 0; k < m->outputs; k++)
        out[k] = total == 0 ? 1.0 / m->outputs : out[k] / total;
}

static int centroid_predict(const SqmlModel *m, const double *x, double *work,
                            SqmlPrediction *out) {
    double *distances = work, *bounds = work + m->k;
    for (uint32_t j = 0; j < m->k; j++) {
        double magnitude;
        double product = dot(m->centers + (size_t)j * m->width, x, m->width, &magnitude);
        /* k-means' predict: the centre's squared norm - 2 x.c (x's own norm is left out) */
        distances[j] = -2.0 * product + m->norms[j];
        bounds[j] = 2 * magnitude + fabs(m->norms[j]);
    }
    uint32_t best = 0;
    for (uint32_t j = 1; j < m->k; j++)
        if (distances[j] < distances[best]) best = j;
    out->index = best;
    out->value = (double)best;
    double eps = roundoff(m->width);
    for (uint32_t j = 0; j < m->k; j++) {
        if (j == best) continue;
        if (distances[j] - distances[best] <= eps * (bounds[best] + bounds[j])) return SQML_UNSURE;
    }
    return SQML_SCORED;
}

/* The walks of the compact layouts (model.h): nodes by their byte offset in the model's
 * pool, the left child next. A NaN (never after this pipeline's imputer, but the format
 * allows it) goes the node's way. */
/* The next node without a branch on the comparison (which a processor cannot predict):
 * a conditional move where the compiler is known to keep it one. */
static inline uint32_t pick(int left, uint32_t if_left, uint32_t otherwise) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(SQML_PORTABLE_WALK)
    __asm__("test %1, %1\n\tcmovnz %2, %0" : "+r"(otherwise) : "r"(left), "r"(if_left) : "cc");
    return otherwise;
#else
    return otherwise + ((if_left - otherwise) & (0u - (uint32_t)(left != 0)));
#endif
}

/* pick(v <= t, ...) and pick(v < t, ...) with the comparison's flags feeding the move
 * (no setcc between them: two cycles less on the walk's chain of dependent steps). A NaN
 * compares false, as in C. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) && !defined(SQML_PORTABLE_WALK)
#define PICK_COMPARED(NAME, TYPE, OPERATOR, COMPARE, CONDITION)                              \
    static inline size_t NAME(TYPE v, TYPE t, size_t if_left, size_t otherwise) {          \
        __asm__(COMPARE " %2, %3\n\t" CONDITION " %1, %0"                                     \
                : "+r"(otherwise)                                                          \
                : "r"(if_left), "xm"(v), "x"(t)                                             \
                : "cc");                                                                   \
        return otherwise;                                                                  \
    }
#else
#define PICK_COMPARED(NAME, TYPE, OPERATOR, COMPARE, CONDITION)                              \
    static inline size_t NAME(TYPE v, TYPE t, size_t if_left, size_t otherwise) {          \
        return otherwise + ((if_left - otherwise) & ((size_t)0 - (size_t)(v OPERATOR t)));  \
    }
#endif
PICK_COMPARED(pick_le32, float, <=, "ucomiss", "cmovae")
PICK_COMPARED(pick_lt32, float, <, "ucomiss", "cmova")
PICK_COMPARED(pick_le64, double, <=, "ucomisd", "cmovae")
PICK_COMPARED(pick_lt64, double, <, "ucomisd", "cmova")
#define PICK_LEFT(LESS, v, t, if_left, otherwise)                                           \
    _Generic((t), float: (LESS ? pick_lt32 : pick_le32),                                     \
             double: (LESS ? pick_lt64 : pick_le64))(v, t, if_left, otherwise)

#define NODE32(pool, at) ((const SqmlNode32 *)((pool) + (at)))
#define NODE64(pool, at) ((const SqmlNode64 *)((pool) + (at)))
/* the value a node compares: its feature is a byte offset into the row */
#define VALUE_AT(TYPE, row, feature) (*(const TYPE *)((const unsigned char *)(row) + (feature)))

/* A compact leaf's number: its threshold's NaN payload (model.h). */
static inline uint32_t leaf32(const SqmlNode32 *node) {
    uint32_t bits;
    memcpy(&bits, &node->threshold, sizeof bits);
    return bits & (COMPACT_MAX_LEAVES - 1);
}

static inline uint32_t leaf64(const SqmlNode64 *node) {
    uint64_t bits;
    memcpy(&bits, &node->threshold, sizeof bits);
    return (uint32_t)(bits & (COMPACT_MAX_LEAVES - 1));
}

static uint32_t walk32(const unsigned char *pool, uint32_t n, const float *x, int less_than) {
    for (;;) {
        const SqmlNode32 *node = NODE32(pool, n);
        uint32_t right = node->right & COMPACT_AT32;
        if (right == n) return leaf32(node);
        float v = VALUE_AT(float, x, node->feature);
        int left = less_than ? v < node->threshold : v <= node->threshold;
        if (__builtin_expect(v != v, 0)) left = (node->right & COMPACT_MISSING_LEFT) != 0;
        n = pick(left, n + (uint32_t)sizeof(SqmlNode32), right);
    }
}

/* A missing value's way at a float64 node (NaN, or LightGBM's zero). */
static int missing_left(double v, uint32_t flags, double threshold, int less_than) {
    if (v != v && (flags & COMPACT_NAN_AS_ZERO)) v = 0.0;
    if (v != v || ((flags & COMPACT_ZERO_MISSING) && v >= -1e-35 && v <= 1e-35))
        return (flags & COMPACT_MISSING_LEFT) != 0;
    return less_than ? v < threshold : v <= threshold;
}

static uint32_t walk64(const unsigned char *pool, uint32_t n, const double *x, int less_than) {
    for (;;) {
        const SqmlNode64 *node = NODE64(pool, n);
        uint32_t right = node->right & COMPACT_AT64, flags = node->right & ~COMPACT_AT64;
        if (right == n) return leaf64(node);
        double v = VALUE_AT(double, x, node->feature);
        int left = less_than ? v < node->threshold : v <= node->threshold;
        if (__builtin_expect(v != v || (flags & COMPACT_ZERO_MISSING), 0))
            left = missing_left(v, flags, node->threshold, less_than);
        n = pick(left, n + (uint32_t)sizeof(SqmlNode64), right);
    }
}

/* A row as the trees read it: float32 values (trees that round their inputs) or float64. */
typedef struct {
    const float *f;
    const double *d;
    int complete; /* no value is NaN (row_is_complete) */
} TreeRow;

static uint32_t walk_lightgbm(const SqmlTree *tree, const double *x);

/* The leaf number a row reaches in a tree. */
static uint32_t walk(const SqmlModel *m, const SqmlTree *tree, TreeRow row, int less_than) {
    if (tree->compact && row.f) return walk32(m->pool, tree->root, row.f, less_than);
    if (tree->compact) return walk64(m->pool, tree->root, row.d, less_than);
    return walk_lightgbm(tree, row.d);
}

#define LANES 4

/* LANES walks side by side (LANES trees over one row, or one tree over LANES rows), each
 * as walk32/walk64 walks: every walk is a chain of dependent loads, and independent chains
 * let the processor overlap them. A lane at its leaf stays there (branch-free selects). */
#define WALK_LANES(NAME, NODE, VALUE, AT, LEAF)                                             \
    static void NAME(const unsigned char *pool, const uint32_t root[LANES],                 \
                     const VALUE *const x[LANES], int less_than, uint32_t leaves[LANES]) {  \
        uint32_t n[LANES];                                                                  \
        for (int j = 0; j < LANES; j++) n[j] = root[j];                                     \
        for (;;) {                                                                          \
            uint32_t active = 0;                                                            \
            for (int j = 0; j < LANES; j++) {                                               \
                const NODE *node = (const NODE *)(pool + n[j]);                             \
                uint32_t right = node->right & AT, flags = node->right & ~AT;               \
                uint32_t inner = right != n[j];                                             \
                VALUE v = VALUE_AT(VALUE, x[j], node->feature);                             \
                int left = less_than ? v < node->threshold : v <= node->threshold;          \
                if (__builtin_expect(inner && (v != v || (flags & COMPACT_ZERO_MISSING)), 0)) \
                    left = missing_left((double)v, flags, node->threshold, less_than);      \
                n[j] = pick(left, n[j] + (uint32_t)sizeof(NODE), right);                    \
                active |= inner;                                                            \
            }                                                                               \
            if (!active) break;                                                             \
        }                                                                                   \
        for (int j = 0; j < LANES; j++) leaves[j] = LEAF((const NODE *)(pool + n[j]));      \
    }

WALK_LANES(walk32_lanes, SqmlNode32, float, COMPACT_AT32, leaf32)
WALK_LANES(walk64_lanes, SqmlNode64, double, COMPACT_AT64, leaf64)

/* The fast walks: FAST_LANES walks side by side when no comparison can meet a missing
 * value (the row has no NaN and no tree reads zero as missing), so that a step is one
 * comparison and no leaf test (a leaf loops onto itself, model.h): the lanes first take
 * as many steps as the shallowest of their leaves is deep, then pairs of steps until every
 * lane is on a leaf (at most their deepest leaf's depth). The comparison is fixed per
 * function: <= or < on float32 or float64. All lanes share the pool, so a lane is one
 * register: its node's byte offset. */
#define FAST_LANES WALK_GROUP
#define FAST_STEP(NODE, AT, LESS, ROW)                                                      \
    _Pragma("GCC unroll 8") for (int j = 0; j < FAST_LANES; j++) {                          \
        const NODE *node = (const NODE *)(pool + n[j]);                                     \
        n[j] = PICK_LEFT(LESS, VALUE_AT(__typeof__(node->threshold), ROW, node->feature),    \
                         node->threshold, n[j] + sizeof(NODE), node->right & AT);           \
    }
/* X: the lanes' rows (x[j], one per lane) or one row for them all (x[0]) */
#define WALK_FAST(NAME, NODE, VALUE, AT, LESS, LEAF, ROW)                                   \
    static void NAME(const unsigned char *pool, const uint32_t root[FAST_LANES],            \
                     const VALUE *const x[FAST_LANES], uint32_t shallowest,                 \
                     uint32_t deepest, uint32_t leaves[FAST_LANES]) {                       \
        size_t n[FAST_LANES]; /* size_t: an offset that indexes without a widening */       \
        const VALUE *row = x[0];                                                            \
        (void)row;                                                                          \
        _Pragma("GCC unroll 8") for (int j = 0; j < FAST_LANES; j++) n[j] = root[j];        \
        uint32_t s = 0;                                                                     \
        for (; s < shallowest; s++) {                                                       \
            FAST_STEP(NODE, AT, LESS, ROW)                                                  \
        }                                                                                   \
        while (s < deepest) {                                                               \
            FAST_STEP(NODE, AT, LESS, ROW)                                                  \
            FAST_STEP(NODE, AT, LESS, ROW)                                                  \
            s += 2;                                                                         \
            uint32_t moving = 0; /* stays 0 while every lane is on a leaf */                \
            _Pragma("GCC unroll 8") for (int j = 0; j < FAST_LANES; j++) moving |=          \
                (((const NODE *)(pool + n[j]))->right & AT) ^ n[j];                         \
            if (!moving) break;                                                             \
        }                                                                                   \
        _Pragma("GCC unroll 8") for (int j = 0; j < FAST_LANES; j++) leaves[j] =            \
            LEAF((const NODE *)(pool + n[j]));                                              \
    }

WALK_FAST(fast32_le, SqmlNode32, float, COMPACT_AT32, 0, leaf32, x[j])
WALK_FAST(fast32_lt, SqmlNode32, float, COMPACT_AT32, 1, leaf32, x[j])
WALK_FAST(fast64_le, SqmlNode64, double, COMPACT_AT64, 0, leaf64, x[j])
WALK_FAST(fast64_lt, SqmlNode64, double, COMPACT_AT64, 1, leaf64, x[j])
#if defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) && !defined(SQML_PORTABLE_WALK)
/* x86-64: the one-row fast walks with a step of all eight lanes in one block, each lane in
 * a register of its own, so that no lane is kept in memory between steps and a lane's step
 * is six instructions: its node's feature, threshold and right child, the left child's
 * offset, the comparison with the row's value, and the move that keeps the right child
 * (unordered included: a leaf's NaN threshold keeps the leaf, model.h). */
_Static_assert(sizeof(SqmlNode32) == 12 && offsetof(SqmlNode32, feature) == 4 &&
                   offsetof(SqmlNode32, right) == 8 && COMPACT_AT32 == (uint32_t)-4,
               "ROW_LANE's float32 node");
_Static_assert(sizeof(SqmlNode64) == 16 && offsetof(SqmlNode64, feature) == 8 &&
                   offsetof(SqmlNode64, right) == 12 && COMPACT_AT64 == (uint32_t)-16,
               "ROW_LANE's float64 node");
#define ROW_LANE(K, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                          \
    "movl " FEATURE "(%[pool],%[n" #K "]), %k[feature]\n\t"                                  \
    LOAD " (%[pool],%[n" #K "]), %[threshold]\n\t"                                          \
    "movl " RIGHT "(%[pool],%[n" #K "]), %k[right]\n\t"                                      \
    "andl $" MASK ", %k[right]\n\t"                                                          \
    "leal " SIZE "(%[n" #K "]), %k[n" #K "]\n\t"                                             \
    COMPARE " (%[row],%q[feature]), %[threshold]\n\t"                                        \
    MOVE " %k[right], %k[n" #K "]\n\t"
#define ROW_STEP(LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                             \
    __asm__(ROW_LANE(0, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(1, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(2, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(3, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(4, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(5, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(6, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            ROW_LANE(7, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE)                      \
            : [n0] "+r"(n0), [n1] "+r"(n1), [n2] "+r"(n2), [n3] "+r"(n3), [n4] "+r"(n4),     \
              [n5] "+r"(n5), [n6] "+r"(n6), [n7] "+r"(n7), [feature] "=&r"(feature),         \
              [right] "=&r"(right), [threshold] "=&x"(threshold)                             \
            : [pool] "r"(pool), [row] "r"(row)                                               \
            : "cc", "memory")
/* MOVE keeps the right child where the comparison does not send the value left: cmovb
 * for v <= t (not when t < v or unordered), cmovbe for v < t (not when t <= v or
 * unordered). */
#define WALK_ROW(NAME, NODE, VALUE, LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE, AT, LEAF)  \
    static void NAME(const unsigned char *pool, const uint32_t root[FAST_LANES],            \
                     const VALUE *const x[FAST_LANES], uint32_t shallowest,                 \
                     uint32_t deepest, uint32_t leaves[FAST_LANES]) {                       \
        const VALUE *row = x[0];                                                            \
        uint64_t n0 = root[0], n1 = root[1], n2 = root[2], n3 = root[3], n4 = root[4],      \
                 n5 = root[5], n6 = root[6], n7 = root[7], feature, right;                  \
        VALUE threshold;                                                                    \
        uint32_t s = 0;                                                                     \
        for (; s < shallowest; s++) ROW_STEP(LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE); \
        while (s < deepest) {                                                               \
            ROW_STEP(LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE);                      \
            ROW_STEP(LOAD, COMPARE, SIZE, FEATURE, RIGHT, MASK, MOVE);                      \
            s += 2;                                                                         \
            uint64_t at[FAST_LANES] = {n0, n1, n2, n3, n4, n5, n6, n7}, moving = 0;         \
            _Pragma("GCC unroll 8") for (int j = 0; j < FAST_LANES; j++) moving |=          \
                (((const NODE *)(pool + at[j]))->right & AT) ^ at[j];                       \
            if (!moving) break; /* every lane is on a leaf */                               \
        }                                                                                   \
        (void)feature, (void)right, (void)threshold;                                        \
        uint64_t at[FAST_LANES] = {n0, n1, n2, n3, n4, n5, n6, n7};                         \
        for (int j = 0; j < FAST_LANES; j++) leaves[j] = LEAF((const NODE *)(pool + at[j])); \
    }
WALK_ROW(fast32_le_row, SqmlNode32, float, "movss", "ucomiss", "12", "4", "8", "-4", "cmovbl",
         COMPACT_AT32, leaf32)
WALK_ROW(fast32_lt_row, SqmlNode32, float, "movss", "ucomiss", "12", "4", "8", "-4", "cmovbel",
         COMPACT_AT32, leaf32)
WALK_ROW(fast64_le_row, SqmlNode64, double, "movsd", "ucomisd", "16", "8", "12", "-16", "cmovbl",
         COMPACT_AT64, leaf64)
WALK_ROW(fast64_lt_row, SqmlNode64, double, "movsd", "ucomisd", "16", "8", "12", "-16",
         "cmovbel", COMPACT_AT64, leaf64)
#else
WALK_FAST(fast32_le_row, SqmlNode32, float, COMPACT_AT32, 0, leaf32, row)
WALK_FAST(fast32_lt_row, SqmlNode32, float, COMPACT_AT32, 1, leaf32, row)
WALK_FAST(fast64_le_row, SqmlNode64, double, COMPACT_AT64, 0, leaf64, row)
WALK_FAST(fast64_lt_row, SqmlNode64, double, COMPACT_AT64, 1, leaf64, row)
#endif

/* Whether no value of the row is NaN (then no comparison meets a missing value, unless
 * a tree reads zero as missing). */
static int row_is_complete(TreeRow row, uint32_t width) {
    uint32_t nan = 0;
    if (row.f) {
        for (uint32_t i = 0; i < width; i++) nan |= row.f[i] != row.f[i];
    } else {
        for (uint32_t i = 0; i < width; i++) nan |= row.d[i] != row.d[i];
    }
    return !nan;
}

/* One tree's fast walk over FAST_LANES rows (the caller checked that the tree has the
 * compact layout of the rows' kind and that no comparison can meet a missing value). */
static void fast_rows(const SqmlModel *m, const SqmlTree *tree, const TreeRow rows[FAST_LANES],
                      uint32_t leaves[FAST_LANES]) {
    int lt = m->compare == COMPARE_LT;
    uint32_t root[FAST_LANES];
    for (int j = 0; j < FAST_LANES; j++) root[j] = tree->root;
    if (rows[0].f) {
        const float *x[FAST_LANES];
        for (int j = 0; j < FAST_LANES; j++) x[j] = rows[j].f;
        (lt ? fast32_lt : fast32_le)(m->pool, root, x, tree->shallowest, tree->depth, leaves);
    } else {
        const double *x[FAST_LANES];
        for (int j = 0; j < FAST_LANES; j++) x[j] = rows[j].d;
        (lt ? fast64_lt : fast64_le)(m->pool, root, x, tree->shallowest, tree->depth, leaves);
    }
}

/* LANES general walks (walk32_lanes, walk64_lanes) of the compact trees roots over the
 * rows x (the pool's kind is the rows' kind: float32 rows, float32 nodes). */
static void lanes(const SqmlModel *m, const uint32_t root[LANES], const TreeRow *const x[LANES],
                  uint32_t leaves[LANES]) {
    int lt = m->compare == COMPARE_LT;
    if (x[0]->f) {
        const float *rows[LANES];
        for (int j = 0; j < LANES; j++) rows[j] = x[j]->f;
        walk32_lanes(m->pool, root, rows, lt, leaves);
    } else {
        const double *rows[LANES];
        for (int j = 0; j < LANES; j++) rows[j] = x[j]->d;
        walk64_lanes(m->pool, root, rows, lt, leaves);
    }
}

/* Whether trees [t, t + LANES) all have the compact layout. */
static int compact_run(const SqmlModel *m, uint32_t t) {
    if (t + LANES > m->n_trees) return 0;
    for (int j = 0; j < LANES; j++)
        if (!m->trees[t + j].compact) return 0;
    return 1;
}

/* One group's fast walk over a complete row: each lane's leaf in found. */
static void group_leaves(const SqmlModel *m, const SqmlWalkGroup *group, TreeRow row,
                         uint32_t found[FAST_LANES]) {
    int lt = m->compare == COMPARE_LT;
    if (row.f) {
        const float *x[FAST_LANES] = {row.f};
        (lt ? fast32_lt_row : fast32_le_row)(m->pool, group->root, x, group->shallowest,
                                             group->deepest, found);
    } else {
        const double *x[FAST_LANES] = {row.d};
        (lt ? fast64_lt_row : fast64_le_row)(m->pool, group->root, x, group->shallowest,
                                             group->deepest, found);
    }
}

/* The leaf number every tree of the model reaches, in tree order: LANES trees at a time
 * where they have the compact layout. */
static void walk_all(const SqmlModel *m, TreeRow row, uint32_t *leaves) {
    int lt = m->compare == COMPARE_LT;
    uint32_t t = 0;
    if (!m->zero_missing && row.complete) {
        /* every tree, in groups of about the same depth (model.h); a group with a tree of
         * another layout is walked tree by tree */
        uint32_t found[FAST_LANES];
        for (uint32_t g = 0; g < m->n_groups; g++) {
            const SqmlWalkGroup *group = &m->groups[g];
            if (group->compact) {
                group_leaves(m, group, row, found);
                for (uint32_t j = 0; j < group->lanes; j++) leaves[group->tree[j]] = found[j];
            } else {
                for (uint32_t j = 0; j < group->lanes; j++)
                    leaves[group->tree[j]] = walk(m, &m->trees[group->tree[j]], row, lt);
            }
        }
        return;
    }
    const TreeRow *x[LANES];
    for (int j = 0; j < LANES; j++) x[j] = &row;
    while (t < m->n_trees) {
        if (!compact_run(m, t)) {
            leaves[t] = walk(m, &m->trees[t], row, lt);
            t++;
            continue;
        }
        uint32_t root[LANES];
        for (int j = 0; j < LANES; j++) root[j] = m->trees[t + j].root;
        lanes(m, root, x, &leaves[t]);
        t += LANES;
    }
}

/* A forest's vote decided early (model.h's bounds): the groups are walked in turn, their
 * trees' class values summed, and the walk stops once the leading class stays ahead
 * whatever the remaining trees add, by more than the margin that covers the sums'
 * rounding: then no tree left can change the class the full mean picks, and it is
 * returned. Else every leaf is in leaves and -1 is returned (the caller combines them in
 * tree order, exactly). The row must be complete. */
static int64_t early_class(const SqmlModel *m, TreeRow row, uint32_t *leaves, double *sums) {
    uint32_t k = m->outputs, found[FAST_LANES];
    const double *rest = m->bounds, margin = m->bound_margin;
    if (k == 2) { /* the sums in registers */
        double first = 0.0, second = 0.0;
        for (uint32_t g = 0; g < m->n_groups; g++) {
            const SqmlWalkGroup *group = &m->groups[g];
            group_leaves(m, group, row, found);
            for (uint32_t j = 0; j < group->lanes; j++) {
                const double *leaf = group->leaves[j] + (size_t)found[j] * 2;
                leaves[group->tree[j]] = found[j];
                first += leaf[0];
                second += leaf[1];
            }
            rest += 4; /* the groups after g: least and most for each class */
            if (second > first ? first + rest[1] < second + rest[2] - margin
                               : second + rest[3] < first + rest[0] - margin)
                return second > first;
        }
        return -1;
    }
    for (uint32_t c = 0; c < k; c++) sums[c] = 0.0;
    for (uint32_t g = 0; g < m->n_groups; g++) {
        const SqmlWalkGroup *group = &m->groups[g];
        group_leaves(m, group, row, found);
        for (uint32_t j = 0; j < group->lanes; j++) {
            const double *leaf = group->leaves[j] + (size_t)found[j] * k;
            leaves[group->tree[j]] = found[j];
            for (uint32_t c = 0; c < k; c++) sums[c] += leaf[c];
        }
        /* the leader, and whether every other class stays behind it */
        rest += (size_t)k * 2;
        uint32_t lead = first_max(sums, k);
        double floor = sums[lead] + rest[2 * lead] - margin;
        uint32_t c = 0;
        while (c < k && (c == lead || sums[c] + rest[2 * c + 1] < floor)) c++;
        if (c == k) return lead;
    }
    return -1;
}

/* Every tree's leaf for n rows (leaves: n x n_trees, row by row), tree by tree: a tree is
 * walked for every row while it is in the cache, LANES rows at a time. */
static void walk_rows(const SqmlModel *m, const TreeRow *rows, size_t n, uint32_t *leaves) {
    int lt = m->compare == COMPARE_LT;
    uint32_t n_trees = m->n_trees;
    for (uint32_t t = 0; t < n_trees; t++) {
        const SqmlTree *tree = &m->trees[t];
        size_t r = 0;
        for (; tree->compact && r + FAST_LANES <= n; r += FAST_LANES) {
            uint32_t found[FAST_LANES];
            int complete = !m->zero_missing;
            for (int j = 0; j < FAST_LANES; j++) complete &= rows[r + j].complete;
            if (complete) {
                fast_rows(m, tree, &rows[r], found);
            } else {
                uint32_t root[LANES];
                for (int j = 0; j < LANES; j++) root[j] = tree->root;
                for (int half = 0; half < FAST_LANES; half += LANES) {
                    const TreeRow *x[LANES];
                    for (int j = 0; j < LANES; j++) x[j] = &rows[r + half + j];
                    lanes(m, root, x, &found[half]);
                }
            }
            for (int j = 0; j < FAST_LANES; j++) leaves[(r + j) * n_trees + t] = found[j];
        }
        for (; r < n; r++) leaves[r * n_trees + t] = walk(m, tree, rows[r], lt);
    }
}

/* The row as the trees compare it: rounded to float32 into work (scikit-learn's trees,
 * XGBoost), or as it is. */
static TreeRow tree_input(const SqmlModel *m, const double *x, double *work) {
    TreeRow row = {NULL, x, 0};
    if (m->input == INPUT_FLOAT32) {
        float *rounded = (float *)work;
        for (uint32_t i = 0; i < m->width; i++) rounded[i] = (float)x[i];
        row.f = rounded;
    }
    row.complete = row_is_complete(row, m->width);
    return row;
}

/* SAMME's binary decision: scikit-learn negates the first column and sums the row. */
static double samme_binary(const double *scores) { return -scores[0] + scores[1]; }

/* The trees' combined raw output into acc (outputs doubles), from the leaf each tree
 * reached. */
static void trees_combine(const SqmlModel *m, const uint32_t *leaves, double *work, double *acc) {
    uint32_t outputs = m->outputs;
    switch (m->combine) {
    case COMBINE_MEAN:
        if (outputs <= 2) { /* in registers (acc may alias nothing, the compiler cannot tell) */
            double first = 0.0, second = 0.0;
            for (uint32_t t = 0; t < m->n_trees; t++) {
                const SqmlTree *tree = &m->trees[t];
                const double *leaf = tree->leaves + (size_t)leaves[t] * outputs;
                first += leaf[0];
                if (outputs == 2) second += leaf[1];
            }
            acc[0] = first / m->divisor;
            if (outputs == 2) acc[1] = second / m->divisor;
            return;
        }
        for (uint32_t j = 0; j < outputs; j++) acc[j] = 0.0;
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            const double *leaf = tree->leaves + (size_t)leaves[t] * outputs;
            for (uint32_t j = 0; j < outputs; j++) acc[j] += leaf[j];
        }
        for (uint32_t j = 0; j < outputs; j++) acc[j] /= m->divisor;
        return;
    case COMBINE_SUM:
        if (outputs == 1) { /* in a register */
            double sum = m->init[0];
            for (uint32_t t = 0; t < m->n_trees; t++) sum += m->trees[t].leaves[leaves[t]];
            acc[0] = sum;
            return;
        }
        for (uint32_t j = 0; j < outputs; j++) acc[j] = m->init[j];
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            acc[tree->slot] += tree->leaves[leaves[t]];
        }
        return;
    case COMBINE_SAMME:
        for (uint32_t j = 0; j < outputs; j++) acc[j] = 0.0;
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            uint32_t vote = (uint32_t)tree->leaves[leaves[t]];
            double hit = m->samme_votes[2 * t], miss = m->samme_votes[2 * t + 1];
            for (uint32_t j = 0; j < outputs; j++) acc[j] += j == vote ? hit : miss;
        }
        for (uint32_t j = 0; j < outputs; j++) acc[j] /= m->samme_total;
        return;
    default: { /* the weighted median of AdaBoost's regressor */
        uint32_t n = m->n_trees;
        double *predictions = work + m->width;
        uint32_t *order = (uint32_t *)(predictions + n), *spare = order + n;
        for (uint32_t t = 0; t < n; t++) {
            const SqmlTree *tree = &m->trees[t];
            predictions[t] = tree->leaves[leaves[t]];
            order[t] = t;
        }
        /* a stable merge sort of the trees by their prediction */
        for (uint32_t width = 1; width < n; width *= 2) {
            for (uint32_t start = 0; start < n; start += 2 * width) {
                uint32_t middle = start + width < n ? start + width : n;
                uint32_t end = start + 2 * width < n ? start + 2 * width : n;
                uint32_t a = start, b = middle, k = start;
                while (a < middle && b < end)
                    spare[k++] = predictions[order[b]] < predictions[order[a]] ? order[b++]
                                                                               : order[a++];
                while (a < middle) spare[k++] = order[a++];
                while (b < end) spare[k++] = order[b++];
            }
            uint32_t *swap = order;
            order = spare;
            spare = swap;
        }
        double total = 0;
        for (uint32_t t = 0; t < n; t++) total += m->median_weights[order[t]];
        double half = 0.5 * total, cdf = 0;
        uint32_t chosen = order[0];
        for (uint32_t t = 0; t < n; t++) {
            cdf += m->median_weights[order[t]];
            if (cdf >= half) {
                chosen = order[t];
                break;
            }
        }
        acc[0] = predictions[chosen];
        return;
    }
    }
}

/* The accumulators' place in the work space (after the row and a median's scratch). */
static double *trees_acc(const SqmlModel *m, double *work) {
    return work + m->width + (m->combine == COMBINE_MEDIAN ? (size_t)m->n_trees * 3 : 0);
}

static void trees_predict(const SqmlModel *m, const uint32_t *leaves, double *work,
                          SqmlPrediction *out) {
    double *acc = trees_acc(m, work);
    trees_combine(m, leaves, work, acc);
    switch (m->decision) {
    case TREES_VALUE:
        out->value = m->link == LINK_EXP ? exp(acc[0]) : acc[0];
        out->index = 0;
        return;
    case TREES_ARGMAX:
        out->index = first_max(acc, m->outputs);
        return;
    case TREES_POSITIVE:
        out->index = (m->combine == COMBINE_SAMME ? samme_binary(acc) : acc[0]) > 0;
        return;
    default:
        out->index = acc[0] >= 0;
    }
}

static void trees_probabilities(const SqmlModel *m, const uint32_t *leaves, double *work,
                                double *out) {
    double *acc = trees_acc(m, work);
    trees_combine(m, leaves, work, acc);
    uint32_t n = m->n_classes;
    switch (m->probability) {
    case TREES_PROBA_MEAN:
        memcpy(out, acc, sizeof(double) * n);
        return;
    case TREES_PROBA_LOGISTIC:
    case TREES_PROBA_LOGISTIC_2X: {
        double p = expit(m->probability == TREES_PROBA_LOGISTIC ? acc[0] : 2 * acc[0]);
        out[0] = 1 - p;
        out[1] = p;
        return;
    }
    case TREES_PROBA_SOFTMAX:
        memcpy(out, acc, sizeof(double) * n);
        softmax(out, n);
        return;
    default: /* SAMME: softmax of the decision, as _compute_proba_from_decision */
        if (n == 2) {
            double d = samme_binary(acc);
            out[0] = -d / 2;
            out[1] = d / 2;
        } else {
            for (uint32_t k = 0; k < n; k++) out[k] = acc[k] / (double)(n - 1);
        }
        softmax(out, n);
    }
}

/* -- XGBoost and LightGBM (ml/boosters.py documents these semantics) ------------------- */

/* LightGBM's walk: missing types, categorical bitsets, x <= threshold in float64. */
static uint32_t walk_lightgbm(const SqmlTree *tree, const double *x) {
    const SqmlNode *nodes = tree->nodes;
    uint32_t n = 0;
    for (;;) {
        const SqmlNode *node = &nodes[n];
        if (node->feature < 0) return node->left;
        double v = x[node->feature];
        int32_t set = tree->category_set ? tree->category_set[n] : -1;
        if (set >= 0) {
            int left = 0;
            if (v == v && v < 2147483648.0 && trunc(v) >= 0) {
                uint32_t code = (uint32_t)trunc(v), word = code / 32;
                uint32_t low = tree->bounds[set], high = tree->bounds[set + 1];
                left = word < high - low && ((tree->words[low + word] >> (code % 32)) & 1u);
            }
            n = left ? node->left : node->right;
            continue;
        }
        int missing = tree->missing ? tree->missing[n] : MISSING_NAN;
        if (v != v && missing != MISSING_NAN) v = 0.0;
        if ((missing == MISSING_ZERO && v >= -1e-35 && v <= 1e-35) || (missing == MISSING_NAN && v != v))
            n = node->missing_left ? node->left : node->right;
        else
            n = v <= node->threshold ? node->left : node->right;
    }
}

/* The booster's outputs (probabilities for a classifier, as predict_proba gives them:
 * [1 - p, p] for a binary model) into out; n_classes or 1 values. */
static void booster_outputs(const SqmlModel *m, const uint32_t *leaves, double *work, double *out) {
    uint32_t k = m->outputs;
    double *margin = work + m->width;
    if (k == 1 && m->sum32) { /* one output: in a register */
        float sum = (float)m->init[0];
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            float leaf = (float)tree->leaves[leaves[t]];
            float weight = (float)tree->weight;
            sum += weight == 1.0f ? leaf : weight * leaf;
        }
        margin[0] = (double)sum;
    } else if (k == 1) {
        double sum = m->init[0];
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            sum += tree->weight * tree->leaves[leaves[t]];
        }
        margin[0] = sum;
    } else if (m->sum32) { /* XGBoost sums its leaves in float32 */
        float sums[64];
        float *acc = k <= 64 ? sums : (float *)(margin + k);
        for (uint32_t j = 0; j < k; j++) acc[j] = (float)m->init[j];
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            float leaf = (float)tree->leaves[leaves[t]];
            float weight = (float)tree->weight;
            acc[tree->slot] += weight == 1.0f ? leaf : weight * leaf;
        }
        for (uint32_t j = 0; j < k; j++) margin[j] = (double)acc[j];
    } else {
        for (uint32_t j = 0; j < k; j++) margin[j] = m->init[j];
        for (uint32_t t = 0; t < m->n_trees; t++) {
            const SqmlTree *tree = &m->trees[t];
            margin[tree->slot] += tree->weight * tree->leaves[leaves[t]];
        }
    }
    if (m->average)
        for (uint32_t j = 0; j < k; j++) margin[j] /= m->iterations_used;
    double *output = k == 1 && m->n_classes == 2 ? out + 1 : out;
    switch (m->booster_link) {
    case LINK_B_SOFTMAX:
        memcpy(output, margin, sizeof(double) * k);
        softmax(output, k);
        break;
    default:
        for (uint32_t j = 0; j < k; j++) {
            double v = margin[j];
            switch (m->booster_link) {
            case LINK_B_SIGMOID:
            case LINK_B_SIGMOID_EACH:
                v = 1.0 / (1.0 + exp(-m->sigmoid_scale * v));
                break;
            case LINK_B_EXP:
                v = exp(v);
                break;
            case LINK_B_HINGE:
                v = v > 0 ? 1.0 : 0.0;
                break;
            case LINK_B_SIGNED_SQUARE:
                v = (v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0) * v * v;
                break;
            case LINK_B_SOFTPLUS:
                v = log1p(exp(v));
                break;
            default:
                break;
            }
            output[j] = v;
        }
    }
    if (k == 1 && m->n_classes == 2) out[0] = 1.0 - out[1];
}

static void booster_predict(const SqmlModel *m, const uint32_t *leaves, double *work,
                            SqmlPrediction *out) {
    double *outputs = work + m->width + m->outputs * 2 + 1;
    booster_outputs(m, leaves, work, outputs);
    if (m->n_classes == 0) {
        out->value = outputs[0];
        out->index = 0;
    } else {
        out->index = first_max(outputs, m->n_classes);
    }
}

/* The leaves of every tree for a preprocessed row (in the work space). */
static const uint32_t *row_leaves(const SqmlModel *m, const double *x, double *work) {
    uint32_t *leaves = (uint32_t *)(work + m->leaves_at);
    walk_all(m, tree_input(m, x, work), leaves);
    return leaves;
}

int sqml_model_predict(const SqmlModel *m, double *x, double *work, SqmlPrediction *out) {
    preprocess(m, x);
    out->value = 0;
    out->index = 0;
    switch (m->family) {
    case FAMILY_LINEAR:
        return linear_predict(m, x, work, out);
    case FAMILY_CENTROIDS:
        return centroid_predict(m, x, work, out);
    default: {
        TreeRow row = tree_input(m, x, work);
        uint32_t *leaves = (uint32_t *)(work + m->leaves_at);
        if (m->bounds && row.complete) { /* a forest's vote, perhaps decided early */
            int64_t decided = early_class(m, row, leaves, trees_acc(m, work) + m->outputs);
            if (decided >= 0) out->index = (uint32_t)decided;
            else trees_predict(m, leaves, work, out);
            return SQML_SCORED;
        }
        walk_all(m, row, leaves);
        sqml_model_predict_leaves(m, leaves, work, out);
        return SQML_SCORED;
    }
    }
}

void sqml_model_probabilities(const SqmlModel *m, double *x, double *work, double *out) {
    preprocess(m, x);
    if (m->family == FAMILY_LINEAR) linear_probabilities(m, x, work, out);
    else sqml_model_probabilities_leaves(m, row_leaves(m, x, work), work, out);
}

int sqml_model_has_trees(const SqmlModel *m) {
    return m->family == FAMILY_TREES || m->family == FAMILY_BOOSTER;
}

uint32_t sqml_model_n_trees(const SqmlModel *m) { return sqml_model_has_trees(m) ? m->n_trees : 0; }

void sqml_model_leaves_rows(const SqmlModel *m, double *x, size_t n, float *rounded,
                            uint32_t *leaves) {
    if (n == 0) return;
    TreeRow small[64];
    TreeRow *rows = n <= 64 ? small : malloc(sizeof(TreeRow) * n);
    if (rows == NULL) { /* no memory for the block: one row at a time */
        for (size_t r = 0; r < n; r++) {
            double *row = x + r * m->width;
            preprocess(m, row);
            TreeRow one = {NULL, row, 0};
            if (m->input == INPUT_FLOAT32) {
                for (uint32_t i = 0; i < m->width; i++) rounded[r * m->width + i] = (float)row[i];
                one.f = rounded + r * m->width;
            }
            one.complete = row_is_complete(one, m->width);
            walk_all(m, one, leaves + r * m->n_trees);
        }
        return;
    }
    for (size_t r = 0; r < n; r++) {
        double *row = x + r * m->width;
        preprocess(m, row);
        rows[r].d = row;
        rows[r].f = NULL;
        if (m->input == INPUT_FLOAT32) {
            float *f = rounded + r * m->width;
            for (uint32_t i = 0; i < m->width; i++) f[i] = (float)row[i];
            rows[r].f = f;
        }
        rows[r].complete = row_is_complete(rows[r], m->width);
    }
    walk_rows(m, rows, n, leaves);
    if (rows != small) free(rows);
}

void sqml_model_predict_leaves(const SqmlModel *m, const uint32_t *leaves, double *work,
                               SqmlPrediction *out) {
    out->value = 0;
    out->index = 0;
    if (m->family == FAMILY_BOOSTER) booster_predict(m, leaves, work, out);
    else trees_predict(m, leaves, work, out);
}

void sqml_model_probabilities_leaves(const SqmlModel *m, const uint32_t *leaves, double *work,
                                     double *out) {
    if (m->family == FAMILY_BOOSTER) booster_outputs(m, leaves, work, out);
    else trees_probabilities(m, leaves, work, out);
}
