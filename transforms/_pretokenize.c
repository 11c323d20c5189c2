/* GPT-2 byte-level pre-tokenization and word-cache look-up, compiled (optional speed-up).
 *
 * Why C: for a byte-level BPE tokenizer the word cache (word_cache.py) turns tokenization into
 * "split the text into GPT-2 pre-tokens, look each one up in a dict, concatenate the ids". In
 * Python that is a regex findall plus a map/chain per word: about 350 us per web page, most of
 * the stage's cost. Here one pass over the string does both, with no intermediate list.
 *
 * Semantics: the GPT-2 pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * over characters whose class (letter, number, white space, other) is read from a 0x110000-byte
 * table the caller owns. A zero entry means "not checked yet": the functions stop and return the
 * code point so the caller can check the character against the library's own pre-tokenizer and
 * fill the entry. An entry of CLASS_REFUSED (the library splits it otherwise) returns -1: the
 * caller hands the text to the library. Nothing here decides a class: exactness is the caller's
 * (word_cache.py probes every character and self-checks whole texts before use).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { CLASS_UNCHECKED = 0, CLASS_LETTER = 1, CLASS_NUMBER = 2, CLASS_OTHER = 3, CLASS_SPACE = 4,
       CLASS_REFUSED = 5 };

#define TABLE_SIZE 0x110000

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
    const unsigned char *table;
    Py_UCS4 stopped_at;  /* the code point that stopped the scan (unchecked or refused) */
    int stop;            /* 0: none, CLASS_UNCHECKED + 1: unchecked, CLASS_REFUSED: refused */
} Scanner;

/* The class of the character at i; sets s->stop and returns 0 when it is unchecked or refused. */
static inline int class_at(Scanner *s, Py_ssize_t i) {
    Py_UCS4 ch = PyUnicode_READ(s->kind, s->data, i);
    int c = s->table[ch];
    if (c == CLASS_UNCHECKED || c == CLASS_REFUSED) {
        s->stop = (c == CLASS_UNCHECKED) ? 1 : CLASS_REFUSED;
        s->stopped_at = ch;
        return 0;
    }
    return c;
}

/* The end of the pre-token that starts at i (> i), or -1 when a character stops the scan. */
static Py_ssize_t token_end(Scanner *s, Py_ssize_t i) {
    const Py_ssize_t n = s->n;
    Py_UCS4 ch = PyUnicode_READ(s->kind, s->data, i);
    int c = class_at(s, i);
    if (!c) return -1;
    if (ch == '\'' && i + 1 < n) {  /* contractions, tried first where they can start */
        Py_UCS4 c1 = PyUnicode_READ(s->kind, s->data, i + 1);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return class_at(s, i + 1) ? i + 2 : -1;
        if (i + 2 < n) {
            Py_UCS4 c2 = PyUnicode_READ(s->kind, s->data, i + 2);
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return class_at(s, i + 1) && class_at(s, i + 2) ? i + 3 : -1;
        }
    }
    Py_ssize_t j = i;
    if (ch == ' ' && i + 1 < n) {  /* " ?" before a letter, number or other run */
        int next = class_at(s, i + 1);
        if (!next) return -1;
        if (next != CLASS_SPACE) {
            j = i + 1;
            c = next;
        }
    }
    if (c != CLASS_SPACE) {
        Py_ssize_t end = j + 1;
        while (end < n) {
            int ce = class_at(s, end);
            if (!ce) return -1;
            if (ce != c) break;
            end++;
        }
        return end;
    }
    /* white space: \s+(?!\S) takes the run, less its last character when text follows; a lone
       white-space character before text is \s+ */
    Py_ssize_t end = i + 1;
    while (end < n) {
        int ce = class_at(s, end);
        if (!ce) return -1;
        if (ce != CLASS_SPACE) break;
        end++;
    }
    if (end < n && end - i >= 2) return end - 1;
    return end;
}

static int init_scanner(Scanner *s, PyObject *text, Py_buffer *table) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return -1;  /* legacy strings (before 3.12) */
#endif
    if (table->len < TABLE_SIZE) {
        PyErr_SetString(PyExc_ValueError, "the class table must have 0x110000 entries");
        return -1;
    }
    s->kind = PyUnicode_KIND(text);
    s->data = PyUnicode_DATA(text);
    s->n = PyUnicode_GET_LENGTH(text);
    s->table = (const unsigned char *)table->buf;
    s->stop = 0;
    s->stopped_at = 0;
    return 0;
}

