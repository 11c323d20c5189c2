/* The toxicity classifier's marked term ids of a (prepared, lower-cased) text in one pass over its
 * code points, without the regex's list of token strings: the same ids, in the same order, as
 *
 *     [lookup.get(t, unknown) for t in re.findall(r"\w\w+|\n|[.!?\u2026](?=\s)", text)]
 *
 * (transforms/toxicity/stage.py). Python's re classes a code point as \w when
 * Py_UNICODE_ISALNUM(c) or c == '_' and as \s when Py_UNICODE_ISSPACE(c) (Modules/_sre); the
 * three alternatives never start on the same character, so the matches are the maximal runs of
 * two or more word characters, every line break, and every sentence end followed by white space.
 * Returned as the bytes of an int64 array (native byte order).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static inline int is_word(Py_UCS4 c) { return c == '_' || Py_UNICODE_ISALNUM(c); }

typedef struct {
    int64_t *data;
    Py_ssize_t len, cap;
} Buffer;

static int push(Buffer *b, int64_t v) {
    if (b->len == b->cap) {
        Py_ssize_t cap = b->cap ? 2 * b->cap : 256;
        int64_t *grown = PyMem_Realloc(b->data, cap * sizeof(int64_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    b->data[b->len++] = v;
    return 0;
}

/* lookup.get(text[start:end], unknown) */
static int look_up(Buffer *b, PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *lookup,
                   int64_t unknown) {
    PyObject *token = PyUnicode_Substring(text, start, end);
    if (token == NULL) return -1;
    PyObject *value = PyDict_GetItemWithError(lookup, token); /* borrowed */
    Py_DECREF(token);
    if (value == NULL) {
        if (PyErr_Occurred()) return -1;
        return push(b, unknown);
    }
    int64_t id = PyLong_AsLongLong(value);
    if (id == -1 && PyErr_Occurred()) return -1;
    return push(b, id);
}

static PyObject *marked(PyObject *self, PyObject *args) {
    PyObject *text, *lookup;
    long long unknown;
    if (!PyArg_ParseTuple(args, "UO!L", &text, &PyDict_Type, &lookup, &unknown)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Buffer b = {NULL, 0, 0};
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_word(c)) {
            Py_ssize_t j = i + 1;
            while (j < n && is_word(PyUnicode_READ(kind, data, j))) j++;
            if (j - i >= 2 && look_up(&b, text, i, j, lookup, unknown) < 0) goto fail;
            i = j;
            continue;
        }
        if (c == '\n' || ((c == '.' || c == '!' || c == '?' || c == 0x2026) && i + 1 < n &&
                          Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i + 1)))) {
            if (look_up(&b, text, i, i + 1, lookup, unknown) < 0) goto fail;
        }
        i++;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)b.data, b.len * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(b.data);
    return out;
fail:
    PyMem_Free(b.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"marked", marked, METH_VARARGS,
     "marked(text, lookup, unknown) -> bytes: int64 ids of text's terms and break markers"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_terms", NULL, -1, methods};

PyMODINIT_FUNC PyInit__terms(void) { return PyModule_Create(&module); }
