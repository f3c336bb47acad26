/* Values between SQLite and Python, results, and the error text of a Python exception,
 * for the scalar functions and the virtual table (the GIL is held unless said). */
#include "sqml.h"

PyObject *sqml_value_to_python(sqlite3_value *value) {
    switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_value_int64(value));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_value_double(value));
    case SQLITE_TEXT: {
        const char *text = (const char *)sqlite3_value_text(value);
        int size = sqlite3_value_bytes(value);
        if (text == NULL) return PyErr_NoMemory();
        return PyUnicode_DecodeUTF8(text, size, "replace");
    }
    case SQLITE_BLOB: {
        const void *blob = sqlite3_value_blob(value);
        int size = sqlite3_value_bytes(value);
        return PyBytes_FromStringAndSize(size ? (const char *)blob : "", size);
    }
    default:
        Py_RETURN_NONE;
    }
}

int sqml_set_result(sqlite3_context *context, PyObject *result) {
    if (result == Py_None) {
        sqlite3_result_null(context);
    } else if (PyUnicode_Check(result)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(result, &size);
        if (text == NULL) return -1;
        sqlite3_result_text64(context, text, (sqlite3_uint64)size, SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (PyLong_Check(result)) {
        long long number = PyLong_AsLongLong(result);
        if (number == -1 && PyErr_Occurred()) return -1;
        sqlite3_result_int64(context, number);
    } else if (PyFloat_Check(result)) {
        sqlite3_result_double(context, PyFloat_AS_DOUBLE(result));
    } else if (PyObject_CheckBuffer(result)) {
        Py_buffer view;
        if (PyObject_GetBuffer(result, &view, PyBUF_SIMPLE) < 0) return -1;
        sqlite3_result_blob64(context, view.len ? view.buf : "", (sqlite3_uint64)view.len,
                              SQLITE_TRANSIENT);
        PyBuffer_Release(&view);
    } else {
        PyErr_Format(PyExc_TypeError, "cannot return a %s to SQL", Py_TYPE(result)->tp_name);
        return -1;
    }
    return 0;
}

char *sqml_take_error(PyObject *on_error, const char *name, int *nomem) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    *nomem = type != NULL && PyErr_GivenExceptionMatches(type, PyExc_MemoryError);
    char *message = NULL;
    if (!*nomem && on_error != NULL && value != NULL) {
        PyObject *text = PyObject_CallOneArg(on_error, value);
        if (text != NULL && PyUnicode_Check(text)) {
            const char *utf8 = PyUnicode_AsUTF8(text);
            if (utf8 != NULL) message = sqlite3_mprintf("%s", utf8);
        }
        Py_XDECREF(text);
        PyErr_Clear();
    }
    if (message == NULL && !*nomem) {
        message = sqlite3_mprintf("%s: unexpected error in sqlite-ml", name);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return message;
}

/* Decrement references from a SQLite destructor. At interpreter shutdown (or after it)
 * Python objects are left alone: SQLite may close a connection after Python is gone. */
void sqml_release_objects(PyObject **objects, int count) {
    if (!Py_IsInitialized()) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    for (int i = 0; i < count; i++) Py_CLEAR(objects[i]);
    PyGILState_Release(gil);
}

