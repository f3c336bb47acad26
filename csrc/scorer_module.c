/* The native scorer seen from Python: what ml/native_format.py uses to check a form it
 * has just compiled against the fitted pipeline, and what the tests use to reach the C
 * code directly (the loader's checks, Python-compatible number formatting). The GIL is
 * released while C works. */
#include "sqml.h"

#include "bridge.h"

static SqmlModel *load_or_raise(PyObject *blob_object) {
    Py_buffer blob;
    if (PyObject_GetBuffer(blob_object, &blob, PyBUF_SIMPLE) < 0) return NULL;
    char error[SQML_ERROR_SIZE];
    SqmlModel *model;
    Py_BEGIN_ALLOW_THREADS
    model = sqml_model_load(blob.buf, (size_t)blob.len, error);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&blob);
    if (model == NULL) PyErr_SetString(PyExc_ValueError, error);
    return model;
}

/* validate_native(blob) -> None, or the check that failed */
PyObject *sqml_validate_native(PyObject *module, PyObject *blob_object) {
    (void)module;
    SqmlModel *model = load_or_raise(blob_object);
    if (model == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) return NULL;
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        PyObject *text = value ? PyObject_Str(value) : NULL;
        Py_XDECREF(value);
        return text;
    }
    sqml_model_free(model);
    Py_RETURN_NONE;
}

static PyObject *label_object(const SqmlModel *model, const SqmlPrediction *prediction) {
    int kind = sqml_model_label_kind(model);
    if (kind == SQML_LABELS_CLUSTER) return PyLong_FromLongLong(prediction->index);
    if (sqml_model_is_regression(model)) return PyFloat_FromDouble(prediction->value);
    if (kind == SQML_LABELS_TEXT) {
        const SqmlText *label = sqml_model_text_label(model, (uint32_t)prediction->index);
        return PyUnicode_DecodeUTF8(label->text, label->size, "replace");
    }
    return PyFloat_FromDouble(sqml_model_number_label(model, (uint32_t)prediction->index));
}

/* score_native(blob, matrix[, probabilities]) -> (predictions, unsure) or, with
 * probabilities true, a list of probability rows. matrix: C-contiguous float64 rows of
 * the model's encoded width (NaN where missing). */
