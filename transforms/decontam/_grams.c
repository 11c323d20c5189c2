/* Decontamination's word hashes and n-gram look-up, compiled (optional speed-up).
 *
 * Why C: text.py hashes a batch of documents with about twenty numpy passes over its code points
 * (fold, class, delete, word edges, prefix sums), and index.py's lookup computes every gram length's
 * hashes and its bitmap probe as more whole-array passes, six lengths per document. Each pass is
 * cheap, but together they cost about as much as the rest of the pre-dedup stages. Here one loop per
 * document does the folding, the classes and the word hashes, and one loop per document and gram
 * length rolls the gram hash along the words and probes that length's own bitmap (a few KiB for the
 * short whole texts, so it stays in cache), reaching the binary search only for the few grams whose
 * bit is set.
 *
 * Exactness: the same hashes as text.py's numpy definitions, in the same wrapping uint64
 * arithmetic. A word's hash is splitmix64(sum(c[i] * FNV_PRIME**i) + length) over its kept code
 * points (case-folded; punctuation deleted, so "dik-dik" is one word); a gram's is
 * splitmix64(sum(w[j] * GOLDEN**j) ^ (LEN_SALT * L)), rolled from one start to the next with
 * GOLDEN's inverse modulo 2**64 (the numpy path reads the same sum off prefix sums). NFKC stays in
 * Python (text._nfkc): the texts come here normalised.
 * tests/transforms/decontam/test_compiled.py compares both paths on the dev and hostile texts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FNV_PRIME 0x100000001B3ULL
#define GOLDEN 0x9E3779B97F4A7C15ULL
#define LEN_SALT 0xD6E8FEB86659FD93ULL
#define MULTI 0xFFFFFFFFu
#define N_CODEPOINTS 0x110000
enum { CLS_DELETE = 0, CLS_SPACE = 1, CLS_WORD = 2 };

static inline uint64_t splitmix64(uint64_t h) {
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 31;
    return h;
}

/* The inverse of an odd number modulo 2**64 (Newton's iteration; each step doubles the bits). */
static uint64_t inverse_u64(uint64_t a) {
    uint64_t x = a; /* correct to 3 bits for odd a */
    for (int i = 0; i < 5; i++) x *= 2 - a * x;
    return x;
}

/* A growable uint64 or int64 output array. */
typedef struct {
    uint64_t *v;
    Py_ssize_t n, cap;
} Vec;

