/* The native model format (see sqlite_ml/ml/native_format.py for the layout), read and
 * validated. A blob from a database is untrusted: every count is checked against the
 * bytes present before anything is allocated, every index before anything follows it,
 * and the first failed check refuses the whole model with a message naming it. */
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define MAGIC "SQMLNATV"
#define VERSION 1u
#define END_MARKER 0x454D5153u
/* Bounds far above any model sqlite-ml trains, far below what could exhaust memory
 * before the byte counts refuse it. */
#define MAX_FEATURES (1u << 20)
#define MAX_WIDTH (1u << 22)
#define MAX_CATEGORIES (1u << 22)
#define MAX_OUTPUTS (1u << 16)
#define MAX_CLASSES (1u << 20)
#define MAX_TREES (1u << 22)
#define MAX_NODES (1u << 28)

typedef struct {
    const unsigned char *p;
    size_t left;
    char *error;
    SqmlModel *model;
} Reader;

static int fail(Reader *r, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(r->error, SQML_ERROR_SIZE, format, args);
    va_end(args);
    return 0;
}

static void *model_alloc(SqmlModel *model, size_t size) {
    if (model->n_allocations == model->allocations_capacity) {
        size_t capacity = model->allocations_capacity ? model->allocations_capacity * 2 : 64;
        void **grown = realloc(model->allocations, capacity * sizeof(void *));
        if (grown == NULL) return NULL;
        model->allocations = grown;
        model->allocations_capacity = capacity;
    }
    void *memory = calloc(1, size ? size : 1);
    if (memory != NULL) model->allocations[model->n_allocations++] = memory;
    return memory;
}

void sqml_model_free(SqmlModel *model) {
    if (model == NULL) return;
    for (size_t i = 0; i < model->n_allocations; i++) free(model->allocations[i]);
    free(model->allocations);
    free(model->pool);
    free(model);
}

static int need(Reader *r, uint64_t bytes, const char *what) {
    if (bytes > r->left) return fail(r, "the data ends inside %s", what);
    return 1;
}

static int read_u32(Reader *r, uint32_t *out, const char *what) {
    if (!need(r, 4, what)) return 0;
    *out = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
           (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return 1;
}

static int read_f64(Reader *r, double *out, const char *what) {
    if (!need(r, 8, what)) return 0;
    memcpy(out, r->p, 8); /* little-endian hosts only: checked at load */
    r->p += 8;
    r->left -= 8;
    return 1;
}

static void *take(Reader *r, uint64_t count, size_t item, const char *what) {
    if (count > r->left / item) {
        fail(r, "the data ends inside %s (%llu items declared)", what,
             (unsigned long long)count);
        return NULL;
    }
    void *out = model_alloc(r->model, (size_t)count * item);
    if (out == NULL) {
        fail(r, "out of memory reading %s", what);
        return NULL;
    }
    memcpy(out, r->p, (size_t)count * item);
    r->p += count * item;
    r->left -= count * item;
    return out;
}

static double *read_f64s(Reader *r, uint64_t count, const char *what) {
    return (double *)take(r, count, 8, what);
}

static uint32_t *read_u32s(Reader *r, uint64_t count, const char *what) {
    return (uint32_t *)take(r, count, 4, what);
}

static int all_finite(const double *values, uint64_t count) {
    for (uint64_t i = 0; i < count; i++)
        if (!isfinite(values[i])) return 0;
    return 1;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t code;
        if ((c & 0xE0) == 0xC0) extra = 1, code = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) extra = 2, code = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) extra = 3, code = c & 0x07;
        else return 0;
        if (i + extra >= n) return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            code = code << 6 | (s[i + k] & 0x3F);
        }
        if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) ||
            (extra == 3 && code < 0x10000) || code > 0x10FFFF ||
            (code >= 0xD800 && code <= 0xDFFF))
            return 0;
        i += extra + 1;
    }
    return 1;
}

static int read_text(Reader *r, SqmlText *out, const char *what) {
    uint32_t size;
    if (!read_u32(r, &size, what)) return 0;
    if (!need(r, size, what)) return 0;
    if (!valid_utf8(r->p, size)) return fail(r, "%s is not valid UTF-8", what);
    char *copy = model_alloc(r->model, (size_t)size + 1);
    if (copy == NULL) return fail(r, "out of memory reading %s", what);
    memcpy(copy, r->p, size);
    copy[size] = '\0';
    r->p += size;
    r->left -= size;
    out->text = copy;
    out->size = size;
    return 1;
}

static uint32_t hash_text(const char *text, size_t size) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++) h = (h ^ (unsigned char)text[i]) * 16777619u;
    return h;
}

/* A feature's category table as an open-addressing index; 0 when a category repeats. */
static int index_categories(Reader *r, SqmlFeature *feature) {
    uint32_t n_slots = 8;
    while (n_slots < feature->n_categories * 2u) n_slots *= 2;
    feature->slots = model_alloc(r->model, (size_t)n_slots * sizeof(uint32_t));
    if (feature->slots == NULL) return fail(r, "out of memory indexing categories");
    feature->n_slots = n_slots;
    for (uint32_t c = 0; c < feature->n_categories; c++) {
        const SqmlText *text = &feature->categories[c];
        uint32_t slot = hash_text(text->text, text->size) & (n_slots - 1);
        while (feature->slots[slot]) {
            const SqmlText *other = &feature->categories[feature->slots[slot] - 1];
            if (other->size == text->size && memcmp(other->text, text->text, text->size) == 0)
                return fail(r, "feature '%s' lists category '%s' twice", feature->name.text,
                            text->text);
            slot = (slot + 1) & (n_slots - 1);
        }
        feature->slots[slot] = c + 1;
    }
    return 1;
}

