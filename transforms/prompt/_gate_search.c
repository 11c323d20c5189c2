/* The prompt stage's gate test, compiled (optional speed-up).
 *
 * Why C: a gate clause is a set of literals one of which must occur in the document. CPython's
 * `in` searches a 6 KB page at ~1.5 GB/s, and a page is searched for ~15 literals; glibc's memmem
 * is several times faster per literal, and one call here tests a whole clause without a Python-level
 * loop. The answer is the same as `any(lit in haystack for lit in literals)` (tests/transforms/
 * prompt/test_gates.py runs the scanner with and without this module).
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <Python.h>
#include <string.h>

/* any_in(haystack: bytes, literals: tuple[bytes, ...]) -> bool */
static PyObject *any_in(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "any_in(haystack: bytes, literals: tuple[bytes, ...])");
        return NULL;
    }
    const char *hay = PyBytes_AS_STRING(args[0]);
    size_t hay_len = (size_t)PyBytes_GET_SIZE(args[0]);
    Py_ssize_t n = PyTuple_GET_SIZE(args[1]);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *lit = PyTuple_GET_ITEM(args[1], i);
        if (!PyBytes_Check(lit)) {
            PyErr_SetString(PyExc_TypeError, "any_in: literals must be bytes");
            return NULL;
        }
        size_t m = (size_t)PyBytes_GET_SIZE(lit);
        if (m == 0 || (m <= hay_len && memmem(hay, hay_len, PyBytes_AS_STRING(lit), m) != NULL)) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"any_in", (PyCFunction)(void (*)(void))any_in, METH_FASTCALL,
     "Whether any of the literals (a tuple of bytes) occurs in the haystack (bytes)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gate_search", NULL, -1, methods};

PyMODINIT_FUNC PyInit__gate_search(void) { return PyModule_Create(&module); }