static int vec_push(Vec *a, uint64_t x) {
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? a->cap * 2 : 1024;
        uint64_t *v = (uint64_t *)PyMem_Realloc(a->v, (size_t)cap * sizeof(uint64_t));
        if (!v) {
            PyErr_NoMemory();
            return -1;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static PyObject *vec_bytes(Vec *a) {
    return PyBytes_FromStringAndSize((const char *)a->v, a->n * (Py_ssize_t)sizeof(uint64_t));
}

/* Folded code points of one code point: 1, or up to 3 from the expansion table (cp, n, c0, c1, c2). */
static int fold(Py_UCS4 ch, const uint32_t *fold_table, const uint32_t *expand, Py_ssize_t n_expand,
                uint32_t out[3]) {
    const uint32_t f = fold_table[ch];
    if (f != MULTI) {
        out[0] = f;
        return 1;
    }
    Py_ssize_t lo = 0, hi = n_expand;
    while (lo < hi) {
        const Py_ssize_t mid = (lo + hi) / 2;
        if (expand[mid * 5] < ch)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= n_expand || expand[lo * 5] != ch) return -1;
    const int n = (int)expand[lo * 5 + 1];
    for (int i = 0; i < n; i++) out[i] = expand[lo * 5 + 2 + i];
    return n;
}

PyDoc_STRVAR(word_hashes_doc,
"word_hashes(texts: list[str], fold, classes, expand) -> (bytes, bytes)\n\n"
"The word hashes of every text (uint64, all texts in order) and each text's word count (int64).\n"
"``texts`` are NFKC-normalised already; ``fold`` (uint32 per code point, 0xFFFFFFFF where the\n"
"case fold has several characters), ``classes`` (int8 per code point: 0 delete, 1 space, 2 word) and\n"
"``expand`` (uint32 rows: code point, count, up to 3 code points, sorted) are text.py's tables.");

static PyObject *word_hashes(PyObject *self, PyObject *args) {
    PyObject *texts;
    Py_buffer fold_buf, cls_buf, exp_buf;
    if (!PyArg_ParseTuple(args, "O!y*y*y*", &PyList_Type, &texts, &fold_buf, &cls_buf, &exp_buf)) return NULL;
    PyObject *result = NULL;
    Vec hashes = {0}, counts = {0};
    if (fold_buf.len != N_CODEPOINTS * (Py_ssize_t)sizeof(uint32_t) || cls_buf.len != N_CODEPOINTS
        || exp_buf.len % (5 * (Py_ssize_t)sizeof(uint32_t))) {
        PyErr_SetString(PyExc_ValueError, "word_hashes: the fold, class and expansion tables do not fit");
        goto done;
    }
    const uint32_t *fold_table = (const uint32_t *)fold_buf.buf;
    const int8_t *classes = (const int8_t *)cls_buf.buf;
    const uint32_t *expand = (const uint32_t *)exp_buf.buf;
    const Py_ssize_t n_expand = exp_buf.len / (5 * (Py_ssize_t)sizeof(uint32_t));
    const Py_ssize_t n_texts = PyList_GET_SIZE(texts);
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "word_hashes: texts must be str");
            goto done;
        }
        const int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        const Py_ssize_t before = hashes.n;
        uint64_t h = 0, pw = 1, len = 0; /* the current word: hash so far, next power, kept chars */
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t cps[3];
            const int k = fold(PyUnicode_READ(kind, data, i), fold_table, expand, n_expand, cps);
            if (k < 0) {
                PyErr_SetString(PyExc_ValueError, "word_hashes: a multi-character fold is not in expand");
                goto done;
            }
            for (int c = 0; c < k; c++) {
                const int8_t cls = classes[cps[c]];
                if (cls == CLS_WORD) {
                    h += (uint64_t)cps[c] * pw;
                    pw *= FNV_PRIME;
                    len++;
                } else if (cls == CLS_SPACE && len) {
                    if (vec_push(&hashes, splitmix64(h + len)) < 0) goto done;
                    h = 0, pw = 1, len = 0;
                } /* deleted: nothing, the word goes on */
            }
        }
        if (len && vec_push(&hashes, splitmix64(h + len)) < 0) goto done;
        if (vec_push(&counts, (uint64_t)(hashes.n - before)) < 0) goto done;
    }
    PyObject *a = vec_bytes(&hashes), *b = a ? vec_bytes(&counts) : NULL;
    if (a && b) result = PyTuple_Pack(2, a, b);
    Py_XDECREF(a);
    Py_XDECREF(b);
done:
    PyMem_Free(hashes.v);
    PyMem_Free(counts.v);
    PyBuffer_Release(&fold_buf);
    PyBuffer_Release(&cls_buf);
    PyBuffer_Release(&exp_buf);
    return result;
}

/* One gram length's sorted table and its owners, viewed from the Python tuple (L, table, owners). */
typedef struct {
    Py_ssize_t length;
    Py_buffer table, owners, filter;
    int filter_bits;
    const uint8_t *bits;
    const uint64_t *hashes;
    const int32_t *items;
    Py_ssize_t size;
    uint64_t top_power, salt; /* GOLDEN**(L-1), LEN_SALT * L */
} Table;

PyDoc_STRVAR(lookup_doc,
"lookup(words, n_words, tables) -> (bytes, bytes, bytes, bytes)\n\n"
"BenchmarkIndex.lookup on each document of a batch: ``words`` (uint64 word hashes, documents in\n"
"order), ``n_words`` (int64 per document) and ``tables``, a list of (length, sorted uint64 hashes,\n"
"int32 owners, bitmap over the hashes' top bits, its bits) in lookup's order. Returns the hits as\n"
"int64 document, start word (in its document), length, and item, by document, table, then start.");

