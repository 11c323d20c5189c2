/* The bias stage's per-word pass over a document, compiled (optional speed-up).
 *
 * Why C: the stage (stage.py) splits every line of a document's prepared bytes into words and tests
 * the line's words against the lexicon; only lines holding a lexicon word go further (mention
 * counts, toxic-unit scoring). Building one bytes object per word was most of the stage's cost, yet
 * only a few lines per document hold a mention. Here one pass over the prepared bytes counts the
 * words and finds those lines without creating an object per word: each word is hashed in place
 * (a constant cost per word) and tested against a bit filter of the lexicon words' hashes; only on a filter hit is a bytes
 * object made and looked up in the lexicon's key set, so the answer is exact.
 *
 * Exactness: words are what ``bytes.split()`` gives inside each ``b"\n"``-separated line (runs of
 * bytes other than ASCII whitespace, the set CPython's bytes.split uses), so the word count and the
 * lines found are the pure-Python path's; so are the sentences of a long line (a sentence ends at
 * each '.', '!' or '?', which preparation makes a space, so a sentence's words are its span's
 * words). The pure-Python path stays as the fallback (tests/transforms/bias/test_bias_compiled.py
 * checks both paths agree).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Filter size in bits: 2^16 bits (8 KiB) keep false hits rare for a lexicon of a few hundred words. */
#define FILTER_BITS 16
#define FILTER_BYTES (1u << (FILTER_BITS - 3))

static inline int is_space(unsigned char c) {
    /* CPython's Py_ISSPACE for bytes: space, \t, \n, \v, \f, \r. */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline uint64_t word_hash(const unsigned char *p, Py_ssize_t n) {
    /* The first and the last (up to) 8 bytes and the length, mixed by one multiply: a constant
     * cost per word (the filter only pre-selects; the set test decides). */
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
    } else {
        memcpy(&a, p, (size_t)n);
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)n) * 0xFF51AFD7ED558CCDULL;
    return h ^ (h >> 32);
}

static inline void set_bit(unsigned char *filter, uint64_t h) {
    uint32_t b = (uint32_t)(h & ((1u << FILTER_BITS) - 1));
    filter[b >> 3] |= (unsigned char)(1u << (b & 7));
}

static inline int has_bit(const unsigned char *filter, uint64_t h) {
    uint32_t b = (uint32_t)(h & ((1u << FILTER_BITS) - 1));
    return (filter[b >> 3] >> (b & 7)) & 1;
}

PyDoc_STRVAR(build_filter_doc,
             "build_filter(words) -> bytes\n\n"
             "The bit filter of an iterable of bytes words, for scan().");

