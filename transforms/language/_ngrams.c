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

/* What both scoring walks need from their buffers: the n-gram table, the rows of log
   probabilities, the output row (zeroed here) and one row of scratch (PyMem; the caller frees it).
   Checked once here so that the two entry points cannot drift apart in what they accept. */
typedef struct {
    const Slot *slots;
    uint64_t mask;
    const double *rows;
    Py_ssize_t n_rows;
    Py_ssize_t n_lang;
    double *acc;
    double *scratch;
} Walk;

/* Returns 0 with a ValueError (naming ``caller``) or MemoryError set when the buffers do not fit. */
static int walk_setup(const char *caller, Py_buffer *table, Py_buffer *logs, Py_buffer *out, Walk *w) {
    const Py_ssize_t n_lang = out->len / (Py_ssize_t)sizeof(double);
    const uint64_t size = (uint64_t)table->len / sizeof(Slot);
    if (n_lang < 1 || out->len % (Py_ssize_t)sizeof(double) || logs->len % (n_lang * (Py_ssize_t)sizeof(double))
        || size == 0 || (size & (size - 1)) || table->len % (Py_ssize_t)sizeof(Slot)) {
        PyErr_Format(PyExc_ValueError, "%s: table, logs and out do not fit together", caller);
        return 0;
    }
    w->slots = (const Slot *)table->buf;
    w->mask = size - 1;
    w->rows = (const double *)logs->buf;
    w->n_rows = logs->len / (n_lang * (Py_ssize_t)sizeof(double));
    w->n_lang = n_lang;
    w->acc = (double *)out->buf;
    w->scratch = (double *)PyMem_Malloc((size_t)n_lang * sizeof(double));
    if (!w->scratch) {
        PyErr_NoMemory();
        return 0;
    }
    memset(w->acc, 0, (size_t)n_lang * sizeof(double));
    return 1;
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
    Walk wk = {0};
    if (!walk_setup("score", &table, &logs, &out, &wk)) goto done;
    const Slot *slots = wk.slots;
    const uint64_t mask = wk.mask;
    const double *rows = wk.rows;
    const Py_ssize_t n_rows = wk.n_rows;
    const Py_ssize_t n_lang = wk.n_lang;
    double *acc = wk.acc;
    double *word = wk.scratch;

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
    PyMem_Free(wk.scratch);
    PyBuffer_Release(&table);
    PyBuffer_Release(&logs);
    PyBuffer_Release(&out);
    return result;
}

/* ---- score_words: the same sums, with the per-character normalisation and a per-word memo ----
 *
 * Why: after the walk above, a document's cost was two passes in Python before it (str.translate
 * with langdetect's per-character normalisation) and, in the walk, one 55-wide row addition per
 * n-gram (about 2.5 per character). The n-grams of a word depend only on the word and on whether a
 * space follows it (the walk restarts at every space), so each distinct short word's summed row is
 * kept in a memo the caller owns (a bytearray from new_memo) and a repeated word costs one hash
 * probe and one row addition. A word's sum is computed as the walk computes it (its first row copied,
 * the next ones added in order) and the words' sums are added in text order, skipping words without
 * n-grams: the same additions in the same order as score(), so the same floats, bit for bit.
 * A full memo is compacted (memo_compact); the answers never depend on what it holds. */

#define MEMO_MAGIC 0x6e62776f72647331ULL /* "nbwords1" */
#define MEMO_MAX_WORD 32                 /* longer words are walked every time, never memoised */

typedef struct {
    uint64_t magic;
    int64_t n_lang, max_entries, n_slots, count, arena_cap, arena_used, pad;
} MemoHeader;

typedef struct {
    uint64_t hash;
    int32_t entry; /* -1: empty slot */
    int32_t pad;
} MemoSlot;

typedef struct {
    uint64_t hash;
    uint32_t key_off;
    uint16_t key_len;
    uint8_t space; /* a space follows the word */
    uint8_t pad;
    int32_t grams; /* n-grams the profiles have in the word (0: the word adds nothing) */
    uint32_t hits; /* look-ups that found it since the memo was last compacted */
} MemoEntry;

typedef struct {
    MemoHeader *h;
    MemoSlot *slots;
    MemoEntry *entries;
    Py_UCS4 *arena;
    double *rows;
} Memo;

