/* The loaded form of a native model, shared by model_load.c (which builds and validates
 * it) and model_score.c (which only reads it). Everything here has been checked: counts
 * match the arrays, tree children are in range and after their node, features index the
 * row, numbers are finite where the scorer needs them to be. */
#ifndef SQML_MODEL_H
#define SQML_MODEL_H

#include "core.h"

enum { FAMILY_LINEAR = 1, FAMILY_TREES = 2, FAMILY_CENTROIDS = 3, FAMILY_BOOSTER = 4 };
/* ml/boosters.py's LINKS, in order */
enum { LINK_B_IDENTITY, LINK_B_SIGMOID, LINK_B_SOFTMAX, LINK_B_SIGMOID_EACH, LINK_B_EXP,
       LINK_B_HINGE, LINK_B_SIGNED_SQUARE, LINK_B_SOFTPLUS, LINK_B_COUNT };
/* ml/boosters.py's missing types */
enum { MISSING_NONE = 0, MISSING_ZERO = 1, MISSING_NAN = 2 };
enum { TREE_MISSING_TYPES = 1, TREE_CATEGORICAL = 2 };
enum { LINEAR_VALUE = 0, LINEAR_BINARY = 1, LINEAR_ARGMAX = 2 };
enum { LINEAR_PROBA_NONE = 0, LINEAR_PROBA_OVR = 1, LINEAR_PROBA_SOFTMAX = 2 };
enum { TREES_VALUE = 0, TREES_ARGMAX = 1, TREES_POSITIVE = 2, TREES_NOT_NEGATIVE = 3 };
enum { TREES_PROBA_NONE = 0, TREES_PROBA_MEAN = 1, TREES_PROBA_LOGISTIC = 2,
       TREES_PROBA_SOFTMAX = 3, TREES_PROBA_SAMME = 4, TREES_PROBA_LOGISTIC_2X = 5 };
enum { COMBINE_MEAN = 1, COMBINE_SUM = 2, COMBINE_SAMME = 3, COMBINE_MEDIAN = 4 };
enum { INPUT_FLOAT64 = 0, INPUT_FLOAT32 = 1 };
enum { COMPARE_LE = 0, COMPARE_LT = 1 };
enum { LINK_IDENTITY = 0, LINK_EXP = 1 };

typedef struct {
    int32_t feature; /* an index into the row (bagging subsets already mapped); -1: leaf */
    uint32_t left;   /* a leaf: its leaf number */
    uint32_t right;
    uint32_t missing_left;
    double threshold;
} SqmlNode;

/* Compact nodes for the walk: every compact tree of a model in one pool (SqmlModel's
 * pool), each tree in preorder (a node's left child is the next node), nodes found by
 * their byte offset in the pool. float32 thresholds where the trees compare float32
 * inputs (12 bytes), float64 where they compare float64 ones (16 bytes). feature: the
 * byte offset of the node's value in the row (its index times the value's size). right:
 * the right child's byte offset, with the node's missing-value flags in its low bits
 * (offsets are multiples of 4 and 16). A leaf is a loop onto itself: right is its own
 * offset, feature 0 and threshold a quiet NaN whose payload is the leaf number. No value
 * compares true against NaN, so a walk that keeps stepping past a leaf stays on it:
 * walks without a leaf test, whose every step is two dependent loads, a comparison and a
 * select. */
#define COMPACT_MAX_LEAVES (1u << 22) /* leaf numbers a float32 NaN payload holds */
#define COMPACT_MISSING_LEFT 1u        /* a missing value takes the left branch */
#define COMPACT_NAN_AS_ZERO 2u         /* LightGBM (float64 only): NaN is read as 0.0 */
#define COMPACT_ZERO_MISSING 4u        /* LightGBM (float64 only): |x| <= 1e-35 is missing */
#define COMPACT_AT32 (~3u)             /* right's offset bits, float32 nodes */
#define COMPACT_AT64 (~15u)            /* right's offset bits, float64 nodes */
#define COMPACT_MAX_POOL 0xfffff000u   /* offsets are uint32 */
typedef struct {
    float threshold;
    uint32_t feature;
    uint32_t right;
} SqmlNode32;
typedef struct {
    double threshold;
    uint32_t feature;
    uint32_t right;
} SqmlNode64;

typedef struct {
    uint32_t slot, n_nodes, leaf_width, n_leaves;
    SqmlNode *nodes;
    uint32_t compact; /* the tree has the walk's layout, at root in the model's pool */
    uint32_t root;
    uint32_t depth, shallowest; /* the compact layout's deepest and shallowest leaf */
    double *leaves; /* n_leaves x leaf_width */
    /* boosters */
    double weight;
    uint32_t flags;
    unsigned char *missing; /* per node (TREE_MISSING_TYPES), else every node MISSING_NAN */
    int32_t *category_set;  /* per node (TREE_CATEGORICAL): -1 numeric, else its set */
    uint32_t *bounds;       /* n_sets + 1: each set's words */
    uint32_t *words;
    uint32_t n_sets, n_words;
} SqmlTree;

/* Trees walked side by side by the fast walks, a group of about the same depth at a time;
 * the last group repeats its last tree in the lanes it lacks. */
#define WALK_GROUP 8
typedef struct {
    uint32_t root[WALK_GROUP];     /* each lane's root in the pool */
    uint32_t tree[WALK_GROUP];     /* the tree of each lane */
    const double *leaves[WALK_GROUP]; /* each lane's tree's leaf values */
    uint32_t lanes;                /* lanes with a tree of their own */
    uint32_t shallowest, deepest;  /* over the group's leaves */
    uint32_t compact;              /* every tree has the compact layout */
} SqmlWalkGroup;

struct SqmlModel {
    SqmlText model_digest; /* the skops blob's SHA-256 the form was compiled from */
    SqmlText schema_digest; /* the SHA-256 of the feature schema's JSON it was compiled with */
    double model_size;      /* the skops blob's length (0: not recorded) */
    int label_kind;
    uint32_t n_features, width, n_classes;
    SqmlFeature *features;
    double *fill, *center, *scale;
    SqmlText *text_labels;
    double *number_labels;
    uint32_t family;
    /* linear */
    uint32_t decision, outputs, probability;
    double *coef, *intercept;
    /* trees */
    uint32_t input, compare, combine, link, n_trees;
    uint32_t zero_missing; /* a compact tree reads zero as missing (LightGBM): no fast walk */
    SqmlWalkGroup *groups; /* the trees by compact depth, for fast walks (model_score.c) */
    uint32_t n_groups;
    /* A forest's class decided before its last tree (model_score.c), or NULL: for each
     * group g (0 to n_groups) and class c, the least and the most the trees of groups g
     * onwards can add to c's sum ((g * outputs + c) * 2, then + 1), and the margin that
     * covers the sums' rounding. */
    double *bounds, bound_margin;
    double *init, divisor;
    double samme_total, *samme_votes; /* hit, miss per tree */
    double *median_weights;
    SqmlTree *trees;
    unsigned char *pool; /* the compact trees' nodes (SqmlNode32 or SqmlNode64, model.h) */
    size_t pool_size, pool_capacity;
    /* boosters */
    uint32_t sum32, booster_link, average;
    double sigmoid_scale, iterations_used;
    /* nearest centroid */
    uint32_t k;
    double *centers, *norms;
    uint32_t *name_slots; /* open addressing over feature names: index + 1, 0 empty */
    uint32_t n_name_slots;
    size_t work_size;
    size_t leaves_at; /* where in the work space the trees' leaf numbers go */
    void **allocations;
    size_t n_allocations, allocations_capacity;
};

#endif