/* What a stopped scan returns: the unchecked code point, or -1 for a refused character. */
static PyObject *stopped(Scanner *s) {
    return PyLong_FromLong(s->stop == CLASS_REFUSED ? -1L : (long)s->stopped_at);
}

/* lookup(text, table, cache) -> list[int] | None | int
 * The ids of text from cache (str -> tuple of ids), in order; None when a pre-token is not in the
 * cache; an int when a character stops the scan (see above). */
static PyObject *lookup(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text, *cache;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*O!", &text, &table, &PyDict_Type, &cache)) return NULL;
    Scanner s;
    if (init_scanner(&s, text, &table) < 0) {
        PyBuffer_Release(&table);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (!out) {
        PyBuffer_Release(&table);
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < s.n) {
        Py_ssize_t end = token_end(&s, i);
        if (end < 0) {
            Py_DECREF(out);
            PyBuffer_Release(&table);
            return stopped(&s);
        }
        PyObject *word = PyUnicode_Substring(text, i, end);
        if (!word) goto error;
        PyObject *ids = PyDict_GetItemWithError(cache, word);  /* borrowed */
        Py_DECREF(word);
        if (!ids) {
            if (PyErr_Occurred()) goto error;
            Py_DECREF(out);
            PyBuffer_Release(&table);
            Py_RETURN_NONE;
        }
        if (!PyTuple_Check(ids)) {
            PyErr_SetString(PyExc_TypeError, "cached ids must be tuples");
            goto error;
        }
        Py_ssize_t m = PyTuple_GET_SIZE(ids);
        for (Py_ssize_t k = 0; k < m; k++) {
            if (PyList_Append(out, PyTuple_GET_ITEM(ids, k)) < 0) goto error;
        }
        i = end;
    }
    PyBuffer_Release(&table);
    return out;
error:
    Py_DECREF(out);
    PyBuffer_Release(&table);
    return NULL;
}

/* Shared by words() and spans(): the pre-tokens as str (as_spans = 0) or (start, end) tuples. */
static PyObject *split(PyObject *args, int as_spans) {
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*", &text, &table)) return NULL;
    Scanner s;
    if (init_scanner(&s, text, &table) < 0) {
        PyBuffer_Release(&table);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (!out) {
        PyBuffer_Release(&table);
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < s.n) {
        Py_ssize_t end = token_end(&s, i);
        if (end < 0) {
            Py_DECREF(out);
            PyBuffer_Release(&table);
            return stopped(&s);
        }
        PyObject *item = as_spans ? Py_BuildValue("(nn)", i, end) : PyUnicode_Substring(text, i, end);
        if (!item || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            PyBuffer_Release(&table);
            return NULL;
        }
        Py_DECREF(item);
        i = end;
    }
    PyBuffer_Release(&table);
    return out;
}

/* words(text, table) -> list[str] | int: the pre-tokens of text. */
static PyObject *words(PyObject *Py_UNUSED(self), PyObject *args) { return split(args, 0); }

/* spans(text, table) -> list[tuple[int, int]] | int: where the pre-tokens of text are. */
static PyObject *spans(PyObject *Py_UNUSED(self), PyObject *args) { return split(args, 1); }

static PyMethodDef methods[] = {
    {"lookup", lookup, METH_VARARGS, "The ids of text's pre-tokens from the cache (see module doc)."},
    {"words", words, METH_VARARGS, "The pre-tokens of text."},
    {"spans", spans, METH_VARARGS, "The (start, end) of each pre-token of text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pretokenize",
    "GPT-2 pre-tokenization and word-cache look-up over a caller-owned character-class table.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pretokenize(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "UNCHECKED", CLASS_UNCHECKED) < 0 ||
        PyModule_AddIntConstant(m, "LETTER", CLASS_LETTER) < 0 ||
        PyModule_AddIntConstant(m, "NUMBER", CLASS_NUMBER) < 0 ||
        PyModule_AddIntConstant(m, "OTHER", CLASS_OTHER) < 0 ||
        PyModule_AddIntConstant(m, "SPACE", CLASS_SPACE) < 0 ||
        PyModule_AddIntConstant(m, "REFUSED", CLASS_REFUSED) < 0 ||
        PyModule_AddIntConstant(m, "TABLE_SIZE", TABLE_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
