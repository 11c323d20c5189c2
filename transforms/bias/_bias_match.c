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
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem (pyconfig.h defines it too) */
#endif
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
             "The bit filter of an iterable of bytes words, for scan_mentions().");

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

/* ---- scan_mentions: the same pass, plus each unit's mentions (what Lexicon.match gives). ----
 *
 * Why: Python counted a found unit's mentions by splitting it into words and matching them
 * (Lexicon.match: a set intersection, list.count per word, a walk for multi-word terms), which
 * cost more than finding the units. Here a unit's words are walked in place once more and each
 * lexicon word's entries are tried: ``terms`` maps a lexicon word (bytes) to a tuple of
 * (rest, categories) pairs, ``rest`` the following words of a longer term (empty for a one-word
 * term) and ``categories`` a tuple of category ids; a term counts once per category when its
 * rest follows it inside the unit, exactly Lexicon.match's rule. */

/* The next word of p[i:b] at or after i: its start in *ws and end in *we; 0 when none. */
static inline int next_word(const unsigned char *p, Py_ssize_t i, Py_ssize_t b, Py_ssize_t *ws, Py_ssize_t *we) {
    while (i < b && is_space(p[i])) i++;
    if (i >= b) return 0;
    *ws = i;
    while (i < b && !is_space(p[i])) i++;
    *we = i;
    return 1;
}

/* Whether the words after position i in p[i:b] are, in order, the bytes of ``rest``. */
static int rest_follows(const unsigned char *p, Py_ssize_t i, Py_ssize_t b, PyObject *rest) {
    Py_ssize_t k = PyTuple_GET_SIZE(rest), ws, we;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (!next_word(p, i, b, &ws, &we)) return 0;
        PyObject *w = PyTuple_GET_ITEM(rest, j);
        Py_ssize_t len = PyBytes_GET_SIZE(w);
        if (we - ws != len || memcmp(p + ws, PyBytes_AS_STRING(w), (size_t)len) != 0) return 0;
        i = we;
    }
    return 1;
}

/* The category ids of every mention in the unit p[a:b], appended to a new list. NULL: error. */
static PyObject *span_mentions(const unsigned char *p, Py_ssize_t a, Py_ssize_t b, const unsigned char *filter,
                               PyObject *terms) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t i = a, ws, we;
    while (next_word(p, i, b, &ws, &we)) {
        i = we;
        if (!has_bit(filter, word_hash(p + ws, we - ws))) continue;
        PyObject *w = PyBytes_FromStringAndSize((const char *)p + ws, we - ws);
        if (w == NULL) goto fail;
        PyObject *entries = PyDict_GetItemWithError(terms, w); /* borrowed */
        Py_DECREF(w);
        if (entries == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        if (!PyTuple_Check(entries)) goto bad;
        for (Py_ssize_t e = 0; e < PyTuple_GET_SIZE(entries); e++) {
            PyObject *entry = PyTuple_GET_ITEM(entries, e);
            if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) goto bad;
            PyObject *rest = PyTuple_GET_ITEM(entry, 0), *cats = PyTuple_GET_ITEM(entry, 1);
            if (!PyTuple_Check(rest) || !PyTuple_Check(cats)) goto bad;
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(rest); j++)
                if (!PyBytes_Check(PyTuple_GET_ITEM(rest, j))) goto bad;
            if (PyTuple_GET_SIZE(rest) && !rest_follows(p, we, b, rest)) continue;
            for (Py_ssize_t c = 0; c < PyTuple_GET_SIZE(cats); c++)
                if (PyList_Append(out, PyTuple_GET_ITEM(cats, c)) < 0) goto fail;
        }
    }
    return out;
bad:
    PyErr_SetString(PyExc_TypeError, "scan_mentions: terms must map bytes to ((rest bytes...), (ids...)) tuples");
fail:
    Py_DECREF(out);
    return NULL;
}

/* The sentences of the long line prepared[a:b] holding a key, as (start, end, mentions): a sentence
 * ends at each byte that is ".", "!" or "?" in the text before preparation (``raw``, the same
 * length: preparation maps byte to byte). NULL: error. */
