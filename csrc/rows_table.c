/* Table-valued functions whose rows a Python callable gives: create_rows_table registers an
 * eponymous virtual table with the columns and hidden arguments it is told; a query's
 * arguments (the first `required`, then any of the optional ones in order) go to
 * rows(*arguments), which returns an iterator of chunks, each a list of row tuples. */
#include "sqml.h"

typedef struct {
    PyObject *objects[2]; /* rows(*arguments) -> iterator of chunks, on_error */
    int columns, arguments, required;
    char *declaration; /* CREATE TABLE x(...), sqlite3_malloc'd */
    char name[1];      /* allocated longer */
} RowsModule;

typedef struct {
    sqlite3_vtab base;
    RowsModule *module;
} RowsTable;

typedef struct {
    sqlite3_vtab_cursor base;
    PyObject *iterator;
    PyObject *chunk; /* a list of tuples */
    Py_ssize_t index;
    sqlite3_int64 rowid;
    int eof;
} RowsCursor;

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **error) {
    (void)argc;
    (void)argv;
    (void)error;
    RowsModule *module = (RowsModule *)aux;
    int rc = sqlite3_declare_vtab(db, module->declaration);
    if (rc != SQLITE_OK) return rc;
#ifdef SQLITE_VTAB_DIRECTONLY
    /* As sqml_predict_table: never from a view or a trigger of a database's schema. */
    if (sqlite3_libversion_number() >= 3031000) {
        rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
        if (rc != SQLITE_OK) return rc;
    }
#endif
    RowsTable *table = sqlite3_malloc(sizeof(RowsTable));
    if (table == NULL) return SQLITE_NOMEM;
    memset(table, 0, sizeof(RowsTable));
    table->module = module;
    *out = &table->base;
    return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vtab) {
    sqlite3_free(vtab);
    return SQLITE_OK;
}

/* idxNum: how many arguments (a prefix of them) the plan passes; -1 when a required one
 * is missing (xFilter then says how to call the function). */
static int rows_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
    RowsModule *module = ((RowsTable *)vtab)->module;
    int slots[16];
    int count = module->arguments < 16 ? module->arguments : 16, unusable = 0;
    for (int k = 0; k < count; k++) slots[k] = -1;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *constraint = &info->aConstraint[i];
        int argument = constraint->iColumn - module->columns;
        if (argument < 0 || argument >= count) continue;
        if (!constraint->usable || constraint->op != SQLITE_INDEX_CONSTRAINT_EQ) {
            unusable = 1;
            continue;
        }
        slots[argument] = i;
    }
    int given = 0;
    while (given < count && slots[given] >= 0) given++;
    if (given < module->required) {
        if (unusable) return SQLITE_CONSTRAINT; /* try another plan */
        info->idxNum = -1;
        info->estimatedCost = 1e12;
        return SQLITE_OK;
    }
    for (int k = 0; k < given; k++) {
        info->aConstraintUsage[slots[k]].argvIndex = k + 1;
        info->aConstraintUsage[slots[k]].omit = 1;
    }
    info->idxNum = given;
    info->estimatedCost = 1e6 - given;
    info->estimatedRows = 100000;
    return SQLITE_OK;
}

static int rows_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out) {
    (void)vtab;
    RowsCursor *cursor = sqlite3_malloc(sizeof(RowsCursor));
    if (cursor == NULL) return SQLITE_NOMEM;
    memset(cursor, 0, sizeof(RowsCursor));
    cursor->eof = 1;
    *out = &cursor->base;
    return SQLITE_OK;
}

static int rows_fail(RowsCursor *cursor) {
    RowsTable *table = (RowsTable *)cursor->base.pVtab;
    int nomem;
    char *message = sqml_take_error(table->module->objects[1], table->module->name, &nomem);
    if (nomem || message == NULL) return SQLITE_NOMEM;
    sqlite3_free(table->base.zErrMsg);
    table->base.zErrMsg = message;
    return SQLITE_ERROR;
}

/* Move to the next non-empty chunk, or to the end. The GIL is held. */
static int rows_next_chunk(RowsCursor *cursor) {
    RowsModule *module = ((RowsTable *)cursor->base.pVtab)->module;
    for (;;) {
        Py_CLEAR(cursor->chunk);
        cursor->index = 0;
        PyObject *chunk = PyIter_Next(cursor->iterator);
        if (chunk == NULL) {
            if (PyErr_Occurred()) return rows_fail(cursor);
            cursor->eof = 1;
            return SQLITE_OK;
        }
        cursor->chunk = chunk;
        if (!PyList_Check(chunk)) {
            PyErr_SetString(PyExc_TypeError, "a chunk must be a list of row tuples");
            return rows_fail(cursor);
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(chunk); i++) {
            PyObject *row = PyList_GET_ITEM(chunk, i);
            if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != module->columns) {
                PyErr_Format(PyExc_TypeError, "each row must be a tuple of %d values",
                             module->columns);
                return rows_fail(cursor);
            }
        }
        if (PyList_GET_SIZE(chunk) > 0) {
            cursor->eof = 0;
            return SQLITE_OK;
        }
    }
}