int64_t sqml_feature_category(const SqmlFeature *feature, const char *text, size_t size) {
    if (feature->n_slots == 0) return -1;
    uint32_t slot = hash_text(text, size) & (feature->n_slots - 1);
    while (feature->slots[slot]) {
        const SqmlText *candidate = &feature->categories[feature->slots[slot] - 1];
        if (candidate->size == size && memcmp(candidate->text, text, size) == 0)
            return (int64_t)feature->slots[slot] - 1;
        slot = (slot + 1) & (feature->n_slots - 1);
    }
    return -1;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The first text that repeats in texts, NULL when none does, (SqmlText *)-1 when out of
 * memory. */
static const SqmlText *first_repeat(SqmlModel *m, const SqmlText *texts, uint32_t count) {
    uint32_t n_slots = 8;
    while (n_slots < count * 2u) n_slots *= 2;
    uint32_t *slots = model_alloc(m, (size_t)n_slots * sizeof(uint32_t));
    if (slots == NULL) return (const SqmlText *)-1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t slot = hash_text(texts[i].text, texts[i].size) & (n_slots - 1);
        while (slots[slot]) {
            const SqmlText *other = &texts[slots[slot] - 1];
            if (other->size == texts[i].size && memcmp(other->text, texts[i].text, other->size) == 0)
                return &texts[i];
            slot = (slot + 1) & (n_slots - 1);
        }
        slots[slot] = i + 1;
    }
    return NULL;
}

static int read_feature(Reader *r, SqmlFeature *feature, uint32_t index) {
    char what[64];
    snprintf(what, sizeof what, "the name of feature %u", index);
    if (!read_text(r, &feature->name, what)) return 0;
    const char *name = feature->name.text;
    if (!read_u32(r, &feature->kind, "a feature's kind") ||
        !read_u32(r, &feature->required, "a feature's required flag") ||
        !read_u32(r, &feature->n_categories, "a feature's category count"))
        return 0;
    if (feature->kind > SQML_FEATURE_TARGET)
        return fail(r, "feature '%s' has unknown kind %u", name, feature->kind);
    if (feature->required > 1) return fail(r, "feature '%s' has a malformed required flag", name);
    if (feature->kind == SQML_FEATURE_NUMERIC && feature->n_categories != 0)
        return fail(r, "numeric feature '%s' declares categories", name);
    if (feature->n_categories > MAX_CATEGORIES || feature->n_categories > r->left / 4)
        return fail(r, "feature '%s' declares %u categories, more than the data holds", name,
                    feature->n_categories);
    feature->categories =
        model_alloc(r->model, (size_t)feature->n_categories * sizeof(SqmlText));
    if (feature->categories == NULL) return fail(r, "out of memory reading categories");
    for (uint32_t c = 0; c < feature->n_categories; c++) {
        snprintf(what, sizeof what, "category %u of a feature", c);
        if (!read_text(r, &feature->categories[c], what)) return 0;
    }
    feature->aliases = read_f64s(r, feature->n_categories, "the numeric aliases of categories");
    if (feature->aliases == NULL) return 0;
    for (uint32_t c = 0; c < feature->n_categories; c++) {
        double alias = feature->aliases[c];
        if (isnan(alias)) continue;
        /* An alias is the number the category's text reads as, never anything else. */
        char *end;
        double parsed = strtod(feature->categories[c].text, &end);
        if (*end != '\0' || parsed != alias || alias == floor(alias))
            return fail(r, "feature '%s': category '%s' has an inconsistent numeric alias",
                        name, feature->categories[c].text);
    }
    if (!index_categories(r, feature)) return 0;
    feature->outputs = 1;
    if (feature->kind == SQML_FEATURE_TARGET) {
        if (!read_u32(r, &feature->outputs, "a target encoding's output count")) return 0;
        if (feature->outputs < 1 || feature->outputs > MAX_OUTPUTS)
            return fail(r, "feature '%s' has %u target encoding outputs", name,
                        feature->outputs);
        uint64_t count = (uint64_t)feature->n_categories * feature->outputs;
        feature->target = read_f64s(r, count, "a target encoding table");
        if (feature->target == NULL) return 0;
        if (!all_finite(feature->target, count))
            return fail(r, "feature '%s' has a target encoding that is not finite", name);
    }
    if (feature->kind == SQML_FEATURE_ONE_HOT) feature->width = feature->n_categories;
    else if (feature->kind == SQML_FEATURE_TARGET) feature->width = feature->outputs;
    else feature->width = 1;
    return 1;
}

/* The feature names' index (names are known to be unique). */
static int index_names(Reader *r) {
    SqmlModel *m = r->model;
    uint32_t n_slots = 8;
    while (n_slots < m->n_features * 2u) n_slots *= 2;
    m->name_slots = model_alloc(m, (size_t)n_slots * sizeof(uint32_t));
    if (m->name_slots == NULL) return fail(r, "out of memory indexing names");
    m->n_name_slots = n_slots;
    for (uint32_t i = 0; i < m->n_features; i++) {
        const SqmlText *name = &m->features[i].name;
        uint32_t slot = hash_text(name->text, name->size) & (n_slots - 1);
        while (m->name_slots[slot]) slot = (slot + 1) & (n_slots - 1);
        m->name_slots[slot] = i + 1;
    }
    return 1;
}

int64_t sqml_model_feature_named(const SqmlModel *m, const char *name, size_t size) {
    uint32_t slot = hash_text(name, size) & (m->n_name_slots - 1);
    while (m->name_slots[slot]) {
        const SqmlText *candidate = &m->features[m->name_slots[slot] - 1].name;
        if (candidate->size == size && memcmp(candidate->text, name, size) == 0)
            return (int64_t)m->name_slots[slot] - 1;
        slot = (slot + 1) & (m->n_name_slots - 1);
    }
    return -1;
}