static Py_ssize_t memo_bytes(int64_t n_lang, int64_t max_entries, int64_t *n_slots, int64_t *arena_cap) {
    int64_t slots = 1;
    while (slots < max_entries * 2) slots <<= 1; /* load factor at most 1/2 */
    *n_slots = slots;
    *arena_cap = max_entries * 8; /* code points of the keys; ~5 per word on average */
    return (Py_ssize_t)(sizeof(MemoHeader) + slots * sizeof(MemoSlot) + max_entries * sizeof(MemoEntry)
                        + *arena_cap * sizeof(Py_UCS4) + max_entries * n_lang * sizeof(double));
}

static void memo_clear(Memo *m) {
    m->h->count = 0;
    m->h->arena_used = 0;
    for (int64_t i = 0; i < m->h->n_slots; i++) m->slots[i].entry = -1;
}

/* A full memo keeps the words found again since the last compaction (their hit counts restart)
 * and drops the others: a worker's frequent words stay while its long tail passes through (on the
 * 8k scale corpus 93% of words are found at 64 k entries, against 89% when a full memo is emptied). */
static void memo_compact(Memo *m) {
    const int64_t n_lang = m->h->n_lang;
    int64_t kept = 0, arena = 0;
    for (int64_t e = 0; e < m->h->count; e++) {
        MemoEntry me = m->entries[e];
        if (me.hits == 0) continue;
        if (kept != e) {
            memmove(m->arena + arena, m->arena + me.key_off, (size_t)me.key_len * sizeof(Py_UCS4));
            memcpy(m->rows + kept * n_lang, m->rows + e * n_lang, (size_t)n_lang * sizeof(double));
        }
        me.key_off = (uint32_t)arena;
        me.hits = 0;
        m->entries[kept] = me;
        arena += me.key_len;
        kept++;
    }
    memo_clear(m);
    const uint64_t smask = (uint64_t)m->h->n_slots - 1;
    for (int64_t e = 0; e < kept; e++) {
        uint64_t i = m->entries[e].hash & smask;
        while (m->slots[i].entry >= 0) i = (i + 1) & smask;
        m->slots[i].hash = m->entries[e].hash;
        m->slots[i].entry = (int32_t)e;
    }
    m->h->count = kept;
    m->h->arena_used = arena;
}

/* Lay the parts of the memo over its buffer; 0 when the buffer is not a memo of this n_lang. */
static int memo_view(Py_buffer *buf, Py_ssize_t n_lang, Memo *m) {
    if (buf->len < (Py_ssize_t)sizeof(MemoHeader)) return 0;
    MemoHeader *h = (MemoHeader *)buf->buf;
    int64_t n_slots, arena_cap;
    if (h->magic != MEMO_MAGIC || h->n_lang != n_lang || h->max_entries < 1) return 0;
    if (memo_bytes(h->n_lang, h->max_entries, &n_slots, &arena_cap) != buf->len) return 0;
    if (n_slots != h->n_slots || arena_cap != h->arena_cap) return 0;
    char *p = (char *)buf->buf + sizeof(MemoHeader);
    m->h = h;
    m->slots = (MemoSlot *)p;
    p += n_slots * sizeof(MemoSlot);
    m->entries = (MemoEntry *)p;
    p += h->max_entries * sizeof(MemoEntry);
    m->arena = (Py_UCS4 *)p;
    p += arena_cap * sizeof(Py_UCS4);
    m->rows = (double *)p;
    return 1;
}

PyDoc_STRVAR(new_memo_doc,
"new_memo(n_lang: int, max_entries: int) -> bytearray\n\n"
"An empty word memo for score_words (its rows are max_entries * n_lang float64).");

static PyObject *new_memo(PyObject *self, PyObject *args) {
    Py_ssize_t n_lang, max_entries;
    if (!PyArg_ParseTuple(args, "nn", &n_lang, &max_entries)) return NULL;
    if (n_lang < 1 || max_entries < 1 || max_entries > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "new_memo: n_lang >= 1 and 1 <= max_entries <= 2**24");
        return NULL;
    }
    int64_t n_slots, arena_cap;
    Py_ssize_t size = memo_bytes(n_lang, max_entries, &n_slots, &arena_cap);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, size);
    if (!out) return NULL;
    memset(PyByteArray_AS_STRING(out), 0, (size_t)size);
    MemoHeader *h = (MemoHeader *)PyByteArray_AS_STRING(out);
    h->magic = MEMO_MAGIC;
    h->n_lang = n_lang;
    h->max_entries = max_entries;
    h->n_slots = n_slots;
    h->arena_cap = arena_cap;
    Py_buffer buf;
    if (PyObject_GetBuffer(out, &buf, PyBUF_WRITABLE) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    Memo m;
    memo_view(&buf, n_lang, &m);
    memo_clear(&m);
    PyBuffer_Release(&buf);
    return out;
}

