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

/* ASCII word characters ([0-9A-Za-z_]: what Py_UNICODE_ISALNUM says below 128), looked up in a table:
 * Py_UNICODE_ISALNUM is four calls into the Unicode database per code point. */
static const unsigned char ascii_word[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['_'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
    ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static inline int is_word(Py_UCS4 c) { return c < 128 ? ascii_word[c] : Py_UNICODE_ISALNUM(c); }

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

/* ---- TermTable: the look-up as a C hash table over code points ------------------------------
 * The dict look-up above builds a str object per token (allocation, hashing, freeing: most of the
 * scan's time on web text). A TermTable holds the same keys as code-point arrays in an open
 * addressing table; the scan hashes a token's code points while it walks them and compares a
 * candidate key in place, so no object is made per token. Keys and values are those of the dict
 * it was built from (a str key equals a token exactly when their code points are equal, which is
 * what the table compares), so the ids are the dict's, bit for bit. */

typedef struct {
    uint64_t hash;
    Py_ssize_t off, len;
    int64_t value;
} Entry;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, mask;
    Py_ssize_t *slots; /* entry index + 1; 0: empty */
    Entry *entries;
    Py_UCS4 *chars;
} TermTable;

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t fnv_step(uint64_t h, Py_UCS4 c) { return (h ^ (uint64_t)c) * FNV_PRIME; }

static void table_dealloc(TermTable *t) {
    PyMem_Free(t->slots);
    PyMem_Free(t->entries);
    PyMem_Free(t->chars);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int table_init(TermTable *t, PyObject *args, PyObject *kwds) {
    PyObject *lookup;
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &lookup)) return -1;
    if (t->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TermTable is already initialised");
        return -1;
    }
    Py_ssize_t n = 0, total = 0, pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(lookup, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) continue; /* a token (a str) never equals a key of another type */
        n++;
        total += PyUnicode_GET_LENGTH(key);
    }
    Py_ssize_t cap = 8;
    while (cap < 2 * n) cap *= 2;
    t->slots = PyMem_Calloc(cap, sizeof(Py_ssize_t));
    t->entries = PyMem_Malloc((n ? n : 1) * sizeof(Entry));
    t->chars = PyMem_Malloc((total ? total : 1) * sizeof(Py_UCS4));
    if (t->slots == NULL || t->entries == NULL || t->chars == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->mask = cap - 1;
    t->n = 0;
    Py_ssize_t off = 0;
    pos = 0;
    while (PyDict_Next(lookup, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) continue;
        int64_t v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred()) return -1;
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        int kind = PyUnicode_KIND(key);
        const void *data = PyUnicode_DATA(key);
        uint64_t h = FNV_OFFSET;
        for (Py_ssize_t i = 0; i < len; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            t->chars[off + i] = c;
            h = fnv_step(h, c);
        }
        Entry *e = &t->entries[t->n];
        e->hash = h;
        e->off = off;
        e->len = len;
        e->value = v;
        off += len;
        Py_ssize_t idx = (Py_ssize_t)(h & (uint64_t)t->mask);
        while (t->slots[idx]) idx = (idx + 1) & t->mask; /* dict keys are distinct: no update */
        t->slots[idx] = ++t->n;
    }
    return 0;
}

/* The value of text[start:end] (hash h of its code points), or `unknown`. */
static inline int64_t table_get(const TermTable *t, int kind, const void *data, Py_ssize_t start,
                                Py_ssize_t end, uint64_t h, int64_t unknown) {
    Py_ssize_t len = end - start;
    Py_ssize_t idx = (Py_ssize_t)(h & (uint64_t)t->mask);
    Py_ssize_t s;
    while ((s = t->slots[idx]) != 0) {
        const Entry *e = &t->entries[s - 1];
        if (e->hash == h && e->len == len) {
            const Py_UCS4 *k = t->chars + e->off;
            Py_ssize_t i = 0;
            while (i < len && k[i] == PyUnicode_READ(kind, data, start + i)) i++;
            if (i == len) return e->value;
        }
        idx = (idx + 1) & t->mask;
    }
    return unknown;
}