static PyObject *build_filter(PyObject *self, PyObject *words) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, FILTER_BYTES);
    if (out == NULL) return NULL;
    unsigned char *filter = (unsigned char *)PyBytes_AS_STRING(out);
    memset(filter, 0, FILTER_BYTES);
    PyObject *it = PyObject_GetIter(words);
    if (it == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *w;
    while ((w = PyIter_Next(it)) != NULL) {
        if (!PyBytes_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "build_filter: words must be bytes");
            Py_DECREF(w);
            Py_DECREF(it);
            Py_DECREF(out);
            return NULL;
        }
        set_bit(filter, word_hash((const unsigned char *)PyBytes_AS_STRING(w), PyBytes_GET_SIZE(w)));
        Py_DECREF(w);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* Whether the word p[0:n] is in keys: the filter first, the exact set test on a hit. -1: error. */
static inline int is_key(const unsigned char *p, Py_ssize_t n, const unsigned char *filter, PyObject *keys) {
    if (!has_bit(filter, word_hash(p, n))) return 0;
    PyObject *w = PyBytes_FromStringAndSize((const char *)p, n);
    if (w == NULL) return -1;
    int r = PySet_Contains(keys, w);
    Py_DECREF(w);
    return r;
}

/* Whether p[a:b] holds a word of keys; -1: error. */
static int span_has_key(const unsigned char *p, Py_ssize_t a, Py_ssize_t b, const unsigned char *filter,
                        PyObject *keys) {
    Py_ssize_t i = a;
    while (1) {
        while (i < b && is_space(p[i])) i++;
        if (i >= b) return 0;
        Py_ssize_t start = i;
        while (i < b && !is_space(p[i])) i++;
        int r = is_key(p + start, i - start, filter, keys);
        if (r != 0) return r;
    }
}

/* The sentences of the long line prepared[a:b] holding a key, as a list of (start, end): a sentence
 * ends at each byte that is ".", "!" or "?" in the text before preparation (``raw``, the same
 * length: preparation maps byte to byte). NULL: error. */
static PyObject *key_sentences(const unsigned char *p, const unsigned char *raw, Py_ssize_t a, Py_ssize_t b,
                               const unsigned char *filter, PyObject *keys) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t s = a;
    while (s <= b) {
        Py_ssize_t e = s;
        while (e < b && raw[e] != '.' && raw[e] != '!' && raw[e] != '?') e++;
        int r = span_has_key(p, s, e, filter, keys);
        if (r < 0) goto fail;
        if (r) {
            PyObject *t = Py_BuildValue("(nn)", s, e);
            if (t == NULL || PyList_Append(out, t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
        }
        s = e + 1;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(scan_doc,
             "scan(prepared, raw, filter, keys, limit) -> (n_words, [(line, start, end, sentences), ...])\n\n"
             "The number of words in ``prepared`` (what sum(len(l.split()) for l in\n"
             "prepared.split(b'\\n')) gives) and, for each line holding at least one word of the set\n"
             "``keys`` (``filter`` from build_filter(keys)), its index and byte span; ``sentences`` is\n"
             "None for a line of at most ``limit`` words, else the (start, end) spans of its sentences\n"
             "holding a key, a sentence ending at each '.', '!' or '?' of ``raw`` (the bytes\n"
             "``prepared`` was translated from, the same length).");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer text, rawbuf, filt;
    PyObject *keys;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*y*y*On", &text, &rawbuf, &filt, &keys, &limit)) return NULL;
    PyObject *hits = NULL;
    if (filt.len != FILTER_BYTES || !PyAnySet_Check(keys) || rawbuf.len != text.len) {
        PyErr_SetString(PyExc_ValueError,
                        "scan: filter must come from build_filter, keys must be a set, raw as long as prepared");
        goto done;
    }
    hits = PyList_New(0);
    if (hits == NULL) goto done;
    const unsigned char *s = (const unsigned char *)text.buf;
    const unsigned char *raw = (const unsigned char *)rawbuf.buf;
    const unsigned char *filter = (const unsigned char *)filt.buf;
    Py_ssize_t n = text.len, i = 0, line = 0, line_start = 0, n_words = 0, line_words = 0;
    int line_hit = 0;
    while (1) {
        /* Skip separators, closing the line at each \n (and at the end of the text). */
        while (i < n && is_space(s[i]) && s[i] != '\n') i++;
        if (i >= n || s[i] == '\n') {
            if (line_hit) {
                PyObject *sentences = Py_None;
                Py_INCREF(Py_None);
                if (line_words > limit) {
                    Py_DECREF(Py_None);
                    sentences = key_sentences(s, raw, line_start, i, filter, keys);
                    if (sentences == NULL) {
                        Py_CLEAR(hits);
                        goto done;
                    }
                }
                PyObject *t = Py_BuildValue("(nnnN)", line, line_start, i, sentences);
                if (t == NULL || PyList_Append(hits, t) < 0) {
                    Py_XDECREF(t);
                    Py_CLEAR(hits);
                    goto done;
                }
                Py_DECREF(t);
            }
            if (i >= n) break;
            i++;
            line++;
            line_start = i;
            line_hit = 0;
            line_words = 0;
            continue;
        }
        Py_ssize_t start = i;
        while (i < n && !is_space(s[i])) i++;
        n_words++;
        line_words++;
        if (!line_hit) {
            int r = is_key(s + start, i - start, filter, keys);
            if (r < 0) {
                Py_CLEAR(hits);
                goto done;
            }
            line_hit = r;
        }
    }
done:
    PyBuffer_Release(&text);
    PyBuffer_Release(&rawbuf);
    PyBuffer_Release(&filt);
    if (hits == NULL) return NULL;
    return Py_BuildValue("(nN)", n_words, hits);
}

static PyMethodDef methods[] = {
    {"build_filter", build_filter, METH_O, build_filter_doc},
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bias_match",
    "The bias stage's word pass over a document, compiled (see transforms/bias/stage.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__bias_match(void) { return PyModule_Create(&module); }