static int rows_close(sqlite3_vtab_cursor *base) {
    RowsCursor *cursor = (RowsCursor *)base;
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_CLEAR(cursor->chunk);
        Py_CLEAR(cursor->iterator);
        PyGILState_Release(gil);
    }
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_text, int argc,
                       sqlite3_value **argv) {
    (void)plan_text;
    RowsCursor *cursor = (RowsCursor *)base;
    RowsTable *table = (RowsTable *)base->pVtab;
    RowsModule *module = table->module;
    if (plan < 0 || argc != plan) {
        sqlite3_free(table->base.zErrMsg);
        table->base.zErrMsg = sqlite3_mprintf(
            "%s needs its first %d argument(s): SELECT * FROM %s(...)", module->name,
            module->required, module->name);
        return SQLITE_ERROR;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_CLEAR(cursor->chunk);
    Py_CLEAR(cursor->iterator);
    cursor->eof = 1;
    cursor->rowid = 0;
    int rc = SQLITE_OK;
    PyObject *arguments = PyTuple_New(argc);
    int converted = arguments != NULL;
    for (int i = 0; converted && i < argc; i++) {
        PyObject *value = sqml_value_to_python(argv[i]);
        if (value == NULL) converted = 0;
        else PyTuple_SET_ITEM(arguments, i, value);
    }
    PyObject *chunks = converted ? PyObject_CallObject(module->objects[0], arguments) : NULL;
    Py_XDECREF(arguments);
    if (chunks != NULL) {
        cursor->iterator = PyObject_GetIter(chunks);
        Py_DECREF(chunks);
    }
    rc = cursor->iterator == NULL ? rows_fail(cursor) : rows_next_chunk(cursor);
    PyGILState_Release(gil);
    return rc;
}

static int rows_next(sqlite3_vtab_cursor *base) {
    RowsCursor *cursor = (RowsCursor *)base;
    cursor->rowid++;
    if (++cursor->index < PyList_GET_SIZE(cursor->chunk)) return SQLITE_OK;
    PyGILState_STATE gil = PyGILState_Ensure();
    int rc = rows_next_chunk(cursor);
    PyGILState_Release(gil);
    return rc;
}

static int rows_eof(sqlite3_vtab_cursor *base) { return ((RowsCursor *)base)->eof; }

static int rows_column(sqlite3_vtab_cursor *base, sqlite3_context *context, int column) {
    RowsCursor *cursor = (RowsCursor *)base;
    RowsModule *module = ((RowsTable *)base->pVtab)->module;
    if (column >= module->columns) { /* the hidden arguments */
        sqlite3_result_null(context);
        return SQLITE_OK;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *row = PyList_GET_ITEM(cursor->chunk, cursor->index);
    int rc = SQLITE_OK;
    if (sqml_set_result(context, PyTuple_GET_ITEM(row, column)) < 0) {
        PyErr_Clear();
        sqlite3_result_error(context, "a value cannot be shown in SQL", -1);
        rc = SQLITE_ERROR;
    }
    PyGILState_Release(gil);
    return rc;
}

static int rows_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid) {
    *rowid = ((RowsCursor *)base)->rowid;
    return SQLITE_OK;
}

static sqlite3_module rows_table_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: used as a table-valued function */
    .xConnect = rows_connect,
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xDestroy = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

static void rows_module_destroy(void *data) {
    RowsModule *module = (RowsModule *)data;
    sqml_release_objects(module->objects, 2);
    sqlite3_free(module->declaration);
    PyMem_RawFree(module);
}

PyObject *sqml_create_rows_table(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *handle, *rows, *on_error;
    const char *name, *declaration;
    int columns, arguments, required;
    if (!PyArg_ParseTuple(args, "OssiiiOO", &handle, &name, &declaration, &columns, &arguments,
                          &required, &rows, &on_error))
        return NULL;
    sqlite3 *db = sqml_connection(handle);
    if (db == NULL) return NULL;
    if (!PyCallable_Check(rows) || !PyCallable_Check(on_error)) {
        PyErr_SetString(PyExc_TypeError, "rows and on_error must be callable");
        return NULL;
    }
    if (columns < 1 || arguments < 0 || arguments > 16 || required < 0 || required > arguments) {
        PyErr_SetString(PyExc_ValueError, "bad column or argument counts");
        return NULL;
    }
    size_t length = strlen(name);
    RowsModule *rows_module = PyMem_RawMalloc(sizeof(RowsModule) + length);
    if (rows_module == NULL) return PyErr_NoMemory();
    memcpy(rows_module->name, name, length + 1);
    rows_module->declaration = sqlite3_mprintf("%s", declaration);
    if (rows_module->declaration == NULL) {
        PyMem_RawFree(rows_module);
        return PyErr_NoMemory();
    }
    Py_INCREF(rows);
    Py_INCREF(on_error);
    rows_module->objects[0] = rows;
    rows_module->objects[1] = on_error;
    rows_module->columns = columns;
    rows_module->arguments = arguments;
    rows_module->required = required;
    int rc = sqlite3_create_module_v2(db, name, &rows_table_module, rows_module,
                                      rows_module_destroy);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "could not register %s (SQLite error %d)", name, rc);
        return NULL;
    }
    Py_RETURN_NONE;
}