static PyObject *lookup(PyObject *self, PyObject *args) {
    Py_buffer words_buf, counts_buf;
    PyObject *tables_list;
    if (!PyArg_ParseTuple(args, "y*y*O!", &words_buf, &counts_buf, &PyList_Type, &tables_list)) return NULL;
    PyObject *result = NULL;
    Vec out_doc = {0}, out_start = {0}, out_len = {0}, out_item = {0};
    const Py_ssize_t n_tables = PyList_GET_SIZE(tables_list);
    Table *tables = (Table *)PyMem_Calloc((size_t)(n_tables ? n_tables : 1), sizeof(Table));
    Py_ssize_t held = 0; /* tables whose buffers are held */
    if (!tables) {
        PyErr_NoMemory();
        goto done;
    }
    const uint64_t *words = (const uint64_t *)words_buf.buf;
    const int64_t *counts = (const int64_t *)counts_buf.buf;
    const Py_ssize_t n_words = words_buf.len / 8, n_docs = counts_buf.len / 8;
    if (words_buf.len % 8 || counts_buf.len % 8) {
        PyErr_SetString(PyExc_ValueError, "lookup: words and n_words must be 8-byte arrays");
        goto done;
    }
    for (Py_ssize_t t = 0; t < n_tables; t++) {
        Table *tb = &tables[t];
        PyObject *item = PyList_GET_ITEM(tables_list, t);
        if (!PyTuple_Check(item)
            || !PyArg_ParseTuple(item, "ny*y*y*i", &tb->length, &tb->table, &tb->owners, &tb->filter,
                                 &tb->filter_bits)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "lookup: tables must be tuples");
            goto done;
        }
        held++;
        tb->size = tb->table.len / 8;
        if (tb->length < 1 || tb->table.len % 8 || tb->owners.len != tb->size * 4 || tb->filter_bits < 4
            || tb->filter_bits > 40 || tb->filter.len != ((Py_ssize_t)1 << (tb->filter_bits - 3))) {
            PyErr_SetString(PyExc_ValueError, "lookup: a table's hashes, owners and bitmap do not fit together");
            goto done;
        }
        tb->bits = (const uint8_t *)tb->filter.buf;
        tb->hashes = (const uint64_t *)tb->table.buf;
        tb->items = (const int32_t *)tb->owners.buf;
        tb->top_power = 1;
        for (Py_ssize_t i = 1; i < tb->length; i++) tb->top_power *= GOLDEN;
        tb->salt = LEN_SALT * (uint64_t)tb->length;
    }
    const uint64_t inv = inverse_u64(GOLDEN);
    Py_ssize_t first = 0;
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        const Py_ssize_t m = (Py_ssize_t)counts[d];
        if (m < 0 || first + m > n_words) {
            PyErr_SetString(PyExc_ValueError, "lookup: n_words adds up to more than the words");
            goto done;
        }
        const uint64_t *w = words + first;
        for (Py_ssize_t t = 0; t < n_tables; t++) {
            const Table *tb = &tables[t];
            const Py_ssize_t L = tb->length;
            if (m < L || tb->size == 0) continue;
            uint64_t raw = 0, pw = 1;
            for (Py_ssize_t j = 0; j < L; j++) {
                raw += w[j] * pw;
                pw *= GOLDEN;
            }
            for (Py_ssize_t s = 0;; s++) {
                const uint64_t g = splitmix64(raw ^ tb->salt);
                const uint64_t slot = g >> (64 - tb->filter_bits);
                if ((tb->bits[slot >> 3] >> (slot & 7)) & 1) {
                    Py_ssize_t lo = 0, hi = tb->size; /* searchsorted, left */
                    while (lo < hi) {
                        const Py_ssize_t mid = lo + (hi - lo) / 2;
                        if (tb->hashes[mid] < g)
                            lo = mid + 1;
                        else
                            hi = mid;
                    }
                    if (lo < tb->size && tb->hashes[lo] == g) {
                        if (vec_push(&out_doc, (uint64_t)d) < 0 || vec_push(&out_start, (uint64_t)s) < 0
                            || vec_push(&out_len, (uint64_t)L) < 0
                            || vec_push(&out_item, (uint64_t)(int64_t)tb->items[lo]) < 0)
                            goto done;
                    }
                }
                if (s + L >= m) break;
                raw = (raw - w[s]) * inv + w[s + L] * tb->top_power; /* roll one word on */
            }
        }
        first += m;
    }
    PyObject *parts[4] = {vec_bytes(&out_doc), vec_bytes(&out_start), vec_bytes(&out_len), vec_bytes(&out_item)};
    if (parts[0] && parts[1] && parts[2] && parts[3]) result = PyTuple_Pack(4, parts[0], parts[1], parts[2], parts[3]);
    for (int i = 0; i < 4; i++) Py_XDECREF(parts[i]);