static int read_schema(Reader *r) {
    SqmlModel *m = r->model;
    uint32_t label_kind;
    if (!read_u32(r, &label_kind, "the label kind")) return 0;
    if (label_kind > SQML_LABELS_CLUSTER) return fail(r, "unknown label kind %u", label_kind);
    m->label_kind = (int)label_kind;
    if (!read_u32(r, &m->n_features, "the feature count")) return 0;
    if (m->n_features < 1 || m->n_features > MAX_FEATURES || m->n_features > r->left / 16)
        return fail(r, "the model declares %u features, not what the data holds",
                    m->n_features);
    m->features = model_alloc(m, (size_t)m->n_features * sizeof(SqmlFeature));
    if (m->features == NULL) return fail(r, "out of memory reading features");
    uint64_t offset = 0;
    for (uint32_t i = 0; i < m->n_features; i++) {
        if (!read_feature(r, &m->features[i], i)) return 0;
        m->features[i].offset = (uint32_t)offset;
        offset += m->features[i].width;
        if (offset > MAX_WIDTH) return fail(r, "the features encode to too many columns");
    }
    /* Names are unique, as a feature schema requires. */
    SqmlText *names = model_alloc(m, (size_t)m->n_features * sizeof(SqmlText));
    if (names == NULL) return fail(r, "out of memory checking names");
    for (uint32_t i = 0; i < m->n_features; i++) names[i] = m->features[i].name;
    const SqmlText *repeated = first_repeat(m, names, m->n_features);
    if (repeated == (const SqmlText *)-1) return fail(r, "out of memory checking names");
    if (repeated) return fail(r, "feature name '%s' repeats", repeated->text);
    if (!index_names(r)) return 0;
    if (!read_u32(r, &m->width, "the input width")) return 0;
    if (m->width != offset)
        return fail(r, "the input width %u is not the %llu columns the features encode to",
                    m->width, (unsigned long long)offset);
    if (m->width < 1) return fail(r, "the model has no inputs");
    m->fill = read_f64s(r, m->width, "the imputer's values");
    m->center = m->fill ? read_f64s(r, m->width, "the scaler's centres") : NULL;
    m->scale = m->center ? read_f64s(r, m->width, "the scaler's divisors") : NULL;
    if (m->scale == NULL) return 0;
    if (!all_finite(m->fill, m->width) || !all_finite(m->center, m->width) ||
        !all_finite(m->scale, m->width))
        return fail(r, "the imputer or scaler holds a value that is not finite");
    for (uint32_t i = 0; i < m->width; i++)
        if (m->scale[i] == 0) return fail(r, "the scaler divides column %u by zero", i);
    return 1;
}

static int read_labels(Reader *r) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &m->n_classes, "the class count")) return 0;
    if (m->n_classes > MAX_CLASSES || m->n_classes > r->left / 4 + 1)
        return fail(r, "the model declares %u classes, more than the data holds", m->n_classes);
    if (m->label_kind == SQML_LABELS_CLUSTER) {
        if (m->n_classes < 1) return fail(r, "a clustering model without clusters");
        return 1;
    }
    if (m->n_classes == 1) return fail(r, "a classifier with a single class");
    if (m->label_kind == SQML_LABELS_TEXT) {
        if (m->n_classes == 0) return fail(r, "a regression model with text labels");
        m->text_labels = model_alloc(m, (size_t)m->n_classes * sizeof(SqmlText));
        if (m->text_labels == NULL) return fail(r, "out of memory reading labels");
        for (uint32_t i = 0; i < m->n_classes; i++)
            if (!read_text(r, &m->text_labels[i], "a class label")) return 0;
        const SqmlText *repeated = first_repeat(m, m->text_labels, m->n_classes);
        if (repeated == (const SqmlText *)-1) return fail(r, "out of memory checking labels");
        if (repeated) return fail(r, "class label '%s' repeats", repeated->text);
        return 1;
    }
    m->number_labels = read_f64s(r, m->n_classes, "the class labels");
    if (m->number_labels == NULL) return 0;
    if (!all_finite(m->number_labels, m->n_classes))
        return fail(r, "a class label is not a finite number");
    double *sorted = model_alloc(m, (size_t)m->n_classes * sizeof(double));
    if (sorted == NULL) return fail(r, "out of memory checking labels");
    memcpy(sorted, m->number_labels, (size_t)m->n_classes * sizeof(double));
    qsort(sorted, m->n_classes, sizeof(double), compare_doubles);
    for (uint32_t i = 1; i < m->n_classes; i++)
        if (sorted[i] == sorted[i - 1]) return fail(r, "class label %g repeats", sorted[i]);
    return 1;
}

static int read_linear(Reader *r) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &m->decision, "the linear decision") ||
        !read_u32(r, &m->outputs, "the linear output count") ||
        !read_u32(r, &m->probability, "the linear probabilities"))
        return 0;
    if (m->label_kind == SQML_LABELS_CLUSTER) return fail(r, "a linear model for clusters");
    if (m->outputs < 1 || m->outputs > MAX_OUTPUTS)
        return fail(r, "a linear model with %u outputs", m->outputs);
    switch (m->decision) {
    case LINEAR_VALUE:
        if (m->n_classes != 0 || m->outputs != 1 || m->probability != LINEAR_PROBA_NONE)
            return fail(r, "a linear regression must have one output, no classes");
        break;
    case LINEAR_BINARY:
        if (m->n_classes != 2 || m->outputs != 1)
            return fail(r, "a binary linear classifier must have one output, two classes");
        break;
    case LINEAR_ARGMAX:
        if (m->n_classes < 3 || m->outputs != m->n_classes)
            return fail(r, "a multiclass linear classifier needs one output per class");
        break;
    default:
        return fail(r, "unknown linear decision %u", m->decision);
    }
    if (m->probability > LINEAR_PROBA_SOFTMAX)
        return fail(r, "unknown linear probabilities %u", m->probability);
    uint64_t count = (uint64_t)m->outputs * m->width;
    m->coef = read_f64s(r, count, "the coefficients");
    m->intercept = m->coef ? read_f64s(r, m->outputs, "the intercepts") : NULL;
    if (m->intercept == NULL) return 0;
    if (!all_finite(m->coef, count) || !all_finite(m->intercept, m->outputs))
        return fail(r, "a coefficient is not a finite number");
    m->work_size = (size_t)m->outputs * 2 + m->n_classes;
    return 1;
}

static int read_centroids(Reader *r) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &m->k, "the cluster count")) return 0;
    if (m->label_kind != SQML_LABELS_CLUSTER || m->k != m->n_classes)
        return fail(r, "%u centres for %u clusters", m->k, m->n_classes);
    uint64_t count = (uint64_t)m->k * m->width;
    m->centers = read_f64s(r, count, "the cluster centres");
    m->norms = m->centers ? read_f64s(r, m->k, "the centres' squared norms") : NULL;
    if (m->norms == NULL) return 0;
    if (!all_finite(m->centers, count) || !all_finite(m->norms, m->k))
        return fail(r, "a cluster centre is not finite");
    m->work_size = (size_t)m->k * 2;
    return 1;
}

