/* sqml_predict_table and sqml_embed_table: eponymous virtual tables fed by a Python
 * generator of chunks (ids, values, extras): three columns (a row id, a value per row, an
 * optional text per row computed only when a query reads it) and two hidden arguments.
 * Each table's declaration (its column names) and usage text come from Python. */
#include "sqml.h"

enum { COL_ROW_ID, COL_PREDICTION, COL_PROBABILITIES, COL_EXPERIMENT, COL_SOURCE };

#define DEFAULT_DECLARATION                                                                    \
    "CREATE TABLE x(row_id INTEGER, prediction, probabilities TEXT, experiment HIDDEN, "       \
    "source HIDDEN)"
#define DEFAULT_USAGE                                                                          \
    "sqml_predict_table needs an experiment and a source: "                                   \
    "SELECT * FROM sqml_predict_table('experiment', 'table, view or SELECT')"

typedef struct {
    PyObject *objects[2]; /* chunks(first argument, source, extras used) -> iterator, on_error */
    char *name;           /* the table's name, for error messages */
    char *declaration;    /* CREATE TABLE x(three columns, two HIDDEN arguments) */
    char *usage;          /* the error when an argument is missing */
} TableModule;

typedef struct {
    sqlite3_vtab base;
    TableModule *module;
} Table;

typedef struct {
    sqlite3_vtab_cursor base;
    PyObject *iterator;
    PyObject *chunk; /* (ids, predictions, probabilities) */
    Py_buffer ids;
    Py_buffer numbers; /* predictions when they are numbers */
    int has_ids, has_numbers;
    PyObject *texts;         /* predictions when they are text (a list of str) */
    PyObject *probabilities; /* list of str, or None */
    Py_ssize_t size, index;
    int eof;
} TableCursor;

static int table_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **out, char **error) {
    (void)argc;
    (void)argv;
    (void)error;
    int rc = sqlite3_declare_vtab(db, ((TableModule *)aux)->declaration);
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
    table->module = (TableModule *)aux;
    *out = &table->base;
    return SQLITE_OK;
}

static int table_disconnect(sqlite3_vtab *vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int table_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
    (void)vtab;
    int slots[2] = {-1, -1}, unusable = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[i];
        int column = constraint->iColumn;
        if (column != COL_EXPERIMENT && column != COL_SOURCE) continue;
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
    for (int k = 0; k < 2; k++) {
        info->aConstraintUsage[slots[k]].argvIndex = k + 1;
        info->aConstraintUsage[slots[k]].omit = 1;
    }
    info->idxNum = 1;
    /* Probabilities cost a predict_proba and JSON per row: only when a query reads them. */
    if (info->colUsed & ((sqlite3_uint64)1 << COL_PROBABILITIES)) info->idxNum |= 2;
    info->estimatedCost = 1e6;
    info->estimatedRows = 1000000;
    return SQLITE_OK;
}

static int table_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
    (void)vtab;
    TableCursor *cursor = sqlite3_malloc(sizeof(TableCursor));
    if (cursor == NULL) return SQLITE_NOMEM;
    memset(cursor, 0, sizeof(TableCursor));
    cursor->eof = 1;
    *out = &cursor->base;
    return SQLITE_OK;
}

/* The GIL is held. */
static void cursor_drop_chunk(TableCursor *cursor) {
    if (cursor->has_ids) PyBuffer_Release(&cursor->ids);
    if (cursor->has_numbers) PyBuffer_Release(&cursor->numbers);
    cursor->has_ids = cursor->has_numbers = 0;
    Py_CLEAR(cursor->texts);
    Py_CLEAR(cursor->probabilities);
    Py_CLEAR(cursor->chunk);
    cursor->size = cursor->index = 0;
}

static int cursor_fail(TableCursor *cursor) {
    Table *table = (Table *)cursor->base.pVtab;
    int nomem;
    char *message = sqml_take_error(table->module->objects[1], table->module->name, &nomem);
    if (nomem || message == NULL) return SQLITE_NOMEM;
    sqlite3_free(table->base.zErrMsg);
    table->base.zErrMsg = message;
    return SQLITE_ERROR;
}

