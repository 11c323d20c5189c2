/* Two of the PII stage's gates (transforms/pii/engine.py) as one pass each over a text's code
 * points, giving exactly the matches of their regexes' finditer:
 *
 * digit_runs(text): the spans of _DIGIT_RUN = r"\d[\d .\-/()+]{5,}\d". Within a maximal run of
 *   characters of the class C = [\d .\-/()+], the regex starts at the run's first digit, its
 *   greedy {5,} takes the rest of the run and backs off to the run's last digit, so it matches
 *   from the first to the last digit when at least 6 characters lie between their starts, and
 *   nothing else in that run (after the last digit no digit is left); a match never crosses a
 *   character outside C. \d is Unicode's decimal digits (the category _sre tests:
 *   Py_UNICODE_ISDECIMAL).
 * iban_hits(text): the spans of _IBAN_GATE =
 *   r"[0-9][0-9](?<=[A-Za-z][A-Za-z][0-9][0-9])[ \-]?[A-Za-z0-9]{4}", left to right and not
 *   overlapping: two ASCII digits after two ASCII letters, then an optional space or hyphen
 *   (tried first, as the greedy "?" does) and four ASCII letters or digits.
 *
 * Both regexes start with a character class, so the regex engine stops at every digit of a page;
 * these walks do not build a match object per stop either.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static inline int in_run_class(Py_UCS4 c) {
    return c == ' ' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')' || c == '+' ||
           (c < 128 ? (c >= '0' && c <= '9') : Py_UNICODE_ISDECIMAL(c));
}

static inline int is_decimal(Py_UCS4 c) {
    return c < 128 ? (c >= '0' && c <= '9') : Py_UNICODE_ISDECIMAL(c);
}

static int append_span(PyObject *out, Py_ssize_t start, Py_ssize_t end) {
    PyObject *span = Py_BuildValue("(nn)", start, end);
    if (span == NULL) return -1;
    int rc = PyList_Append(out, span);
    Py_DECREF(span);
    return rc;
}

static PyObject *digit_runs(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "digit_runs: text must be a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!is_decimal(c)) {
            i++;
            continue;
        }
        /* the first digit of a run of C (the characters before it in the run are not digits) */
        Py_ssize_t first = i, last = i;
        i++;
        while (i < n) {
            Py_UCS4 d = PyUnicode_READ(kind, data, i);
            if (!in_run_class(d)) break;
            if (is_decimal(d)) last = i;
            i++;
        }
        if (last - first >= 6 && append_span(out, first, last + 1) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static inline int ascii_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }
static inline int ascii_letter(Py_UCS4 c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static inline int ascii_alnum(Py_UCS4 c) { return ascii_digit(c) || ascii_letter(c); }

static PyObject *iban_hits(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "iban_hits: text must be a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
#define AT(k) PyUnicode_READ(kind, data, (k))
    Py_ssize_t i = 2;
    while (i + 1 < n) {
        if (!(ascii_digit(AT(i)) && ascii_digit(AT(i + 1)) && ascii_letter(AT(i - 1)) &&
              ascii_letter(AT(i - 2)))) {
            i++;
            continue;
        }
        Py_ssize_t j = i + 2, end = -1;
        if (j < n && (AT(j) == ' ' || AT(j) == '-')) {
            /* with the separator: four alphanumerics after it */
            Py_ssize_t k = j + 1;
            if (k + 4 <= n && ascii_alnum(AT(k)) && ascii_alnum(AT(k + 1)) && ascii_alnum(AT(k + 2)) &&
                ascii_alnum(AT(k + 3)))
                end = k + 4;
        }
        if (end < 0 && j + 4 <= n && ascii_alnum(AT(j)) && ascii_alnum(AT(j + 1)) &&
            ascii_alnum(AT(j + 2)) && ascii_alnum(AT(j + 3)))
            end = j + 4;
        if (end < 0) {
            i++;
            continue;
        }
        if (append_span(out, i, end) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        i = end; /* finditer goes on after the match (its lookbehind may read the match's end) */
    }
#undef AT
    return out;
}

static PyMethodDef methods[] = {
    {"digit_runs", digit_runs, METH_O, "digit_runs(text) -> list of the (start, end) of _DIGIT_RUN's matches"},
    {"iban_hits", iban_hits, METH_O, "iban_hits(text) -> list of the (start, end) of _IBAN_GATE's matches"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gates", NULL, -1, methods};

PyMODINIT_FUNC PyInit__gates(void) { return PyModule_Create(&module); }