/* The decision, probabilities and link must fit the way the trees are combined. */
static int check_tree_settings(Reader *r) {
    SqmlModel *m = r->model;
    int classifier = m->n_classes >= 2 && m->label_kind != SQML_LABELS_CLUSTER;
    if (m->label_kind == SQML_LABELS_CLUSTER) return fail(r, "trees for clusters");
    if (m->input > INPUT_FLOAT32 || m->compare > COMPARE_LT || m->link > LINK_EXP)
        return fail(r, "unknown tree input, comparison or link");
    if (m->combine < COMBINE_MEAN || m->combine > COMBINE_MEDIAN)
        return fail(r, "unknown way %u of combining trees", m->combine);
    if (m->outputs < 1 || m->outputs > MAX_OUTPUTS)
        return fail(r, "trees with %u outputs", m->outputs);
    if (!isfinite(m->divisor) || m->divisor <= 0) return fail(r, "the trees' divisor is not positive");
    int ok;
    switch (m->decision) {
    case TREES_VALUE:
        ok = !classifier && m->outputs == 1 && m->n_classes == 0;
        break;
    case TREES_ARGMAX:
        ok = classifier && m->outputs == m->n_classes && m->combine != COMBINE_MEDIAN;
        break;
    case TREES_POSITIVE:
    case TREES_NOT_NEGATIVE:
        ok = m->n_classes == 2 &&
             ((m->combine == COMBINE_SUM && m->outputs == 1) ||
              (m->combine == COMBINE_SAMME && m->outputs == 2));
        break;
    default:
        ok = 0;
    }
    if (!ok) return fail(r, "tree decision %u does not fit %u outputs and %u classes",
                         m->decision, m->outputs, m->n_classes);
    switch (m->probability) {
    case TREES_PROBA_NONE:
        ok = 1;
        break;
    case TREES_PROBA_MEAN:
        ok = classifier && m->combine == COMBINE_MEAN;
        break;
    case TREES_PROBA_LOGISTIC:
    case TREES_PROBA_LOGISTIC_2X:
        ok = m->n_classes == 2 && m->combine == COMBINE_SUM && m->outputs == 1;
        break;
    case TREES_PROBA_SOFTMAX:
        ok = m->n_classes >= 3 && m->combine == COMBINE_SUM && m->outputs == m->n_classes;
        break;
    case TREES_PROBA_SAMME:
        ok = m->combine == COMBINE_SAMME;
        break;
    default:
        ok = 0;
    }
    if (!ok) return fail(r, "tree probabilities %u do not fit the model", m->probability);
    if (m->link == LINK_EXP && m->decision != TREES_VALUE)
        return fail(r, "an exponential link on a classifier");
    if (m->combine == COMBINE_SAMME && m->outputs != m->n_classes)
        return fail(r, "a vote needs one output per class");
    if (m->combine == COMBINE_MEDIAN && m->decision != TREES_VALUE)
        return fail(r, "a weighted median of classes");
    return 1;
}

/* A tree's node arrays (features, thresholds, children, default directions), checked and
 * turned into nodes: features index the row (through mapped, a bagged tree's subset),
 * children lie strictly after their node (every walk moves forward, so it ends), leaves
 * number their values. n_nodes and n_leaves are read already. */
static int read_nodes(Reader *r, SqmlTree *tree, uint32_t index, uint32_t limit,
                      const uint32_t *mapped) {
    SqmlModel *m = r->model;
    /* 21 bytes per node at least (feature, threshold, children, direction). */
    if (tree->n_nodes < 1 || tree->n_nodes > MAX_NODES || tree->n_nodes > r->left / 21)
        return fail(r, "tree %u declares %u nodes, not what the data holds", index,
                    tree->n_nodes);
    if (tree->n_leaves < 1 || tree->n_leaves > tree->n_nodes)
        return fail(r, "tree %u declares %u leaves for %u nodes", index, tree->n_leaves,
                    tree->n_nodes);
    uint32_t n = tree->n_nodes;
    int32_t *features = (int32_t *)read_u32s(r, n, "a tree's features");
    double *thresholds = features ? read_f64s(r, n, "a tree's thresholds") : NULL;
    uint32_t *left = thresholds ? read_u32s(r, n, "a tree's left children") : NULL;
    uint32_t *right = left ? read_u32s(r, n, "a tree's right children") : NULL;
    unsigned char *missing = right ? take(r, n, 1, "a tree's missing-value directions") : NULL;
    if (missing == NULL) return 0;
    tree->nodes = model_alloc(m, (size_t)n * sizeof(SqmlNode));
    /* a node has one parent at most: a tree, not a graph of shared branches */
    unsigned char *has_parent = model_alloc(m, n);
    if (tree->nodes == NULL || has_parent == NULL) return fail(r, "out of memory reading a tree");
    uint32_t leaves = 0;
    for (uint32_t i = 0; i < n; i++) {
        SqmlNode *node = &tree->nodes[i];
        if (features[i] == -1) {
            if (left[i] >= tree->n_leaves)
                return fail(r, "tree %u, node %u: leaf %u of %u", index, i, left[i],
                            tree->n_leaves);
            node->feature = -1;
            node->left = left[i];
            leaves++;
            continue;
        }
        if (features[i] < 0 || (uint32_t)features[i] >= limit)
            return fail(r, "tree %u, node %u: feature %d is not one of the %u inputs", index, i,
                        features[i], limit);
        if (left[i] <= i || left[i] >= n || right[i] <= i || right[i] >= n)
            return fail(r, "tree %u, node %u: children %u and %u are not after the node "
                           "and inside the tree", index, i, left[i], right[i]);
        if (!isfinite(thresholds[i]))
            return fail(r, "tree %u, node %u: the threshold is not a finite number", index, i);
        if (missing[i] > 1)
            return fail(r, "tree %u, node %u: malformed missing-value direction", index, i);
        if (left[i] == right[i] || has_parent[left[i]] || has_parent[right[i]])
            return fail(r, "tree %u, node %u: a child has another parent too", index, i);
        has_parent[left[i]] = has_parent[right[i]] = 1;
        node->feature = mapped ? (int32_t)mapped[features[i]] : features[i];
        node->left = left[i];
        node->right = right[i];
        node->missing_left = missing[i];
        node->threshold = thresholds[i];
    }
    if (tree->nodes[0].feature == -1 && n != 1)
        return fail(r, "tree %u is a single leaf with %u nodes", index, n);
    if (leaves != tree->n_leaves)
        return fail(r, "tree %u has %u leaves, not the %u it declares", index, leaves,
                    tree->n_leaves);
    return 1;
}

/* The largest float32 at or below t: x <= t and x <= below(t) agree for every float32 x
 * (scikit-learn compares float32 inputs with float64 thresholds). */
static float float_at_or_below(double t) {
    float f = (float)t;
    if ((double)f > t) f = nextafterf(f, -INFINITY);
    return f;
}