/* One text's marked ids, appended to b: the same walk as marked() above. */
static int scan_into(const TermTable *t, PyObject *text, int64_t unknown, Buffer *b) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_word(c)) {
            uint64_t h = fnv_step(FNV_OFFSET, c);
            Py_ssize_t j = i + 1;
            while (j < n) {
                Py_UCS4 d = PyUnicode_READ(kind, data, j);
                if (!is_word(d)) break;
                h = fnv_step(h, d);
                j++;
            }
            if (j - i >= 2 && push(b, table_get(t, kind, data, i, j, h, unknown)) < 0) return -1;
            i = j;
            continue;
        }
        if (c == '\n' || ((c == '.' || c == '!' || c == '?' || c == 0x2026) && i + 1 < n &&
                          Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i + 1)))) {
            if (push(b, table_get(t, kind, data, i, i + 1, fnv_step(FNV_OFFSET, c), unknown)) < 0)
                return -1;
        }
        i++;
    }
    return 0;
}

static PyObject *table_marked_many(TermTable *t, PyObject *args) {
    PyObject *texts;
    long long unknown, doc;
    if (!PyArg_ParseTuple(args, "OLL", &texts, &unknown, &doc)) return NULL;
    if (t->slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TermTable was not initialised");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(texts, "marked_many: texts must be a sequence of str");
    if (seq == NULL) return NULL;
    Buffer b = {NULL, 0, 0};
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t k = 0; k < m; k++) {
        if (!PyUnicode_Check(items[k])) {
            PyErr_SetString(PyExc_TypeError, "marked_many: texts must be a sequence of str");
            goto fail;
        }
        if (scan_into(t, items[k], unknown, &b) < 0 || push(&b, doc) < 0) goto fail;
    }
    Py_DECREF(seq);
    PyObject *out = PyBytes_FromStringAndSize((const char *)b.data, b.len * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(b.data);
    return out;
fail:
    Py_DECREF(seq);
    PyMem_Free(b.data);
    return NULL;
}

static Py_ssize_t table_len(TermTable *t) { return t->n; }

static PyMethodDef table_methods[] = {
    {"marked_many", (PyCFunction)table_marked_many, METH_VARARGS,
     "marked_many(texts, unknown, doc) -> bytes: int64 ids of every text's terms and break "
     "markers (as marked() with the table's dict), each text followed by doc"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods table_as_sequence = {.sq_length = (lenfunc)table_len};

static PyTypeObject TermTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "corpusforge.transforms.toxicity._terms.TermTable",
    .tp_basicsize = sizeof(TermTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TermTable(lookup: dict[str, int]): the dict's str keys as a C hash table",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)table_init,
    .tp_dealloc = (destructor)table_dealloc,
    .tp_methods = table_methods,
    .tp_as_sequence = &table_as_sequence,
};

/* Where a masked word may start in lower-cased text (transforms/toxicity/text.py, Unmasker): the
 * positions i >= 1 of a mask or leet character ([*#$@!%0134], the first class of its _HINT
 * pattern) right after an ASCII lower-case letter, in order. Every _HINT match the Unmasker acts
 * on starts at one of them, and none of them is inside an earlier match (a match is made of mask
 * characters and ends at the first letter after them), so trying _HINT.match at each gives the
 * same matches as its finditer, without stopping at every digit of the text. */
static PyObject *hint_starts(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "hint_starts: text must be a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_UCS4 prev = n ? PyUnicode_READ(kind, data, 0) : 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (prev >= 'a' && prev <= 'z' &&
            (c == '*' || c == '#' || c == '$' || c == '@' || c == '!' || c == '%' || c == '0' ||
             c == '1' || c == '3' || c == '4')) {
            PyObject *pos = PyLong_FromSsize_t(i);
            if (pos == NULL || PyList_Append(out, pos) < 0) {
                Py_XDECREF(pos);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(pos);
        }
        prev = c;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"marked", marked, METH_VARARGS,
     "marked(text, lookup, unknown) -> bytes: int64 ids of text's terms and break markers"},
    {"hint_starts", hint_starts, METH_O,
     "hint_starts(text) -> list[int]: positions of a mask or leet character after a letter a-z"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_terms", NULL, -1, methods};

PyMODINIT_FUNC PyInit__terms(void) {
    if (PyType_Ready(&TermTableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&TermTableType);
    if (PyModule_AddObject(m, "TermTable", (PyObject *)&TermTableType) < 0) {
        Py_DECREF(&TermTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