static PyObject *mention_sentences(const unsigned char *p, const unsigned char *raw, Py_ssize_t a, Py_ssize_t b,
                                   const unsigned char *filter, PyObject *keys, PyObject *terms) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t s = a;
    while (s <= b) {
        Py_ssize_t e = s;
        while (e < b && raw[e] != '.' && raw[e] != '!' && raw[e] != '?') e++;
        int r = span_has_key(p, s, e, filter, keys);
        if (r < 0) goto fail;
        if (r) {
            PyObject *m = span_mentions(p, s, e, filter, terms);
            if (m == NULL) goto fail;
            PyObject *t = Py_BuildValue("(nnN)", s, e, m);
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

/* Whether raw[a:b] holds one of the bytes objects of the tuple ``needles``. */
static int holds_any(const unsigned char *raw, Py_ssize_t a, Py_ssize_t b, PyObject *needles) {
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(needles); k++) {
        PyObject *w = PyTuple_GET_ITEM(needles, k);
        Py_ssize_t len = PyBytes_GET_SIZE(w);
        if (len > 0 && len <= b - a && memmem(raw + a, (size_t)(b - a), PyBytes_AS_STRING(w), (size_t)len) != NULL)
            return 1;
    }
    return 0;
}

PyDoc_STRVAR(scan_mentions_doc,
             "scan_mentions(prepared, raw, filter, keys, terms, limit, needles=())\n"
             "    -> (n_words, [(line, start, end, sentences, mentions), ...])\n\n"
             "The number of words in ``prepared`` (what sum(len(l.split()) for l in\n"
             "prepared.split(b'\\n')) gives) and its lines holding a word of the set ``keys``\n"
             "(``filter`` from build_filter(keys)) with their index, byte span and mentions: for a line of at most ``limit`` words,\n"
             "``sentences`` is None and ``mentions`` the category ids of the line's mentions (one per\n"
             "mention and category, possibly empty); for a longer line, ``mentions`` is None and\n"
             "``sentences`` the (start, end, mentions) of its sentences holding a key. ``terms`` maps\n"
             "each key to its (rest, category ids) pairs (see Lexicon.match). A longer line whose raw\n"
             "bytes hold one of the bytes ``needles`` (what the caller cuts and cleans itself) has\n"
             "both None.");

static PyObject *scan_mentions(PyObject *self, PyObject *args) {
    Py_buffer text, rawbuf, filt;
    PyObject *keys, *terms, *needles = NULL;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*y*y*OO!n|O!", &text, &rawbuf, &filt, &keys, &PyDict_Type, &terms, &limit,
                          &PyTuple_Type, &needles))
        return NULL;
    PyObject *hits = NULL;
    if (filt.len != FILTER_BYTES || !PyAnySet_Check(keys) || rawbuf.len != text.len) {
        PyErr_SetString(PyExc_ValueError, "scan_mentions: filter must come from build_filter, keys must be a "
                                          "set, raw as long as prepared");
        goto done;
    }
    if (needles != NULL)
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(needles); k++)
            if (!PyBytes_Check(PyTuple_GET_ITEM(needles, k))) {
                PyErr_SetString(PyExc_TypeError, "scan_mentions: needles must be a tuple of bytes");
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
        while (i < n && is_space(s[i]) && s[i] != '\n') i++;
        if (i >= n || s[i] == '\n') {
            if (line_hit) {
                PyObject *sentences, *mentions;
                if (line_words > limit && needles != NULL && holds_any(raw, line_start, i, needles)) {
                    sentences = Py_None;
                    mentions = Py_None;
                    Py_INCREF(Py_None);
                    Py_INCREF(Py_None);
                } else if (line_words > limit) {
                    sentences = mention_sentences(s, raw, line_start, i, filter, keys, terms);
                    mentions = Py_None;
                    Py_INCREF(Py_None);
                } else {
                    mentions = span_mentions(s, line_start, i, filter, terms);
                    sentences = Py_None;
                    Py_INCREF(Py_None);
                }
                if (sentences == NULL || mentions == NULL) {
                    Py_XDECREF(sentences);
                    Py_XDECREF(mentions);
                    Py_CLEAR(hits);
                    goto done;
                }
                PyObject *t = Py_BuildValue("(nnnNN)", line, line_start, i, sentences, mentions);
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

/* ---- raw_sentences_str: the same cut on any line, by code points. ----
 *
 * Most web lines are not ASCII ("’", "é"), so the cut runs on the line's code points: a '.', '!',
 * '?' or '\u2026' followed by a character Py_UNICODE_ISSPACE accepts (what ``\s`` matches in a str
 * pattern). A piece's prepared bytes are found by walking the UTF-8 lengths of the prepared line's
 * code points: a character of ``spaced`` (the punctuation preparation makes one space) and a
 * surrogate (encoded as '?') take one byte. */

/* The bytes character c takes in the prepared line: 1 for a character of ``spaced`` (the string
 * of kind skind at sdata, ns long) and for a surrogate (encode(..., "replace") gives '?'), else
 * its UTF-8 length. */
static inline Py_ssize_t prepared_len(Py_UCS4 c, int skind, const void *sdata, Py_ssize_t ns) {
    if (c < 0x80) return 1;
    for (Py_ssize_t q = 0; q < ns; q++)
        if (PyUnicode_READ(skind, sdata, q) == c) return 1;
    if (c < 0x800) return 2;
    if (c >= 0xD800 && c <= 0xDFFF) return 1;
    if (c < 0x10000) return 3;
    return 4;
}

PyDoc_STRVAR(raw_sentences_str_doc,
             "raw_sentences_str(line, spaced, prepared, start, end, filter, keys, terms)\n"
             "    -> [(i, j, a, b, mentions), ...] or None\n\n"
             "The pieces line[i:j] of re.split(r'[.!?\\u2026]\\s', line) whose prepared bytes\n"
             "prepared[a:b] hold a key, each with its mentions (see scan_mentions); prepared[start:end]\n"
             "is the line's prepared bytes, each character of the str ``spaced`` taking one byte there.\n"
             "None when the line's bytes do not add up to end - start (the caller then cuts it itself).");

static PyObject *raw_sentences_str(PyObject *self, PyObject *args) {
    PyObject *line, *spaced, *keys, *terms;
    Py_buffer text, filt;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "UUy*nny*OO!", &line, &spaced, &text, &start, &end, &filt, &keys, &PyDict_Type,
                          &terms))
        return NULL;
    PyObject *out = NULL;
    if (filt.len != FILTER_BYTES || !PyAnySet_Check(keys) || start < 0 || end < start || end > text.len) {
        PyErr_SetString(PyExc_ValueError, "raw_sentences_str: filter must come from build_filter, keys must be a "
                                          "set, 0 <= start <= end <= len(prepared)");
        goto done;
    }
    const unsigned char *p = (const unsigned char *)text.buf;
    const unsigned char *filter = (const unsigned char *)filt.buf;
    int kind = PyUnicode_KIND(line), skind = PyUnicode_KIND(spaced);
    const void *data = PyUnicode_DATA(line), *sdata = PyUnicode_DATA(spaced);
    Py_ssize_t n = PyUnicode_GET_LENGTH(line), ns = PyUnicode_GET_LENGTH(spaced);
    /* The prepared bytes of the line: check they add up first (else the caller cuts the line). */
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < n; k++) total += prepared_len(PyUnicode_READ(kind, data, k), skind, sdata, ns);
    if (total != end - start) {
        out = Py_None;
        Py_INCREF(Py_None);
        goto done;
    }
    out = PyList_New(0);
    if (out == NULL) goto done;
    Py_ssize_t i = 0, a = start; /* piece start: code point and byte */
    Py_ssize_t k = 0, byte = start;
    while (1) {
        /* Find the next cut at or after k: c in ".!?\u2026" followed by a space character. */
        Py_ssize_t j = n, bj = end, next = n, bnext = end;
        while (k < n) {
            Py_UCS4 c = PyUnicode_READ(kind, data, k);
            Py_ssize_t len = prepared_len(c, skind, sdata, ns);
            if ((c == '.' || c == '!' || c == '?' || c == 0x2026) && k + 1 < n &&
                Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k + 1))) {
                Py_ssize_t wlen = prepared_len(PyUnicode_READ(kind, data, k + 1), skind, sdata, ns);
                j = k;
                bj = byte;
                next = k + 2;
                bnext = byte + len + wlen;
                break;
            }
            k++;
            byte += len;
        }
        int r = span_has_key(p, a, bj, filter, keys);
        if (r < 0) goto fail;
        if (r) {
            PyObject *m = span_mentions(p, a, bj, filter, terms);
            if (m == NULL) goto fail;
            PyObject *t = Py_BuildValue("(nnnnN)", i, j, a, bj, m);
            if (t == NULL || PyList_Append(out, t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
        }
        if (j == n) break;
        i = k = next;
        a = byte = bnext;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyBuffer_Release(&text);
    PyBuffer_Release(&filt);
    return out;
}

static PyMethodDef methods[] = {
    {"build_filter", build_filter, METH_O, build_filter_doc},
    {"scan_mentions", scan_mentions, METH_VARARGS, scan_mentions_doc},
    {"raw_sentences_str", raw_sentences_str, METH_VARARGS, raw_sentences_str_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bias_match",
    "The bias stage's word pass over a document, compiled (see transforms/bias/stage.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__bias_match(void) { return PyModule_Create(&module); }