/* The tree's walk layout (see model.h), from its validated nodes: renumbered in preorder
 * (nodes no walk reaches are left out). float32: thresholds for float32 inputs, rounded
 * down for x <= t (exact when x < t compares float32 thresholds, XGBoost's). */
static int compact(Reader *r, SqmlTree *tree, int float32, int less_than) {
    uint32_t n = tree->n_nodes, next = 0;
    /* Trees the general walk serves instead: more leaves than a NaN payload numbers, and
     * LightGBM's missing types in float32 nodes (whose flags have no room for them). */
    if (tree->n_leaves > COMPACT_MAX_LEAVES) return 1;
    for (uint32_t i = 0; float32 && tree->missing && i < n; i++)
        if (tree->nodes[i].feature >= 0 && tree->missing[i] != MISSING_NAN) return 1;
    uint32_t *position = malloc(sizeof(uint32_t) * n), *stack = malloc(sizeof(uint32_t) * n);
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    int ok = 1;
    if (!position || !stack || !order) {
        ok = fail(r, "out of memory laying a tree out");
        goto done;
    }
    /* level: each node's depth, kept in position until the node is placed */
    size_t depth = 0;
    uint32_t deepest = 0, shallowest = UINT32_MAX;
    stack[depth++] = 0;
    position[0] = 0;
    while (depth) { /* children after their node: each node is pushed once at most */
        uint32_t i = stack[--depth];
        uint32_t level = position[i];
        position[i] = next;
        order[next++] = i;
        const SqmlNode *node = &tree->nodes[i];
        if (node->feature >= 0) {
            position[node->right] = position[node->left] = level + 1;
            stack[depth++] = node->right;
            stack[depth++] = node->left;
        } else {
            if (level > deepest) deepest = level;
            if (level < shallowest) shallowest = level;
        }
    }
    /* the tree's place in the model's pool (model.h): byte offsets in uint32 */
    SqmlModel *m = r->model;
    size_t size = float32 ? sizeof(SqmlNode32) : sizeof(SqmlNode64);
    size_t base = m->pool_size, bytes = (size_t)next * size;
    if (bytes > COMPACT_MAX_POOL - base) goto done; /* a pool this large: the general walk */
    if (base + bytes > m->pool_capacity) {
        size_t capacity = m->pool_capacity ? m->pool_capacity : 4096;
        while (capacity < base + bytes) capacity *= 2;
        unsigned char *grown = realloc(m->pool, capacity);
        if (grown == NULL) {
            ok = fail(r, "out of memory laying a tree out");
            goto done;
        }
        m->pool = grown;
        m->pool_capacity = capacity;
    }
    unsigned char *out = m->pool + base;
    for (uint32_t k = 0; k < next; k++) {
        const SqmlNode *node = &tree->nodes[order[k]];
        uint32_t at = (uint32_t)(base + (size_t)k * size);
        if (node->feature < 0) { /* a leaf: a loop onto itself (model.h) */
            uint32_t leaf = node->left;
            if (float32) {
                SqmlNode32 *c = (SqmlNode32 *)out + k;
                uint32_t bits = 0x7fc00000u | leaf;
                memcpy(&c->threshold, &bits, sizeof bits);
                c->feature = 0;
                c->right = at;
            } else {
                SqmlNode64 *c = (SqmlNode64 *)out + k;
                uint64_t bits = 0x7ff8000000000000ull | leaf;
                memcpy(&c->threshold, &bits, sizeof bits);
                c->feature = 0;
                c->right = at;
            }
            continue;
        }
        int missing = tree->missing ? tree->missing[order[k]] : MISSING_NAN;
        if (missing == MISSING_ZERO) m->zero_missing = 1;
        uint32_t flags = (node->missing_left ? COMPACT_MISSING_LEFT : 0) |
                         (missing != MISSING_NAN ? COMPACT_NAN_AS_ZERO : 0) |
                         (missing == MISSING_ZERO ? COMPACT_ZERO_MISSING : 0);
        uint32_t right = (uint32_t)(base + (size_t)position[node->right] * size) | flags;
        uint32_t feature = (uint32_t)node->feature * (uint32_t)(float32 ? sizeof(float) : sizeof(double));
        if (float32) {
            SqmlNode32 *c = (SqmlNode32 *)out + k;
            c->threshold = less_than ? (float)node->threshold : float_at_or_below(node->threshold);
            c->feature = feature;
            c->right = right;
        } else {
            SqmlNode64 *c = (SqmlNode64 *)out + k;
            c->threshold = node->threshold;
            c->feature = feature;
            c->right = right;
        }
    }
    m->pool_size = base + bytes;
    tree->compact = 1;
    tree->root = (uint32_t)base;
    tree->depth = deepest;
    tree->shallowest = shallowest;
done:
    free(position);
    free(stack);
    free(order);
    return ok;
}

static int read_tree(Reader *r, SqmlTree *tree, uint32_t index) {
    SqmlModel *m = r->model;
    uint32_t n_mapped;
    if (!read_u32(r, &tree->slot, "a tree's output slot") ||
        !read_u32(r, &n_mapped, "a tree's feature subset"))
        return 0;
    if (tree->slot >= m->outputs)
        return fail(r, "tree %u adds to output %u of %u", index, tree->slot, m->outputs);
    if (m->combine != COMBINE_SUM && tree->slot != 0)
        return fail(r, "tree %u names an output slot the ensemble does not use", index);
    if (n_mapped > m->width) return fail(r, "tree %u maps more features than the model has", index);
    uint32_t *mapped = read_u32s(r, n_mapped, "a tree's feature subset");
    if (mapped == NULL) return 0;
    for (uint32_t i = 0; i < n_mapped; i++)
        if (mapped[i] >= m->width)
            return fail(r, "tree %u maps to feature %u of %u", index, mapped[i], m->width);
    if (!read_u32(r, &tree->n_nodes, "a tree's node count") ||
        !read_u32(r, &tree->leaf_width, "a tree's leaf width") ||
        !read_u32(r, &tree->n_leaves, "a tree's leaf count"))
        return 0;
    uint32_t expected_width = m->combine == COMBINE_MEAN ? m->outputs : 1;
    if (tree->leaf_width != expected_width)
        return fail(r, "tree %u has %u values per leaf, not %u", index, tree->leaf_width,
                    expected_width);
    if (!read_nodes(r, tree, index, n_mapped ? n_mapped : m->width, n_mapped ? mapped : NULL))
        return 0;
    uint64_t n_values = (uint64_t)tree->n_leaves * tree->leaf_width;
    tree->leaves = read_f64s(r, n_values, "a tree's leaf values");
    if (tree->leaves == NULL) return 0;
    if (!all_finite(tree->leaves, n_values))
        return fail(r, "tree %u has a leaf value that is not finite", index);
    if (m->combine == COMBINE_SAMME) {
        for (uint32_t i = 0; i < tree->n_leaves; i++) {
            double vote = tree->leaves[i];
            if (vote < 0 || vote >= m->n_classes || vote != floor(vote))
                return fail(r, "tree %u votes for class %g of %u", index, vote, m->n_classes);
        }
    }
    return compact(r, tree, m->input == INPUT_FLOAT32, m->compare == COMPARE_LT);
}