/* Move to the next non-empty chunk, or to the end. The GIL is held. */
static int cursor_next_chunk(TableCursor *cursor) {
    for (;;) {
        cursor_drop_chunk(cursor);
        PyObject *chunk = PyIter_Next(cursor->iterator);
        if (chunk == NULL) {
            if (PyErr_Occurred()) return cursor_fail(cursor);
            cursor->eof = 1;
            return SQLITE_OK;
        }
        cursor->chunk = chunk;
        if (!PyTuple_Check(chunk) || PyTuple_GET_SIZE(chunk) != 3) {
            PyErr_SetString(PyExc_TypeError, "a chunk must be (ids, predictions, probabilities)");
            return cursor_fail(cursor);
        }
        PyObject *ids = PyTuple_GET_ITEM(chunk, 0);
        PyObject *predictions = PyTuple_GET_ITEM(chunk, 1);
        PyObject *probabilities = PyTuple_GET_ITEM(chunk, 2);
        if (PyObject_GetBuffer(ids, &cursor->ids, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            return cursor_fail(cursor);
        cursor->has_ids = 1;
        if (cursor->ids.itemsize != 8 || cursor->ids.format == NULL ||
            (strcmp(cursor->ids.format, "q") != 0 && strcmp(cursor->ids.format, "l") != 0)) {
            PyErr_SetString(PyExc_TypeError, "chunk ids must be int64");
            return cursor_fail(cursor);
        }
        cursor->size = cursor->ids.len / 8;
        if (PyList_Check(predictions)) {
            Py_INCREF(predictions);
            cursor->texts = predictions;
            if (PyList_GET_SIZE(predictions) != cursor->size) {
                PyErr_SetString(PyExc_ValueError, "chunk predictions and ids differ in length");
                return cursor_fail(cursor);
            }
        } else {
            if (PyObject_GetBuffer(predictions, &cursor->numbers,
                                   PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
                return cursor_fail(cursor);
            cursor->has_numbers = 1;
            if (cursor->numbers.itemsize != 8 || cursor->numbers.format == NULL ||
                strcmp(cursor->numbers.format, "d") != 0 ||
                cursor->numbers.len / 8 != cursor->size) {
                PyErr_SetString(PyExc_TypeError, "chunk predictions must be float64 per id");
                return cursor_fail(cursor);
            }
        }
        if (probabilities != Py_None) {
            if (!PyList_Check(probabilities) || PyList_GET_SIZE(probabilities) != cursor->size) {
                PyErr_SetString(PyExc_TypeError, "chunk probabilities must be a list per id");
                return cursor_fail(cursor);
            }
            Py_INCREF(probabilities);
            cursor->probabilities = probabilities;
        }
        if (cursor->size > 0) {
            cursor->eof = 0;
            return SQLITE_OK;
        }
    }
}

static int table_close(sqlite3_vtab_cursor *base) {
    TableCursor *cursor = (TableCursor *)base;
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        cursor_drop_chunk(cursor);
        Py_CLEAR(cursor->iterator);
        PyGILState_Release(gil);
    }
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int table_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                        sqlite3_value **argv) {
    (void)plan_text;
    TableCursor *cursor = (TableCursor *)base;
    Table *table = (Table *)base->pVtab;
    if (!(plan & 1) || argc != 2) {
        sqlite3_free(table->base.zErrMsg);
        table->base.zErrMsg = sqlite3_mprintf("%s", table->module->usage);
        return SQLITE_ERROR;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    cursor_drop_chunk(cursor);
    Py_CLEAR(cursor->iterator);
    cursor->eof = 1;
    int rc = SQLITE_OK;
    PyObject *experiment = sqml_value_to_python(argv[0]);
    PyObject *source = experiment ? sqml_value_to_python(argv[1]) : NULL;
    PyObject *chunks = NULL;
    if (source != NULL) {
        chunks = PyObject_CallFunctionObjArgs(table->module->objects[0], experiment, source,
                                              (plan & 2) ? Py_True : Py_False, NULL);
    }
    Py_XDECREF(experiment);
    Py_XDECREF(source);
    if (chunks != NULL) {
        cursor->iterator = PyObject_GetIter(chunks);
        Py_DECREF(chunks);
    }
    if (cursor->iterator == NULL) {
        rc = cursor_fail(cursor);
    } else {
        rc = cursor_next_chunk(cursor);
    }
    PyGILState_Release(gil);
    return rc;
}

static int table_next(sqlite3_vtab_cursor *base) {
    TableCursor *cursor = (TableCursor *)base;
    if (++cursor->index < cursor->size) return SQLITE_OK;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = cursor_next_chunk(cursor);
    PyGILState_Release(gil);
    return rc;
}

static int table_eof(sqlite3_vtab_cursor *base) { return ((TableCursor *)base)->eof; }

static int result_text_item(sqlite3_context *context, PyObject *list, Py_ssize_t index) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *item = PyList_GET_ITEM(list, index);
    int rc = SQLITE_OK;
    if (item == Py_None) {
        sqlite3_result_null(context);
    } else if (sqml_set_result(context, item) < 0) {
        PyErr_Clear();
        sqlite3_result_error(context, "a table-valued function's value cannot be shown in SQL",
                             -1);
        rc = SQLITE_ERROR;
    }
    PyGILState_Release(gil);
    return rc;
}

static int table_column(sqlite3_vtab_cursor *base, sqlite3_context *context, int column) {
    TableCursor *cursor = (TableCursor *)base;
    Py_ssize_t i = cursor->index;
    switch (column) {
    case COL_ROW_ID:
        sqlite3_result_int64(context, ((long long *)cursor->ids.buf)[i]);
        return SQLITE_OK;
    case COL_PREDICTION:
        if (cursor->has_numbers) {
            double value = ((double *)cursor->numbers.buf)[i];
            if (isnan(value)) sqlite3_result_null(context);
            else sqlite3_result_double(context, value);
            return SQLITE_OK;
        }
        return result_text_item(context, cursor->texts, i);
    case COL_PROBABILITIES:
        if (cursor->probabilities == NULL) {
            sqlite3_result_null(context);
            return SQLITE_OK;
        }
        return result_text_item(context, cursor->probabilities, i);
    default: /* the hidden arguments */
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
}

static int table_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
    TableCursor *cursor = (TableCursor *)base;
    *rowid = ((long long *)cursor->ids.buf)[cursor->index];
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

static void table_module_destroy(void *data) {
    TableModule *module = (TableModule *)data;
    sqml_release_objects(module->objects, 2);
    PyMem_RawFree(module->name);
    PyMem_RawFree(module->declaration);
    PyMem_RawFree(module->usage);
    PyMem_RawFree(module);
}

static char *copy_text(const char *text) {
    size_t length = strlen(text) + 1;
    char *copy = PyMem_RawMalloc(length);
    if (copy != NULL) memcpy(copy, text, length);
    return copy;
}

PyObject *sqml_create_predict_table(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *chunks, *on_error;
    const char *name, *declaration = DEFAULT_DECLARATION, *usage = DEFAULT_USAGE;
    if (!PyArg_ParseTuple(args, "OsOO|ss", &handle, &name, &chunks, &on_error, &declaration,
                          &usage))
        return NULL;
    sqlite3 *db = sqml_connection(handle);
    if (db == NULL) return NULL;
    TableModule *table_module = PyMem_RawMalloc(sizeof(TableModule));
    if (table_module == NULL) return PyErr_NoMemory();
    table_module->name = copy_text(name);
    table_module->declaration = copy_text(declaration);
    table_module->usage = copy_text(usage);
    if (!table_module->name || !table_module->declaration || !table_module->usage) {
        PyMem_RawFree(table_module->name);
        PyMem_RawFree(table_module->declaration);
        PyMem_RawFree(table_module->usage);
        PyMem_RawFree(table_module);
        return PyErr_NoMemory();
    }
    Py_INCREF(chunks);
    Py_INCREF(on_error);
    table_module->objects[0] = chunks;
    table_module->objects[1] = on_error;
    int rc = sqlite3_create_module_v2(db, name, &predict_table_module, table_module,
                                      table_module_destroy);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "could not register %s (SQLite error %d)", name, rc);
        return NULL;
    }
    Py_RETURN_NONE;
}