static inline Py_UCS4 normalised(int kind, const void *data, Py_ssize_t i, const uint32_t *norm) {
    const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
    return ch < 0x10000 ? (Py_UCS4)norm[ch] : ch; /* langdetect's normalize keeps every other char */
}

/* The walk over one word (normalised characters w[0..len), then the space after it when `space`),
 * summing the rows into vec (first row copied); returns the n-grams found, or -1 on a bad row. */
static int64_t walk_word(const Py_UCS4 *w, Py_ssize_t len, int space, const Slot *slots, uint64_t mask,
                         const double *rows, Py_ssize_t n_rows, Py_ssize_t n_lang, double *vec) {
    Py_UCS4 pp = 0, p = ' ';
    int p_upper = 0;
    int64_t grams = 0;
    const Py_ssize_t end = len + (space ? 1 : 0);
    for (Py_ssize_t i = 0; i < end; i++) {
        const Py_UCS4 ch = i < len ? w[i] : ' ';
        const int upper = ch != ' ' && Py_UNICODE_ISUPPER(ch);
        if (!(upper && p_upper)) {
            int32_t r[3];
            int k = 0;
            if (ch != ' ') r[k++] = find(slots, mask, pack3(0, 0, ch), 1);
            r[k++] = find(slots, mask, pack3(0, p, ch), 2);
            if (i >= 1) r[k++] = find(slots, mask, pack3(pp, p, ch), 3);
            for (int t = 0; t < k; t++) {
                if (r[t] < 0) continue;
                if (r[t] >= n_rows) return -1;
                const double *row = rows + (Py_ssize_t)r[t] * n_lang;
                if (grams == 0)
                    memcpy(vec, row, (size_t)n_lang * sizeof(double));
                else
                    for (Py_ssize_t l = 0; l < n_lang; l++) vec[l] += row[l];
                grams++;
            }
        }
        pp = p;
        p = ch;
        p_upper = upper;
    }
    return grams;
}

static inline uint64_t word_key(const Py_UCS4 *w, Py_ssize_t len, int space) {
    uint64_t x = 0xcbf29ce484222325ULL ^ (uint64_t)space;
    for (Py_ssize_t i = 0; i < len; i++) x = (x ^ w[i]) * 0x100000001b3ULL;
    return mix(x, (int32_t)len);
}

PyDoc_STRVAR(score_words_doc,
"score_words(text: str, table: bytes, logs, norm, memo: bytearray, out) -> int\n\n"
"score() on ``text`` after langdetect's per-character normalisation (``norm``: uint32, one per\n"
"code point below U+10000; the others are kept), with each short word's sum memoised in ``memo``\n"
"(new_memo). The same floats as score(text.translate(normalisation)); returns the n-grams found.");