static int compare_keys(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The walk groups (model.h): the trees in order of their compact layout's depth (ties in
 * tree order), WALK_GROUP at a time, so that the fast walks (model_score.c) step trees of
 * about the same depth together. */
static int group_trees(Reader *r) {
    SqmlModel *m = r->model;
    uint32_t n = m->n_trees;
    uint64_t *keys = malloc(sizeof(uint64_t) * ((size_t)n + 1)); /* depth, then tree */
    m->n_groups = (n + WALK_GROUP - 1) / WALK_GROUP;
    m->groups = model_alloc(m, sizeof(SqmlWalkGroup) * ((size_t)m->n_groups + 1));
    if (keys == NULL || m->groups == NULL) {
        free(keys);
        return fail(r, "out of memory ordering trees");
    }
    if (m->pool_size && m->pool_size < m->pool_capacity) { /* the pool's final size */
        unsigned char *trimmed = realloc(m->pool, m->pool_size);
        if (trimmed != NULL) m->pool = trimmed, m->pool_capacity = m->pool_size;
    }
    for (uint32_t t = 0; t < n; t++) keys[t] = (uint64_t)m->trees[t].depth << 32 | t;
    qsort(keys, n, sizeof(uint64_t), compare_keys);
    for (uint32_t g = 0; g < m->n_groups; g++) {
        SqmlWalkGroup *group = &m->groups[g];
        uint32_t first = g * WALK_GROUP;
        group->lanes = n - first < WALK_GROUP ? n - first : WALK_GROUP;
        group->shallowest = UINT32_MAX;
        group->deepest = 0;
        group->compact = 1;
        for (uint32_t j = 0; j < WALK_GROUP; j++) {
            uint32_t t = (uint32_t)keys[first + (j < group->lanes ? j : group->lanes - 1)];
            const SqmlTree *tree = &m->trees[t];
            group->tree[j] = t;
            group->leaves[j] = tree->leaves;
            group->root[j] = tree->root;
            group->compact &= tree->compact;
            if (tree->shallowest < group->shallowest) group->shallowest = tree->shallowest;
            if (tree->depth > group->deepest) group->deepest = tree->depth;
        }
    }
    free(keys);
    return 1;
}

/* A forest that votes for a class (the mean of its trees' class values, then the first
 * largest): what the trees after each walk group can still add to each class (model.h),
 * so that a prediction can stop once no remaining tree could change the class. */
static int bound_groups(Reader *r) {
    SqmlModel *m = r->model;
    if (m->family != FAMILY_TREES || m->combine != COMBINE_MEAN || m->decision != TREES_ARGMAX ||
        m->outputs < 2 || m->outputs > 64 || m->n_groups < 2)
        return 1; /* (more classes: bounds too large to keep for each group) */
    /* the mean divides the sums by at least 1 and at most the tree count (scikit-learn:
     * the tree count), which keeps sums a margin apart in the same order: a divisor far
     * outside could make two different sums equal means (infinite, or rounded together) */
    if (!(m->divisor >= 1.0 && m->divisor <= (double)m->n_trees)) return 1;
    for (uint32_t g = 0; g < m->n_groups; g++)
        if (!m->groups[g].compact) return 1;
    uint32_t k = m->outputs;
    double *bounds = model_alloc(m, sizeof(double) * ((size_t)m->n_groups + 1) * k * 2);
    if (bounds == NULL) return fail(r, "out of memory bounding trees");
    double total = 0.0; /* (bounds after the last group: 0, as model_alloc zeroes) */
    for (uint32_t g = m->n_groups; g-- > 0;) {
        const SqmlWalkGroup *group = &m->groups[g];
        double *here = bounds + (size_t)g * k * 2, *after = here + (size_t)k * 2;
        for (uint32_t c = 0; c < k; c++) here[2 * c] = after[2 * c], here[2 * c + 1] = after[2 * c + 1];
        for (uint32_t j = 0; j < group->lanes; j++) {
            const SqmlTree *tree = &m->trees[group->tree[j]];
            double most_anywhere = 0.0;
            for (uint32_t c = 0; c < k; c++) { /* (every tree has a leaf: read_nodes) */
                double least = INFINITY, most = -INFINITY;
                for (uint32_t l = 0; l < tree->n_leaves; l++) {
                    double v = tree->leaves[(size_t)l * k + c];
                    if (v < least) least = v;
                    if (v > most) most = v;
                }
                here[2 * c] += least;
                here[2 * c + 1] += most;
                if (fabs(least) > most_anywhere) most_anywhere = fabs(least);
                if (fabs(most) > most_anywhere) most_anywhere = fabs(most);
            }
            total += most_anywhere;
        }
    }
    if (!isfinite(total)) return 1;
    m->bounds = bounds;
    /* above the rounding of the sums compared (each within about n_trees ulps of total,
     * four of them), far below any difference a vote can make */
    double ulps = 4.0 * ((double)m->n_trees + 2.0) * DBL_EPSILON;
    m->bound_margin = (ulps > 1e-9 ? ulps : 1e-9) * (total > 1.0 ? total : 1.0);
    return 1;
}

