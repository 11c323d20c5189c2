/* langdetect's n-gram walk and the naive Bayes log-sum over it, compiled (optional speed-up).
 *
 * Why C: the naive_bayes detector (naive_bayes.py) scores a text by summing, over every n-gram
 * langdetect's NGram buffer yields, the n-gram's row of log(alpha / 10000 + p(n-gram | language)).
 * In Python the walk costs three substring look-ups per character, and memoising each word's row
 * only helps where words repeat; on pages with many new words that cold path was most of the
 * stage's cost. Here one pass over the prepared text finds each n-gram's row in an integer hash
 * table (no substring objects) and adds the row into the sums directly.
 *
 * Exactness: the additions are the pure-Python path's, in its order. That path sums each word's
 * n-gram rows (in the walk's order, starting from the first row), then adds the words' sums in text
 * order, skipping words without n-grams; so does this, so the scores are the same floats, bit for
 * bit (tests/transforms/language/test_naive_bayes_compiled.py checks it on the dev pages).
 *
 * The walk (langdetect's NGram.add_char / get over " " + text, text already normalised): a word is
 * a run of characters other than U+0020; at each character of the word and at the one space after
 * it: skip when this and the previous character are both upper case (the "capital word" rule);
 * else the 1-gram (not a space), the 2-gram ending here and, from the word's second position on,
 * the 3-gram ending here, each kept only when the profiles have it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* One slot of the open-addressing table: code points packed 21 bits each, the n-gram's length
 * (0: empty slot) and its row in the log-probability table. */
typedef struct {
    uint64_t key;
    int32_t row;
    int32_t len;
} Slot;

static inline uint64_t pack3(Py_UCS4 a, Py_UCS4 b, Py_UCS4 c) {
    return ((uint64_t)a << 42) | ((uint64_t)b << 21) | (uint64_t)c;
}

static inline uint64_t mix(uint64_t key, int32_t len) {
    uint64_t x = key ^ ((uint64_t)len << 63) ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 29;
    return x;
}

/* The row of the n-gram (key, len), or -1 when the profiles do not have it. */
static inline int32_t find(const Slot *slots, uint64_t mask, uint64_t key, int32_t len) {
    uint64_t i = mix(key, len) & mask;
    for (;;) {
        const Slot *s = &slots[i];
        if (s->len == 0) return -1;
        if (s->key == key && s->len == len) return s->row;
        i = (i + 1) & mask;
    }
}

PyDoc_STRVAR(build_table_doc,
"build_table(grams: dict[str, int]) -> bytes\n\n"
"The n-grams (1 to 3 characters) and their rows as the hash table score() reads.");

static PyObject *build_table(PyObject *self, PyObject *arg) {
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "build_table: expected a dict of n-gram -> row");
        return NULL;
    }
    Py_ssize_t n = PyDict_Size(arg);
    uint64_t size = 1024;
    while (size < (uint64_t)n * 3) size <<= 1; /* load factor at most 1/3: short probes */
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(size * sizeof(Slot)));
    if (!out) return NULL;
    Slot *slots = (Slot *)PyBytes_AS_STRING(out);
    memset(slots, 0, size * sizeof(Slot));
    const uint64_t mask = size - 1;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(arg, &pos, &k, &v)) {
        if (!PyUnicode_Check(k) || !PyLong_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "build_table: keys must be str and rows int");
            goto fail;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        long row = PyLong_AsLong(v);
        if (row == -1 && PyErr_Occurred()) goto fail;
        if (len < 1 || len > 3 || row < 0 || row > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "build_table: n-gram %R (row %ld) is not 1-3 characters "
                         "with a row in 0..2**31-1", k, row);
            goto fail;
        }
        Py_UCS4 c[3] = {0, 0, 0};
        for (Py_ssize_t i = 0; i < len; i++) c[3 - len + i] = PyUnicode_READ_CHAR(k, i);
        uint64_t key = pack3(c[0], c[1], c[2]);
        uint64_t i = mix(key, (int32_t)len) & mask;
        while (slots[i].len != 0 && !(slots[i].key == key && slots[i].len == len)) i = (i + 1) & mask;
        slots[i].key = key;
        slots[i].len = (int32_t)len;
        slots[i].row = (int32_t)row;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(score_doc,
"score(text: str, table: bytes, logs, out) -> int\n\n"
"Sum into ``out`` (float64, one per language, overwritten) the rows of ``logs`` (C-contiguous\n"
"float64, one row per n-gram) of every n-gram langdetect's walk yields over ``text`` (prepared\n"
"and normalised), in the pure-Python path's order. Returns how many n-grams were found.");

