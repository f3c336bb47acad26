/* Every form's predictions and probabilities for made-up rows, one row a line, so that
 * two builds of the scorer can be compared (tests/test_native_fuzz.py builds it with the
 * x86-64 walks and with -DSQML_PORTABLE_WALK, the C walks other targets take):
 *
 *   native_walks SEED ROWS FORM:SCALE...
 *
 * Each row's values are drawn in [-SCALE, SCALE] or, half of the time, are a threshold of
 * a node of the feature as the walks compare it (so that <= and < differ); one row in five
 * has a NaN (the general walk, with each tree's missing-value way). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

const sqlite3_api_routines *sqlite3_api = 0; /* the core's SQLite files are not linked */

/* The value of feature i that the walks compare as a threshold of a node of that feature
 * (float32 trees: rounded down for <=, model_load.c), after the row's centring and
 * scaling: found near t * scale + center, a few ulps either way. */
static double forward(const SqmlModel *m, uint32_t i, double x) {
    double v = (x - m->center[i]) / m->scale[i];
    return m->input == INPUT_FLOAT32 ? (double)(float)v : v;
}

static int threshold(const SqmlModel *m, uint32_t i, double *value) {
    if (m->n_trees == 0) return 0;
    const SqmlTree *tree = &m->trees[rand() % m->n_trees];
    for (int tries = 0; tries < 20 && tree->n_nodes; tries++) {
        const SqmlNode *node = &tree->nodes[rand() % tree->n_nodes];
        if (node->feature != (int32_t)i) continue;
        double t = node->threshold;
        if (m->input == INPUT_FLOAT32) {
            float f = (float)t;
            if (m->compare == COMPARE_LE && (double)f > t) f = nextafterf(f, -INFINITY);
            t = f;
        }
        double start = t * m->scale[i] + m->center[i];
        for (int way = 0; way < 2; way++) {
            double x = start;
            for (int step = 0; step < 64; step++, x = nextafter(x, way ? INFINITY : -INFINITY))
                if (forward(m, i, x) == t) {
                    *value = x;
                    return 1;
                }
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    srand((unsigned)atoi(argv[1]));
    int rows = atoi(argv[2]);
    for (int f = 3; f < argc; f++) {
        char *colon = strrchr(argv[f], ':');
        if (colon == NULL) return 2;
        *colon = '\0';
        double scale = atof(colon + 1);
        FILE *file = fopen(argv[f], "rb");
        if (file == NULL) return 2;
        fseek(file, 0, SEEK_END);
        long size = ftell(file);
        rewind(file);
        unsigned char *form = malloc((size_t)size);
        if (form == NULL || fread(form, 1, (size_t)size, file) != (size_t)size) return 2;
        fclose(file);
        char error[SQML_ERROR_SIZE];
        SqmlModel *model = sqml_model_load(form, (size_t)size, error);
        if (model == NULL) {
            fprintf(stderr, "%s: %s\n", argv[f], error);
            return 3;
        }
        uint32_t width = sqml_model_width(model), classes = sqml_model_n_classes(model);
        size_t work = sqml_model_work_size(model);
        double *x = malloc(sizeof(double) * (width + work + classes + 1));
        double *row = malloc(sizeof(double) * width);
        for (int r = 0; r < rows; r++) {
            for (uint32_t i = 0; i < width; i++) {
                row[i] = scale * ((rand() % 20001) - 10000) / 10000.0;
                if (rand() % 2) threshold(model, i, &row[i]);
            }
            if (r % 5 == 4) row[rand() % width] = NAN;
            memcpy(x, row, sizeof(double) * width);
            SqmlPrediction prediction;
            sqml_model_predict(model, x, x + width, &prediction);
            printf("%d %lld %.17g", f, (long long)prediction.index, prediction.value);
            if (sqml_model_has_probabilities(model)) {
                memcpy(x, row, sizeof(double) * width);
                double *out = x + width + work;
                sqml_model_probabilities(model, x, x + width, out);
                for (uint32_t c = 0; c < classes; c++) printf(" %.17g", out[c]);
            }
            printf("\n");
        }
        free(row);
        free(x);
        sqml_model_free(model);
        free(form);
    }
    return 0;
}
