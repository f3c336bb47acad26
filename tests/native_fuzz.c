/* Fuzzing the native loader, scorer and JSON reader under AddressSanitizer and
 * UndefinedBehaviorSanitizer (tests/test_native_fuzz.py builds and runs it):
 *
 *   native_fuzz SEED ITERATIONS MODEL_FORM...
 *
 * For every form: ITERATIONS copies with random bytes changed (or cut short) go through
 * the loader; each accepted one scores made-up rows and probabilities. Then random edits
 * of JSON rows go through the JSON reader and the encoder of the first form. Any memory
 * error or undefined behaviour aborts; the counts are printed. */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

const sqlite3_api_routines *sqlite3_api = 0; /* the core's SQLite files are not linked */

static unsigned char *read_file(const char *path, long *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    fseek(file, 0, SEEK_END);
    *size = ftell(file);
    rewind(file);
    unsigned char *data = malloc((size_t)*size);
    if (data == NULL || fread(data, 1, (size_t)*size, file) != (size_t)*size) exit(2);
    fclose(file);
    return data;
}

static void score(SqmlModel *model) {
    uint32_t width = sqml_model_width(model), classes = sqml_model_n_classes(model);
    size_t work = sqml_model_work_size(model);
    double *x = malloc(sizeof(double) * (width + work + classes + 1));
    for (int row = 0; row < 3; row++) {
        for (uint32_t i = 0; i < width; i++) x[i] = (rand() % 200 - 100) / 7.0;
        if (row == 2) x[0] = NAN;
        SqmlPrediction prediction;
        sqml_model_predict(model, x, x + width, &prediction);
        if (sqml_model_has_probabilities(model)) {
            for (uint32_t i = 0; i < width; i++) x[i] = (rand() % 200 - 100) / 7.0;
            sqml_model_probabilities(model, x, x + width, x + width + work);
        }
    }
    free(x);
}

static void fuzz_forms(int iterations, int count, char **paths, long *counts) {
    for (int f = 0; f < count; f++) {
        long size;
        unsigned char *form = read_file(paths[f], &size);
        if (form == NULL) exit(2);
        for (int it = 0; it < iterations; it++) {
            unsigned char *copy = malloc((size_t)size);
            memcpy(copy, form, (size_t)size);
            long length = size;
            int changes = rand() % 4 == 0 ? 4 : 1 + rand() % 2;
            for (int k = 0; k < changes; k++) {
                long at = rand() % size;
                copy[at] = rand() % 10 < 7 ? (unsigned char)(rand() % 256) : copy[at] ^ 0x80;
            }
            if (rand() % 10 == 0) length = rand() % size;
            char error[SQML_ERROR_SIZE];
            SqmlModel *model = sqml_model_load(copy, (size_t)length, error);
            if (model != NULL) {
                counts[0]++;
                score(model);
                sqml_model_free(model);
            } else {
                if (!error[0]) exit(3); /* a refusal always says why */
                counts[1]++;
            }
            free(copy);
        }
        free(form);
    }
}

static void fuzz_json(SqmlModel *model, int iterations, long *counts) {
    /* rows keyed by the model's own feature names (one of them in capitals), and arrays */
    static const char *values[] = {"5.1", "1e308", "-0", "\"  7 \"", "null", "12345678901234567890",
                                   "1.5e-320", "true", "\"red\"", "[1, {\"y\": \"\\u00e9\"}]"};
    char objects[2][400];
    for (int o = 0; o < 2; o++) {
        SqmlBuffer b = {0};
        sqml_buffer_text(&b, "{");
        for (uint32_t i = 0; i < sqml_model_n_features(model) && b.size < 300; i++) {
            const SqmlText *name = &sqml_model_feature(model, i)->name;
            if (i) sqml_buffer_text(&b, ", ");
            sqml_buffer_json_string(&b, name->text, name->size);
            if (o == 1 && i == 0) b.data[2] = (char)(b.data[2] & ~0x20);
            sqml_buffer_text(&b, ": ");
            sqml_buffer_text(&b, values[(i + (uint32_t)o * 3) % 10]);
        }
        sqml_buffer_text(&b, "}");
        snprintf(objects[o], sizeof objects[o], "%s", b.data ? b.data : "{}");
        sqml_buffer_free(&b);
    }
    const char *seeds[] = {
        objects[0],
        "[5.1, 3.5, 1.4, 0.2]",
        "[\"5.1\", null, true, {\"x\": [1, 2, {\"y\": \"\\u00e9\\ud83d\\ude00\"}]}]",
        objects[1],
    };
    static const char alphabet[] = "{}[],:\"\\u0123456789.eE+-tfnrl aA\x01\xff\xc3\xa9";
    SqmlJsonScratch *scratch = sqml_json_scratch_new();
    uint32_t width = sqml_model_width(model), features = sqml_model_n_features(model);
    SqmlCell *cells = malloc(sizeof(SqmlCell) * features);
    double *x = malloc(sizeof(double) * (width + sqml_model_work_size(model) + 1));
    for (int it = 0; it < iterations; it++) {
        const char *seed = seeds[rand() % 4];
        size_t length = strlen(seed);
        char text[600];
        memcpy(text, seed, length);
        for (int edits = 1 + rand() % 4; edits > 0; edits--) {
            size_t at = length ? (size_t)rand() % length : 0;
            int kind = rand() % 3;
            char c = alphabet[rand() % (sizeof alphabet - 1)];
            if (kind == 0 && length) text[at] = c;
            else if (kind == 1 && length < 500) {
                memmove(text + at + 1, text + at, length - at);
                text[at] = c;
                length++;
            } else if (length) {
                memmove(text + at, text + at + 1, length - at - 1);
                length--;
            }
        }
        char *exact = malloc(length ? length : 1); /* no byte past the text to lean on */
        memcpy(exact, text, length);
        size_t position = 0;
        char message[SQML_ERROR_SIZE];
        int status = sqml_json_row(model, exact, length, &position, scratch, cells, "features",
                                   "", message);
        if (status == SQML_ENCODED) status = sqml_encode_cells(model, cells, "", x, message);
        if (status == SQML_ENCODED) {
            SqmlPrediction prediction;
            sqml_model_predict(model, x, x + width, &prediction);
            counts[2]++;
        } else {
            counts[3]++;
        }
        free(exact);
    }
    sqml_json_scratch_free(scratch);
    free(cells);
    free(x);
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    srand((unsigned)atoi(argv[1]));
    int iterations = atoi(argv[2]);
    long counts[4] = {0, 0, 0, 0};
    fuzz_forms(iterations, argc - 3, argv + 3, counts);
    long size;
    unsigned char *form = read_file(argv[3], &size);
    char error[SQML_ERROR_SIZE];
    SqmlModel *model = sqml_model_load(form, (size_t)size, error);
    if (model == NULL) return 4;
    fuzz_json(model, iterations * 10, counts);
    sqml_model_free(model);
    free(form);
    printf("%ld %ld %ld %ld\n", counts[0], counts[1], counts[2], counts[3]);
    return 0;
}
