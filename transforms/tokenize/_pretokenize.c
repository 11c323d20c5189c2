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

enum { EMIT_IDS, EMIT_WORDS, EMIT_SPANS };

/* Appends what `emit` asks for of the pre-token text[start:end] to out: its ids from cache, the
 * word, or its span. Returns 0, 1 when the word is not in cache (EMIT_IDS), -1 on error. */
static int emit_token(PyObject *out, PyObject *text, Py_ssize_t start, Py_ssize_t end, int emit,
                      PyObject *cache) {
    if (emit == EMIT_SPANS) {
        PyObject *span = Py_BuildValue("(nn)", start, end);
        if (!span) return -1;
        int rc = PyList_Append(out, span);
        Py_DECREF(span);
        return rc;
    }
    PyObject *word = PyUnicode_Substring(text, start, end);
    if (!word) return -1;
    if (emit == EMIT_WORDS) {
        int rc = PyList_Append(out, word);
        Py_DECREF(word);
        return rc;
    }
    PyObject *ids = PyDict_GetItemWithError(cache, word); /* borrowed */
    Py_DECREF(word);
    if (!ids) return PyErr_Occurred() ? -1 : 1;
    if (!PyTuple_Check(ids)) {
        PyErr_SetString(PyExc_TypeError, "cached ids must be tuples");
        return -1;
    }
    for (Py_ssize_t k = 0, m = PyTuple_GET_SIZE(ids); k < m; k++) {
        if (PyList_Append(out, PyTuple_GET_ITEM(ids, k)) < 0) return -1;
    }
    return 0;
}

/* One pass over text: a list of what `emit` asks for, None when a pre-token is not cached
 * (EMIT_IDS), an int when a character stops the scan (see above), NULL on error. */
static PyObject *scan(PyObject *text, Py_buffer *table, int emit, PyObject *cache) {
    Scanner s;
    if (init_scanner(&s, text, table) < 0) return NULL;
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    Py_ssize_t i = 0;
    while (i < s.n) {
        Py_ssize_t end = token_end(&s, i);
        if (end < 0) {
            Py_DECREF(out);
            return stopped(&s);
        }
        int rc = emit_token(out, text, i, end, emit, cache);
        if (rc != 0) {
            Py_DECREF(out);
            if (rc < 0) return NULL;
            Py_RETURN_NONE;
        }
        i = end;
    }
    return out;
}

/* lookup(text, table, cache) -> list[int] | None | int
 * The ids of text from cache (str -> tuple of ids), in order; None when a pre-token is not in the
 * cache; an int when a character stops the scan (see above). */
static PyObject *lookup(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text, *cache;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*O!", &text, &table, &PyDict_Type, &cache)) return NULL;
    PyObject *out = scan(text, &table, EMIT_IDS, cache);
    PyBuffer_Release(&table);
    return out;
}

/* Shared by words() and spans(). */
static PyObject *split(PyObject *args, int emit) {
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*", &text, &table)) return NULL;
    PyObject *out = scan(text, &table, emit, NULL);
    PyBuffer_Release(&table);
    return out;
}

/* words(text, table) -> list[str] | int: the pre-tokens of text. */
static PyObject *words(PyObject *Py_UNUSED(self), PyObject *args) { return split(args, EMIT_WORDS); }

/* spans(text, table) -> list[tuple[int, int]] | int: where the pre-tokens of text are. */
static PyObject *spans(PyObject *Py_UNUSED(self), PyObject *args) { return split(args, EMIT_SPANS); }

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