static int read_trees(Reader *r) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &m->input, "the trees' input") ||
        !read_u32(r, &m->compare, "the trees' comparison") ||
        !read_u32(r, &m->combine, "how trees combine") ||
        !read_u32(r, &m->outputs, "the trees' output count"))
        return 0;
    if (m->outputs < 1 || m->outputs > MAX_OUTPUTS)
        return fail(r, "trees with %u outputs", m->outputs);
    m->init = read_f64s(r, m->outputs, "the trees' starting values");
    if (m->init == NULL || !read_f64(r, &m->divisor, "the trees' divisor") ||
        !read_u32(r, &m->decision, "the trees' decision") ||
        !read_u32(r, &m->probability, "the trees' probabilities") ||
        !read_u32(r, &m->link, "the trees' link") || !read_u32(r, &m->n_trees, "the tree count"))
        return 0;
    if (!all_finite(m->init, m->outputs)) return fail(r, "a starting value is not finite");
    if (!check_tree_settings(r)) return 0;
    if (m->n_trees < 1 || m->n_trees > MAX_TREES || m->n_trees > r->left / 24)
        return fail(r, "the model declares %u trees, not what the data holds", m->n_trees);
    if (m->combine == COMBINE_SAMME) {
        if (!read_f64(r, &m->samme_total, "the vote's total weight")) return 0;
        m->samme_votes = read_f64s(r, (uint64_t)m->n_trees * 2, "the trees' votes");
        if (m->samme_votes == NULL) return 0;
        if (!isfinite(m->samme_total) || m->samme_total == 0 ||
            !all_finite(m->samme_votes, (uint64_t)m->n_trees * 2))
            return fail(r, "the vote's weights are not finite");
    } else if (m->combine == COMBINE_MEDIAN) {
        m->median_weights = read_f64s(r, m->n_trees, "the trees' weights");
        if (m->median_weights == NULL) return 0;
        if (!all_finite(m->median_weights, m->n_trees))
            return fail(r, "a tree weight is not finite");
    }
    m->trees = model_alloc(m, (size_t)m->n_trees * sizeof(SqmlTree));
    if (m->trees == NULL) return fail(r, "out of memory reading trees");
    for (uint32_t t = 0; t < m->n_trees; t++)
        if (!read_tree(r, &m->trees[t], t)) return 0;
    if (!group_trees(r) || !bound_groups(r)) return 0;
    /* the float32 row, the accumulators and (median) a prediction and order per tree */
    m->work_size = (size_t)m->width + (size_t)m->outputs * 2 + m->n_classes +
                   (m->combine == COMBINE_MEDIAN ? (size_t)m->n_trees * 3 : 0);
    m->leaves_at = m->work_size;
    m->work_size += m->n_trees / 2 + 1; /* a leaf number (uint32) per tree */
    return 1;
}

static int read_booster_tree(Reader *r, SqmlTree *tree, uint32_t index) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &tree->slot, "a tree's output") || !read_f64(r, &tree->weight, "a tree's weight") ||
        !read_u32(r, &tree->flags, "a tree's flags") ||
        !read_u32(r, &tree->n_nodes, "a tree's node count") ||
        !read_u32(r, &tree->n_leaves, "a tree's leaf count"))
        return 0;
    if (tree->slot >= m->outputs)
        return fail(r, "tree %u adds to output %u of %u", index, tree->slot, m->outputs);
    if (!isfinite(tree->weight)) return fail(r, "tree %u has a weight that is not finite", index);
    if (tree->flags > (TREE_MISSING_TYPES | TREE_CATEGORICAL))
        return fail(r, "tree %u has unknown flags %u", index, tree->flags);
    if (tree->flags && m->compare == COMPARE_LT) /* XGBoost's trees have neither */
        return fail(r, "tree %u compares with < but has missing types or categories", index);
    tree->leaf_width = 1;
    if (!read_nodes(r, tree, index, m->width, NULL)) return 0;
    uint32_t n = tree->n_nodes;
    if (tree->flags & TREE_MISSING_TYPES) {
        tree->missing = take(r, n, 1, "a tree's missing types");
        if (tree->missing == NULL) return 0;
        for (uint32_t i = 0; i < n; i++)
            if (tree->missing[i] > MISSING_NAN)
                return fail(r, "tree %u, node %u: unknown missing type %u", index, i, tree->missing[i]);
    }
    if (tree->flags & TREE_CATEGORICAL) {
        tree->category_set = (int32_t *)read_u32s(r, n, "a tree's category sets");
        if (tree->category_set == NULL || !read_u32(r, &tree->n_sets, "a tree's set count"))
            return 0;
        if (tree->n_sets > n) return fail(r, "tree %u declares %u category sets", index, tree->n_sets);
        tree->bounds = read_u32s(r, (uint64_t)tree->n_sets + 1, "a tree's category bounds");
        if (tree->bounds == NULL || !read_u32(r, &tree->n_words, "a tree's word count")) return 0;
        tree->words = read_u32s(r, tree->n_words, "a tree's category words");
        if (tree->words == NULL) return 0;
        if (tree->bounds[0] != 0 || tree->bounds[tree->n_sets] != tree->n_words)
            return fail(r, "tree %u's category bounds do not cover its words", index);
        for (uint32_t s = 0; s < tree->n_sets; s++)
            if (tree->bounds[s + 1] < tree->bounds[s])
                return fail(r, "tree %u's category bounds go backwards", index);
        for (uint32_t i = 0; i < n; i++)
            if (tree->category_set[i] < -1 || tree->category_set[i] >= (int32_t)tree->n_sets)
                return fail(r, "tree %u, node %u: category set %d of %u", index, i,
                            tree->category_set[i], tree->n_sets);
    }
    tree->leaves = read_f64s(r, tree->n_leaves, "a tree's leaf values");
    if (tree->leaves == NULL) return 0;
    if (!all_finite(tree->leaves, tree->n_leaves))
        return fail(r, "tree %u has a leaf value that is not finite", index);
    /* the compact walk serves every tree without categorical splits; those take
     * LightGBM's own walk */
    if (!(tree->flags & TREE_CATEGORICAL))
        return compact(r, tree, m->input == INPUT_FLOAT32, m->compare == COMPARE_LT);
    return 1;
}