static PyObject *score(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer table, logs, out;
    if (!PyArg_ParseTuple(args, "Uy*y*w*", &text, &table, &logs, &out)) return NULL;
    PyObject *result = NULL;
    double *word = NULL;
    const Py_ssize_t n_lang = out.len / (Py_ssize_t)sizeof(double);
    const uint64_t size = (uint64_t)table.len / sizeof(Slot);
    if (n_lang < 1 || out.len % (Py_ssize_t)sizeof(double) || logs.len % (n_lang * (Py_ssize_t)sizeof(double))
        || size == 0 || (size & (size - 1)) || table.len % (Py_ssize_t)sizeof(Slot)) {
        PyErr_SetString(PyExc_ValueError, "score: table, logs and out do not fit together");
        goto done;
    }
    const Slot *slots = (const Slot *)table.buf;
    const uint64_t mask = size - 1;
    const double *rows = (const double *)logs.buf;
    const Py_ssize_t n_rows = logs.len / (n_lang * (Py_ssize_t)sizeof(double));
    double *acc = (double *)out.buf;
    word = (double *)PyMem_Malloc((size_t)n_lang * sizeof(double));
    if (!word) {
        PyErr_NoMemory();
        goto done;
    }
    memset(acc, 0, (size_t)n_lang * sizeof(double));

    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    long long found = 0;
    Py_ssize_t word_grams = 0;  /* n-grams found in the current word */
    Py_UCS4 pp = 0, p = ' ';    /* the two characters before the current one (" " + text) */
    int p_upper = 0;
    Py_ssize_t pos_in_word = 0; /* 1 at a word's first character */

    for (Py_ssize_t j = 0; j < n; j++) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, j);
        if (ch == ' ' && p == ' ') { /* an empty word: nothing */
            pp = p;
            continue;
        }
        if (p == ' ') { /* a word starts */
            pos_in_word = 0;
            word_grams = 0;
        }
        pos_in_word++;
        const int upper = ch != ' ' && Py_UNICODE_ISUPPER(ch);
        if (!(upper && p_upper)) {
            int32_t r[3];
            int k = 0;
            if (ch != ' ') r[k++] = find(slots, mask, pack3(0, 0, ch), 1);
            r[k++] = find(slots, mask, pack3(0, p, ch), 2);
            if (pos_in_word >= 2) r[k++] = find(slots, mask, pack3(pp, p, ch), 3);
            for (int t = 0; t < k; t++) {
                if (r[t] < 0) continue;
                if (r[t] >= n_rows) {
                    PyErr_SetString(PyExc_ValueError, "score: a row of the table is outside logs");
                    goto done;
                }
                const double *row = rows + (Py_ssize_t)r[t] * n_lang;
                if (word_grams == 0)
                    memcpy(word, row, (size_t)n_lang * sizeof(double));
                else
                    for (Py_ssize_t l = 0; l < n_lang; l++) word[l] += row[l];
                word_grams++;
            }
        }
        if (ch == ' ' && word_grams) { /* the word ends with the space after it */
            if (found == 0)
                memcpy(acc, word, (size_t)n_lang * sizeof(double));
            else
                for (Py_ssize_t l = 0; l < n_lang; l++) acc[l] += word[l];
            found += word_grams;
            word_grams = 0;
        }
        pp = p;
        p = ch;
        p_upper = upper;
    }
    if (word_grams) { /* the last word, with no space after it */
        if (found == 0)
            memcpy(acc, word, (size_t)n_lang * sizeof(double));
        else
            for (Py_ssize_t l = 0; l < n_lang; l++) acc[l] += word[l];
        found += word_grams;
    }
    result = PyLong_FromLongLong(found);
done:
    PyMem_Free(word);
    PyBuffer_Release(&table);
    PyBuffer_Release(&logs);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(latin_counts_doc,
"latin_counts(text: str) -> tuple[int, int]\n\n"
"How many characters of ``text`` are in [A-z] and how many are langdetect's non-Latin (U+0300 and\n"
"above, outside U+1E00-U+1EFF): the two findall counts of its cleaning_text, in one pass.");

static PyObject *latin_counts(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "latin_counts: expected a str");
        return NULL;
    }
    const int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    Py_ssize_t latin = 0, non_latin = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch >= 'A' && ch <= 'z')
            latin++;
        else if (ch >= 0x300 && !(ch >= 0x1E00 && ch <= 0x1EFF))
            non_latin++;
    }
    return Py_BuildValue("nn", latin, non_latin);
}

static PyMethodDef methods[] = {
    {"build_table", build_table, METH_O, build_table_doc},
    {"score", score, METH_VARARGS, score_doc},
    {"latin_counts", latin_counts, METH_O, latin_counts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ngrams",
    "langdetect's n-gram walk and naive Bayes log-sum, compiled (see naive_bayes.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__ngrams(void) { return PyModule_Create(&module); }