PyObject *sqml_score_native(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *blob_object, *matrix_object;
    int probabilities = 0;
    if (!PyArg_ParseTuple(args, "OO|p", &blob_object, &matrix_object, &probabilities)) return NULL;
    SqmlModel *model = load_or_raise(blob_object);
    if (model == NULL) return NULL;
    Py_buffer matrix;
    if (PyObject_GetBuffer(matrix_object, &matrix, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        sqml_model_free(model);
        return NULL;
    }
    uint32_t width = sqml_model_width(model), n_classes = sqml_model_n_classes(model);
    PyObject *result = NULL;
    if (matrix.itemsize != 8 || strcmp(matrix.format ? matrix.format : "B", "d") != 0 ||
        matrix.ndim != 2 || matrix.shape[1] != (Py_ssize_t)width) {
        PyErr_SetString(PyExc_ValueError, "matrix must be float64 rows of the model's width");
        goto done;
    }
    if (probabilities && !sqml_model_has_probabilities(model)) {
        PyErr_SetString(PyExc_ValueError, "the model has no probabilities");
        goto done;
    }
    Py_ssize_t rows = matrix.shape[0];
    size_t work_size = sqml_model_work_size(model);
    /* tree models in blocks of rows, as sqml_predict_table scores them */
    uint32_t trees = sqml_model_n_trees(model);
    size_t block = trees ? SQML_BLOCK_ROWS : 1;
    double *row = PyMem_Malloc(sizeof(double) * (width * block + work_size + n_classes + 1));
    float *rounded = trees ? PyMem_Malloc(sizeof(float) * width * block + 1) : NULL;
    uint32_t *leaves = trees ? PyMem_Malloc(sizeof(uint32_t) * trees * block + 1) : NULL;
    SqmlPrediction *predictions = PyMem_Malloc(sizeof(SqmlPrediction) * (size_t)(rows + 1));
    char *unsure = PyMem_Malloc((size_t)rows + 1);
    double *table = probabilities ? PyMem_Malloc(sizeof(double) * (size_t)(rows * n_classes + 1))
                                  : NULL;
    if (!row || !predictions || !unsure || (probabilities && !table) ||
        (trees && (!rounded || !leaves))) {
        PyErr_NoMemory();
    } else {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t start = 0; start < rows; start += (Py_ssize_t)block) {
            size_t n = (size_t)(rows - start) < block ? (size_t)(rows - start) : block;
            memcpy(row, (double *)matrix.buf + start * width, sizeof(double) * width * n);
            double *work = row + width * block;
            if (trees) sqml_model_leaves_rows(model, row, n, rounded, leaves);
            for (size_t j = 0; j < n; j++) {
                Py_ssize_t i = start + (Py_ssize_t)j;
                if (trees && probabilities) {
                    sqml_model_probabilities_leaves(model, leaves + j * trees, work,
                                                    table + i * n_classes);
                } else if (trees) {
                    sqml_model_predict_leaves(model, leaves + j * trees, work, &predictions[i]);
                    unsure[i] = SQML_SCORED;
                } else if (probabilities) {
                    sqml_model_probabilities(model, row, work, table + i * n_classes);
                } else {
                    unsure[i] = (char)sqml_model_predict(model, row, work, &predictions[i]);
                }
            }
        }
        Py_END_ALLOW_THREADS
        if (probabilities) {
            result = PyList_New(rows);
            for (Py_ssize_t i = 0; result && i < rows; i++) {
                PyObject *line = PyList_New(n_classes);
                if (line == NULL) {
                    Py_CLEAR(result);
                    break;
                }
                for (uint32_t k = 0; k < n_classes; k++)
                    PyList_SET_ITEM(line, k, PyFloat_FromDouble(table[i * n_classes + k]));
                PyList_SET_ITEM(result, i, line);
            }
        } else {
            PyObject *values = PyList_New(rows), *flags = PyList_New(rows);
            for (Py_ssize_t i = 0; values && flags && i < rows; i++) {
                PyList_SET_ITEM(values, i, label_object(model, &predictions[i]));
                PyList_SET_ITEM(flags, i, PyBool_FromLong(unsure[i] == SQML_UNSURE));
            }
            if (values && flags && !PyErr_Occurred()) result = PyTuple_Pack(2, values, flags);
            Py_XDECREF(values);
            Py_XDECREF(flags);
        }
    }
    PyMem_Free(row);
    PyMem_Free(rounded);
    PyMem_Free(leaves);
    PyMem_Free(predictions);
    PyMem_Free(unsure);
    PyMem_Free(table);
done:
    PyBuffer_Release(&matrix);
    sqml_model_free(model);
    return result;
}

/* repr_double(x) -> the text the native scorer writes for x (Python's repr) */
PyObject *sqml_repr_double(PyObject *module, PyObject *value) {
    (void)module;
    double x = PyFloat_AsDouble(value);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    SqmlBuffer buffer = {0};
    sqml_buffer_double(&buffer, x);
    if (buffer.failed) return PyErr_NoMemory();
    PyObject *text = PyUnicode_FromStringAndSize(buffer.data, (Py_ssize_t)buffer.size);
    sqml_buffer_free(&buffer);
    return text;
}

/* sha256_hex(bytes) -> the digest the native side computes */
PyObject *sqml_sha256(PyObject *module, PyObject *data_object) {
    (void)module;
    Py_buffer data;
    if (PyObject_GetBuffer(data_object, &data, PyBUF_SIMPLE) < 0) return NULL;
    char hex[65];
    sqml_sha256_hex(data.buf, (size_t)data.len, hex);
    PyBuffer_Release(&data);
    return PyUnicode_FromString(hex);
}

/* json_number(text) -> the float the JSON reader makes of a number's text */
PyObject *sqml_json_number_py(PyObject *module, PyObject *text_object) {
    (void)module;
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(text_object, &size);
    if (text == NULL) return NULL;
    return PyFloat_FromDouble(sqml_json_number(text, (size_t)size));
}

/* rows_functions() -> [(name, declaration, columns, arguments, required, missing)]: the
 * table-valued functions csrc/rows.c registers, for the test that they match the
 * registry. */
PyObject *sqml_rows_functions_py(PyObject *module, PyObject *unused) {
    (void)module;
    (void)unused;
    const char *name, *declaration, *missing;
    int counts[3];
    size_t total = sqml_rows_functions((size_t)-1, &name, &declaration, &missing, counts);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < total; i++) {
        sqml_rows_functions(i, &name, &declaration, &missing, counts);
        PyObject *item = Py_BuildValue("ssiiis", name, declaration, counts[0], counts[1],
                                       counts[2], missing ? missing : "");
        if (item == NULL || PyList_Append(list, item) < 0) Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}