static PyObject *score_words(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_buffer table, logs, norm, memo_buf, out;
    if (!PyArg_ParseTuple(args, "Uy*y*y*w*w*", &text, &table, &logs, &norm, &memo_buf, &out)) return NULL;
    PyObject *result = NULL;
    Py_UCS4 *long_word = NULL;
    Walk wk = {0};
    Memo m;
    if (norm.len != 0x10000 * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "score_words: norm is not one uint32 per BMP code point");
        goto done;
    }
    if (!walk_setup("score_words", &table, &logs, &out, &wk)) goto done;
    if (!memo_view(&memo_buf, wk.n_lang, &m)) {
        PyErr_SetString(PyExc_ValueError, "score_words: memo is not a new_memo() of this many languages");
        goto done;
    }
    const Slot *slots = wk.slots;
    const uint64_t mask = wk.mask;
    const double *rows = wk.rows;
    const Py_ssize_t n_rows = wk.n_rows;
    const Py_ssize_t n_lang = wk.n_lang;
    const uint32_t *nm = (const uint32_t *)norm.buf;
    double *acc = wk.acc;
    double *scratch = wk.scratch;

    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 w[MEMO_MAX_WORD];
    int64_t found = 0;
    Py_ssize_t j = 0;
    while (j < n) {
        Py_UCS4 ch = normalised(kind, data, j, nm);
        if (ch == ' ') {
            j++;
            continue;
        }
        const Py_ssize_t start = j;
        Py_ssize_t len = 0;
        while (j < n && (ch = normalised(kind, data, j, nm)) != ' ') {
            if (len < MEMO_MAX_WORD) w[len] = ch;
            len++;
            j++;
        }
        const int space = j < n;
        const double *vec;
        int64_t grams;
        if (len <= MEMO_MAX_WORD) {
            const uint64_t key = word_key(w, len, space);
            const uint64_t smask = (uint64_t)m.h->n_slots - 1;
            uint64_t i = key & smask;
            int32_t e = -1;
            for (;;) {
                const int32_t cand = m.slots[i].entry;
                if (cand < 0) break;
                if (m.slots[i].hash == key) {
                    const MemoEntry *me = &m.entries[cand];
                    if (me->key_len == len && me->space == space
                        && memcmp(m.arena + me->key_off, w, (size_t)len * sizeof(Py_UCS4)) == 0) {
                        e = cand;
                        break;
                    }
                }
                i = (i + 1) & smask;
            }
            if (e >= 0) {
                grams = m.entries[e].grams;
                m.entries[e].hits++;
                vec = m.rows + (Py_ssize_t)e * n_lang;
            } else {
                if (m.h->count >= m.h->max_entries || m.h->arena_used + len > m.h->arena_cap) {
                    memo_compact(&m); /* full (the answers never depend on what it holds) */
                    i = key & smask;
                    while (m.slots[i].entry >= 0) i = (i + 1) & smask;
                }
                if (m.h->count >= m.h->max_entries || m.h->arena_used + len > m.h->arena_cap) {
                    /* every word was found again: this one is summed without being kept */
                    grams = walk_word(w, len, space, slots, mask, rows, n_rows, n_lang, scratch);
                    if (grams < 0) goto bad_row;
                    vec = scratch;
                    goto add;
                }
                e = (int32_t)m.h->count;
                double *dst = m.rows + (Py_ssize_t)e * n_lang;
                grams = walk_word(w, len, space, slots, mask, rows, n_rows, n_lang, dst);
                if (grams < 0) goto bad_row;
                MemoEntry *me = &m.entries[e];
                me->key_off = (uint32_t)m.h->arena_used;
                me->key_len = (uint16_t)len;
                me->space = (uint8_t)space;
                me->grams = (int32_t)grams;
                me->hash = key;
                me->hits = 0;
                memcpy(m.arena + m.h->arena_used, w, (size_t)len * sizeof(Py_UCS4));
                m.h->arena_used += len;
                m.h->count++;
                m.slots[i].hash = key;
                m.slots[i].entry = e;
                vec = dst;
            }
        } else { /* a long word: walked on its own, never memoised */
            PyMem_Free(long_word);
            long_word = (Py_UCS4 *)PyMem_Malloc((size_t)len * sizeof(Py_UCS4));
            if (!long_word) {
                PyErr_NoMemory();
                goto done;
            }
            for (Py_ssize_t i = 0; i < len; i++) long_word[i] = normalised(kind, data, start + i, nm);
            grams = walk_word(long_word, len, space, slots, mask, rows, n_rows, n_lang, scratch);
            if (grams < 0) goto bad_row;
            vec = scratch;
        }
    add:
        if (grams) {
            if (found == 0)
                memcpy(acc, vec, (size_t)n_lang * sizeof(double));
            else
                for (Py_ssize_t l = 0; l < n_lang; l++) acc[l] += vec[l];
            found += grams;
        }
    }
    result = PyLong_FromLongLong(found);
    goto done;
bad_row:
    PyErr_SetString(PyExc_ValueError, "score_words: a row of the table is outside logs");
done:
    PyMem_Free(long_word);
    PyMem_Free(wk.scratch);
    PyBuffer_Release(&table);
    PyBuffer_Release(&logs);
    PyBuffer_Release(&norm);
    PyBuffer_Release(&memo_buf);
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
    {"new_memo", new_memo, METH_VARARGS, new_memo_doc},
    {"score_words", score_words, METH_VARARGS, score_words_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ngrams",
    "langdetect's n-gram walk and naive Bayes log-sum, compiled (see naive_bayes.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__ngrams(void) { return PyModule_Create(&module); }