static int read_booster(Reader *r) {
    SqmlModel *m = r->model;
    if (!read_u32(r, &m->sum32, "the booster's sums") ||
        !read_u32(r, &m->compare, "the booster's comparison") ||
        !read_u32(r, &m->input, "the booster's input") ||
        !read_u32(r, &m->outputs, "the booster's output count") ||
        !read_u32(r, &m->booster_link, "the booster's link") ||
        !read_f64(r, &m->sigmoid_scale, "the booster's sigmoid scale") ||
        !read_u32(r, &m->average, "the booster's averaging") ||
        !read_f64(r, &m->iterations_used, "the booster's iteration count"))
        return 0;
    if (m->sum32 > 1 || m->compare > COMPARE_LT || m->input > INPUT_FLOAT32 || m->average > 1)
        return fail(r, "unknown booster settings");
    if (m->booster_link >= LINK_B_COUNT) return fail(r, "unknown booster link %u", m->booster_link);
    if (!isfinite(m->sigmoid_scale) || !isfinite(m->iterations_used) || m->iterations_used < 1)
        return fail(r, "the booster's scale or iteration count is not finite");
    if (m->label_kind == SQML_LABELS_CLUSTER) return fail(r, "a booster for clusters");
    if (m->n_classes == 0 ? m->outputs != 1
                          : m->outputs != (m->n_classes == 2 ? 1u : m->n_classes))
        return fail(r, "a booster with %u outputs for %u classes", m->outputs, m->n_classes);
    m->init = read_f64s(r, m->outputs, "the booster's base margins");
    if (m->init == NULL || !read_u32(r, &m->n_trees, "the tree count")) return 0;
    if (!all_finite(m->init, m->outputs)) return fail(r, "a base margin is not finite");
    if (m->n_trees > MAX_TREES || m->n_trees > r->left / 24)
        return fail(r, "the model declares %u trees, not what the data holds", m->n_trees);
    m->trees = model_alloc(m, (size_t)m->n_trees * sizeof(SqmlTree) + 1);
    if (m->trees == NULL) return fail(r, "out of memory reading trees");
    for (uint32_t t = 0; t < m->n_trees; t++)
        if (!read_booster_tree(r, &m->trees[t], t)) return 0;
    if (!group_trees(r)) return 0;
    m->work_size = (size_t)m->width + (size_t)m->outputs * 2 + m->n_classes + 2;
    m->leaves_at = m->work_size;
    m->work_size += m->n_trees / 2 + 1; /* a leaf number (uint32) per tree */
    return 1;
}

SqmlModel *sqml_model_load(const unsigned char *blob, size_t size, char error[SQML_ERROR_SIZE]) {
    const uint16_t probe = 1;
    error[0] = '\0';
    if (*(const unsigned char *)&probe != 1) {
        snprintf(error, SQML_ERROR_SIZE, "native models are read on little-endian machines only");
        return NULL;
    }
    SqmlModel *model = calloc(1, sizeof(SqmlModel));
    if (model == NULL) {
        snprintf(error, SQML_ERROR_SIZE, "out of memory");
        return NULL;
    }
    Reader r = {blob, size, error, model};
    uint32_t version, flags, family, end;
    int ok = need(&r, 8, "the header") && memcmp(blob, MAGIC, 8) == 0;
    if (!ok && !error[0]) fail(&r, "not a native model (no SQMLNATV header)");
    if (ok) {
        r.p += 8;
        r.left -= 8;
        ok = read_u32(&r, &version, "the header") && read_u32(&r, &flags, "the header");
    }
    if (ok && version != VERSION)
        ok = fail(&r, "native format version %u, not the %u this version reads", version,
                  VERSION);
    if (ok && flags != 0) ok = fail(&r, "unknown format flags %u", flags);
    ok = ok && read_text(&r, &model->model_digest, "the model's digest");
    if (ok && model->model_digest.size != 0 && model->model_digest.size != 64)
        ok = fail(&r, "the model's digest is not a SHA-256");
    ok = ok && read_text(&r, &model->schema_digest, "the feature schema's digest");
    if (ok && model->schema_digest.size != 0 && model->schema_digest.size != 64)
        ok = fail(&r, "the feature schema's digest is not a SHA-256");
    ok = ok && read_f64(&r, &model->model_size, "the model's size");
    if (ok && !(model->model_size >= 0 && model->model_size < 9007199254740992.0 &&
                model->model_size == floor(model->model_size)))
        ok = fail(&r, "the model's size is not a byte count");
    ok = ok && read_schema(&r) && read_labels(&r) && read_u32(&r, &family, "the model family");
    if (ok) {
        model->family = family;
        if (family == FAMILY_LINEAR) ok = read_linear(&r);
        else if (family == FAMILY_TREES) ok = read_trees(&r);
        else if (family == FAMILY_CENTROIDS) ok = read_centroids(&r);
        else if (family == FAMILY_BOOSTER) ok = read_booster(&r);
        else ok = fail(&r, "unknown model family %u", family);
    }
    if (ok && model->family != FAMILY_CENTROIDS && model->label_kind == SQML_LABELS_CLUSTER)
        ok = fail(&r, "cluster labels on a model that is not a clustering");
    ok = ok && read_u32(&r, &end, "the end marker");
    if (ok && end != END_MARKER) ok = fail(&r, "the end marker is missing");
    if (ok && r.left != 0) ok = fail(&r, "%zu bytes after the end marker", r.left);
    if (!ok) {
        sqml_model_free(model);
        return NULL;
    }
    return model;
}

uint32_t sqml_model_n_features(const SqmlModel *m) { return m->n_features; }
const char *sqml_model_digest(const SqmlModel *m) { return m->model_digest.text; }
const char *sqml_model_schema_digest(const SqmlModel *m) { return m->schema_digest.text; }
double sqml_model_size(const SqmlModel *m) { return m->model_size; }
const SqmlFeature *sqml_model_feature(const SqmlModel *m, uint32_t i) { return &m->features[i]; }
uint32_t sqml_model_width(const SqmlModel *m) { return m->width; }
int sqml_model_label_kind(const SqmlModel *m) { return m->label_kind; }
uint32_t sqml_model_n_classes(const SqmlModel *m) { return m->n_classes; }
size_t sqml_model_work_size(const SqmlModel *m) { return m->work_size + m->width + 8; }
const SqmlText *sqml_model_text_label(const SqmlModel *m, uint32_t i) { return &m->text_labels[i]; }
double sqml_model_number_label(const SqmlModel *m, uint32_t i) { return m->number_labels[i]; }

int sqml_model_is_regression(const SqmlModel *m) {
    return m->label_kind != SQML_LABELS_CLUSTER && m->n_classes == 0;
}

int sqml_model_has_probabilities(const SqmlModel *m) {
    if (m->family == FAMILY_LINEAR) return m->probability != LINEAR_PROBA_NONE;
    if (m->family == FAMILY_TREES) return m->probability != TREES_PROBA_NONE;
    if (m->family == FAMILY_BOOSTER) return m->n_classes >= 2;
    return 0;
}