done:
    for (Py_ssize_t t = 0; t < held; t++) {
        PyBuffer_Release(&tables[t].table);
        PyBuffer_Release(&tables[t].owners);
        PyBuffer_Release(&tables[t].filter);
    }
    PyMem_Free(tables);
    PyMem_Free(out_doc.v);
    PyMem_Free(out_start.v);
    PyMem_Free(out_len.v);
    PyMem_Free(out_item.v);
    PyBuffer_Release(&words_buf);
    PyBuffer_Release(&counts_buf);
    return result;
}

/* Appends ``(start, end)`` to ``out``; 0 with an exception set when that fails. */
static int append_span(PyObject *out, Py_ssize_t start, Py_ssize_t end) {
    PyObject *t = Py_BuildValue("(nn)", start, end);
    if (!t) return 0;
    const int ok = PyList_Append(out, t) == 0;
    Py_DECREF(t);
    return ok;
}

PyDoc_STRVAR(nfkc_spans_doc,
"nfkc_spans(text: str, unsafe: bytes, gap: int) -> list[tuple[int, int]]\n\n"
"The spans of ``text`` NFKC may change, each starting and ending at a normalisation boundary, so\n"
"that normalising only them gives NFKC of the whole. ``unsafe`` is a bitmap over the BMP of the\n"
"characters that are not a stable starter (changed by NFKC, a non-zero combining class, or able to\n"
"combine with the character before); every character above the BMP counts as unsafe. A span is the\n"
"safe character before an unsafe run (a boundary: it may compose with the run) up to the next safe\n"
"character; spans fewer than ``gap`` characters apart are merged (fewer calls).");

static PyObject *nfkc_spans(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer unsafe;
    Py_ssize_t gap;
    if (!PyArg_ParseTuple(args, "Uy*n", &text, &unsafe, &gap)) return NULL;
    PyObject *out = NULL;
    if (unsafe.len != 0x10000 / 8) {
        PyErr_SetString(PyExc_ValueError, "nfkc_spans: unsafe must be a bitmap of the BMP (8 KiB)");
        goto done;
    }
    const uint8_t *bits = (const uint8_t *)unsafe.buf;
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
#define UNSAFE(ch) ((ch) >= 0x10000 || ((bits[(ch) >> 3] >> ((ch) & 7)) & 1))
    out = PyList_New(0);
    if (!out) goto done;
    Py_ssize_t span_start = -1, span_end = -1, i = 0;
    if (kind == PyUnicode_1BYTE_KIND) { /* Latin-1: skip the safe run quickly */
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        while (i < n && !UNSAFE(p[i])) i++;
    }
    while (i < n) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (!UNSAFE(ch)) {
            i++;
            continue;
        }
        const Py_ssize_t s = i > 0 ? i - 1 : 0;
        Py_ssize_t j = i + 1;
        while (j < n) {
            const Py_UCS4 c = PyUnicode_READ(kind, data, j);
            if (!UNSAFE(c)) break;
            j++;
        }
        if (span_start >= 0 && s <= span_end + gap) {
            span_end = j;
        } else {
            if (span_start >= 0) {
                if (!append_span(out, span_start, span_end)) {
                    Py_CLEAR(out);
                    goto done;
                }
            }
            span_start = s;
            span_end = j;
        }
        i = j;
    }
    if (span_start >= 0 && !append_span(out, span_start, span_end)) Py_CLEAR(out);
#undef UNSAFE
done:
    PyBuffer_Release(&unsafe);
    return out;
}

static PyMethodDef methods[] = {
    {"word_hashes", word_hashes, METH_VARARGS, word_hashes_doc},
    {"lookup", lookup, METH_VARARGS, lookup_doc},
    {"nfkc_spans", nfkc_spans, METH_VARARGS, nfkc_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_grams",
    "Decontamination's word hashes and n-gram look-up, compiled (see text.py and index.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__grams(void) { return PyModule_Create(&module); }
