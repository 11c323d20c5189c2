/* The quality stage's signals of one text, compiled (optional speed-up).
 *
 * Why C: signals.py's compute_signals makes a Python string per word (split and strip), a Counter,
 * a numpy array per n-gram length and a string per line for C4's line rules; on web pages of ~6 KB
 * that was ~1.5 ms a document, the largest pure-Python cost before deduplication. Here the text is
 * read once as code points: words, lines and paragraphs are spans of it, hashed in place, and no
 * object is made per word or per line.
 *
 * Exactness: every signal is the pure-Python path's (signals.compute_signals_reference), bit for
 * bit; tests/transforms/quality/test_signals_compiled.py checks it on the dev, scale and sample
 * pages and on hostile texts, and the character classes on every code point.
 * - Character classes are CPython's own (Py_UNICODE_ISSPACE for str.split()/strip() and the regular
 *   expressions' \s; ISALNUM and ISDECIMAL for \w and \d; ISUPPER/ISLOWER/ISTITLE for str.isupper).
 * - A word is a str.split() token with the characters of signals._PUNCT stripped from both ends
 *   (is_punct below is that set); an empty result is no word.
 * - "Contains a letter" is the regex [^\W\d_]: alphanumeric, not a decimal digit, not '_' (a word
 *   that isalpha() has one, so the Python path's `isalpha() or search` is this test alone).
 * - str.lower() is needed only to look for ASCII phrases ("javascript", "lorem ipsum", the policy
 *   phrases). The only code points above 127 whose lower() holds an ASCII character are U+212A
 *   (KELVIN SIGN, -> 'k') and U+0130 (-> 'i' + U+0307); the phrases neither contain U+0307 nor
 *   end in 'i', so U+0130 can never complete a match and counts as "no ASCII letter".
 * - The n-gram signals hash the same word ids (rank of first occurrence, from 1) with the same FNV
 *   fold and final mix as signals.ngram_signals and group n-grams by that hash, looking only at
 *   the positions whose (n-1)-gram repeats, as it does; ties between the most frequent n-grams go
 *   to the first to occur.
 * - Every fraction is a division of two integers (or, for the top n-grams, (chars * count) / total)
 *   in doubles, as Python computes it: integers below 2^53 convert exactly, so the quotients are
 *   the same IEEE values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FNV_PRIME 0x100000001B3ULL  /* transforms/hashing.py FNV_PRIME */
#define GOLDEN 0x9E3779B97F4A7C15ULL /* transforms/hashing.py GOLDEN */

/* ------------------------------------------------------------------ character classes */

static inline int is_space(Py_UCS4 c) { return Py_UNICODE_ISSPACE(c); }

/* signals._PUNCT: printable ASCII that is not alphanumeric, and the listed non-ASCII marks. */
static int is_punct(Py_UCS4 c) {
    if (c < 128) {
        return c >= 0x21 && c <= 0x7E && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    }
    switch (c) {
    case 0x00A1: case 0x00BF: case 0x00AB: case 0x00BB: case 0x2018: case 0x2019: case 0x201A:
    case 0x201C: case 0x201D: case 0x201E: case 0x2013: case 0x2014: case 0x2026: case 0x2022:
    case 0x00B7: case 0x00A7: case 0x00B6: case 0x2122: case 0x00AE: case 0x00A9: case 0x2039:
    case 0x203A: case 0x30FB: case 0x3001: case 0x3002: case 0xFF0C: case 0xFF01: case 0xFF1F:
    case 0xFF1A: case 0xFF1B:
        return 1;
    default:
        return 0;
    }
}

/* The regex [^\W\d_] on one character (sre: \w is ISALNUM or '_', \d is ISDECIMAL). */
static inline int is_letter(Py_UCS4 c) {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALNUM(c) && !Py_UNICODE_ISDECIMAL(c);
}

/* str.isupper() of a word of two or more characters: no lower- or title-case character, and at
 * least one upper-case one (CPython's unicode_isupper). */
static int word_isupper(const Py_UCS4 *s, Py_ssize_t n) {
    int cased = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = s[i];
        if (c < 128) { /* ASCII: only a-z are lower case, only A-Z upper case, none title case */
            if (c >= 'a' && c <= 'z') return 0;
            cased |= c >= 'A' && c <= 'Z';
            continue;
        }
        if (Py_UNICODE_ISLOWER(c) || Py_UNICODE_ISTITLE(c)) return 0;
        if (!cased && Py_UNICODE_ISUPPER(c)) cased = 1;
    }
    return cased;
}

static int word_has_letter(const Py_UCS4 *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_letter(s[i])) return 1;
    }
    return 0;
}

/* signals.BULLETS (a line starting with one is a bullet line). */
static inline int is_bullet(Py_UCS4 c) {
    switch (c) {
    case 0x2022: case 0x2023: case 0x25B6: case 0x25CF: case 0x25E6: case 0x25AA: case 0x25AB:
    case 0x2013: case 0x2014: case '-': case '*': case 0x00B7:
        return 1;
    default:
        return 0;
    }
}

/* signals.TERMINAL_PUNCT (FineWeb's line punctuation). */
static inline int is_terminal(Py_UCS4 c) {
    switch (c) {
    case '.': case '!': case '?': case '"': case 0x201D: case 0x2019: case '\'': case 0x2026:
    case 0x3002: case 0xFF01: case 0xFF1F: case ':':
        return 1;
    default:
        return 0;
    }
}

/* signals.C4_TERMINAL_PUNCT. */
static inline int is_c4_terminal(Py_UCS4 c) {
    return c == '.' || c == '!' || c == '?' || c == '"' || c == 0x201D;
}

/* signals.ELLIPSES: does the span end in "..." or U+2026? */
static inline int ends_with_ellipsis(const Py_UCS4 *s, Py_ssize_t n) {
    if (n >= 1 && s[n - 1] == 0x2026) return 1;
    return n >= 3 && s[n - 1] == '.' && s[n - 2] == '.' && s[n - 3] == '.';
}

/* The characters of signals._SENTENCE_END's run, and the closing marks it may be followed by
 * (which count_sentences' rstrip also removes). */
static inline int is_sentence_end(Py_UCS4 c) {
    return c == '.' || c == '!' || c == '?' || c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0x2026;
}

static inline int is_closing(Py_UCS4 c) {
    return c == '"' || c == 0x201D || c == 0x2019 || c == ')' || c == ']';
}

/* signals._MOJIBAKE's two classes. */
static inline int is_mojibake_lead(Py_UCS4 c) {
    return (c >= 0xC2 && c <= 0xC5) || c == 0xE2 || c == 0xF0;
}

static inline int is_mojibake_trail(Py_UCS4 c) {
    if (c >= 0x80 && c <= 0xBF) return 1;
    switch (c) {
    case 0x20AC: case 0x2122: case 0x0153: case 0x0161: case 0x017E: case 0x2019: case 0x201C:
    case 0x201D: case 0x2013: case 0x2014: case 0x0178: case 0x0152:
        return 1;
    default:
        return 0;
    }
}

/* The ASCII character c's str.lower() is, or 0 when it holds none that could complete a match of
 * an ASCII phrase (see the header). */
static inline Py_UCS4 lower_ascii(Py_UCS4 c) {
    if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return c == 0x212A ? 'k' : 0;
}

/* ------------------------------------------------------------------ spans and their table */

/* FNV over two code points a step (each step is invertible, so equal-length spans that differ
 * differ before the final mix); it hashes every word, line and paragraph, so halving its chain of
 * multiplies shows. */
static inline uint64_t span_hash(const Py_UCS4 *s, Py_ssize_t n) {
    uint64_t h = 0xCBF29CE484222325ULL ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 1 < n; i += 2) h = (h ^ ((uint64_t)s[i] | ((uint64_t)s[i + 1] << 32))) * FNV_PRIME;
    if (i < n) h = (h ^ s[i]) * FNV_PRIME;
    h ^= h >> 29;
    h *= GOLDEN;
    return h ^ (h >> 32);
}

/* An open-addressing set of spans of one text (words, lines or paragraphs), growing as it fills. */
typedef struct {
    uint64_t hash;
    Py_ssize_t start; /* -1: empty slot */
    Py_ssize_t len;
    Py_ssize_t value; /* the caller's: a word's id */
} Entry;

typedef struct {
    Entry *slots;
    size_t mask;
    size_t used;
} SpanTable;

static int table_alloc(SpanTable *t, size_t want) {
    size_t size = 16;
    while (size < want * 2) size <<= 1;
    t->slots = PyMem_Malloc(size * sizeof(Entry));
    if (!t->slots) return -1;
    for (size_t i = 0; i < size; i++) t->slots[i].start = -1;
    t->mask = size - 1;
    t->used = 0;
    return 0;
}

static int table_grow(SpanTable *t) {
    SpanTable bigger;
    if (table_alloc(&bigger, (t->mask + 1)) < 0) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        Entry *e = &t->slots[i];
        if (e->start < 0) continue;
        size_t j = (size_t)e->hash & bigger.mask;
        while (bigger.slots[j].start >= 0) j = (j + 1) & bigger.mask;
        bigger.slots[j] = *e;
    }
    bigger.used = t->used;
    PyMem_Free(t->slots);
    *t = bigger;
    return 0;
}

/* The entry of span [start, start + len) of u, added (value -1) when new; NULL when out of memory. */
static Entry *table_find_or_add(SpanTable *t, const Py_UCS4 *u, Py_ssize_t start, Py_ssize_t len, int *added) {
    if ((t->used + 1) * 2 > t->mask + 1 && table_grow(t) < 0) return NULL;
    uint64_t h = span_hash(u + start, len);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        Entry *e = &t->slots[i];
        if (e->start < 0) {
            e->hash = h;
            e->start = start;
            e->len = len;
            e->value = -1;
            t->used++;
            *added = 1;
            return e;
        }
        if (e->hash == h && e->len == len && memcmp(u + e->start, u + start, (size_t)len * sizeof(Py_UCS4)) == 0) {
            *added = 0;
            return e;
        }
        i = (i + 1) & t->mask;
    }
}

/* ------------------------------------------------------------------ the stop-word table */

/* A bytes object: uint64 slot count, then that many slots {uint64 hash; uint32 offset; uint32
 * length (UINT32_MAX: empty)}, then the words' code points (UCS4) the offsets point into. */
typedef struct {
    uint64_t hash;
    uint32_t offset;
    uint32_t len;
} WordSlot;

PyDoc_STRVAR(build_word_table_doc,
             "build_word_table(words) -> bytes\n\n"
             "The words (an iterable of str) as the table signals() looks words up in (its stop words).");

static PyObject *build_word_table(PyObject *self, PyObject *arg) {
    PyObject *words = PySequence_Fast(arg, "build_word_table: expected an iterable of str");
    if (!words) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(words);
    Py_ssize_t chars = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PySequence_Fast_GET_ITEM(words, i);
        if (!PyUnicode_Check(w)) {
            Py_DECREF(words);
            PyErr_SetString(PyExc_TypeError, "build_word_table: words must be str");
            return NULL;
        }
        chars += PyUnicode_GET_LENGTH(w);
    }
    uint64_t size = 16;
    while (size < (uint64_t)n * 2) size <<= 1;
    Py_ssize_t nbytes = (Py_ssize_t)(sizeof(uint64_t) + size * sizeof(WordSlot) + (uint64_t)chars * sizeof(Py_UCS4));
    PyObject *out = PyBytes_FromStringAndSize(NULL, nbytes);
    if (!out) {
        Py_DECREF(words);
        return NULL;
    }
    char *base = PyBytes_AS_STRING(out);
    memcpy(base, &size, sizeof(uint64_t));
    WordSlot *slots = (WordSlot *)(base + sizeof(uint64_t));
    Py_UCS4 *data = (Py_UCS4 *)(slots + size);
    for (uint64_t i = 0; i < size; i++) slots[i].len = UINT32_MAX;
    uint32_t offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PySequence_Fast_GET_ITEM(words, i);
        Py_ssize_t len = PyUnicode_GET_LENGTH(w);
        if (!PyUnicode_AsUCS4(w, data + offset, len, 0)) {
            Py_DECREF(words);
            Py_DECREF(out);
            return NULL;
        }
        uint64_t h = span_hash(data + offset, len);
        uint64_t j = h & (size - 1);
        int duplicate = 0;
        while (slots[j].len != UINT32_MAX) {
            if (slots[j].hash == h && slots[j].len == (uint32_t)len &&
                memcmp(data + slots[j].offset, data + offset, (size_t)len * sizeof(Py_UCS4)) == 0) {
                duplicate = 1;
                break;
            }
            j = (j + 1) & (size - 1);
        }
        if (duplicate) continue;
        slots[j].hash = h;
        slots[j].offset = offset;
        slots[j].len = (uint32_t)len;
        offset += (uint32_t)len;
    }
    Py_DECREF(words);
    return out;
}

static int in_word_table(const char *table, const Py_UCS4 *s, Py_ssize_t n) {
    uint64_t size;
    memcpy(&size, table, sizeof(uint64_t));
    const WordSlot *slots = (const WordSlot *)(table + sizeof(uint64_t));
    const Py_UCS4 *data = (const Py_UCS4 *)(slots + size);
    uint64_t h = span_hash(s, n);
    uint64_t j = h & (size - 1);
    while (slots[j].len != UINT32_MAX) {
        if (slots[j].hash == h && slots[j].len == (uint32_t)n &&
            memcmp(data + slots[j].offset, s, (size_t)n * sizeof(Py_UCS4)) == 0) {
            return 1;
        }
        j = (j + 1) & (size - 1);
    }
    return 0;
}

static int check_word_table(PyObject *table) {
    if (!PyBytes_Check(table) || PyBytes_GET_SIZE(table) < (Py_ssize_t)sizeof(uint64_t)) {
        PyErr_SetString(PyExc_TypeError, "signals: stop_table must come from build_word_table()");
        return -1;
    }
    uint64_t size;
    memcpy(&size, PyBytes_AS_STRING(table), sizeof(uint64_t));
    if (size == 0 || (size & (size - 1)) ||
        (uint64_t)PyBytes_GET_SIZE(table) < sizeof(uint64_t) + size * sizeof(WordSlot)) {
        PyErr_SetString(PyExc_ValueError, "signals: stop_table is not a table from build_word_table()");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ words */

/* The words of u[0:n] as spans (starts, lengths), in order; their count. Where cuts is not NULL,
 * also the paragraph cuts, as (start, end) pairs, and their number in *n_cuts: signals.
 * _PARAGRAPH_SPLIT ("\n\s*\n") cuts at every whitespace run holding two or more newlines (from
 * its first newline to its last; the pieces are stripped, so the whole run can go). */
static Py_ssize_t find_words(const Py_UCS4 *u, Py_ssize_t n, Py_ssize_t *starts, Py_ssize_t *lens, Py_ssize_t *cuts,
                             Py_ssize_t *n_cuts) {
    Py_ssize_t count = 0, i = 0, k = 0;
    while (i < n) {
        Py_ssize_t run = i, newlines = 0;
        while (i < n && is_space(u[i])) newlines += u[i++] == '\n';
        if (cuts && newlines >= 2) {
            cuts[2 * k] = run;
            cuts[2 * k + 1] = i;
            k++;
        }
        if (i >= n) break;
        Py_ssize_t a = i;
        while (i < n && !is_space(u[i])) i++;
        Py_ssize_t b = i;
        while (a < b && is_punct(u[a])) a++;
        while (b > a && is_punct(u[b - 1])) b--;
        if (a < b) {
            starts[count] = a;
            lens[count] = b - a;
            count++;
        }
    }
    if (n_cuts) *n_cuts = k;
    return count;
}

/* The text as code points (a copy), its length in *n; NULL with an exception set on failure. */
static Py_UCS4 *code_points(PyObject *text, Py_ssize_t *n) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "signals: text must be str");
        return NULL;
    }
    *n = PyUnicode_GET_LENGTH(text);
    /* one spare slot so that an empty text still gets a buffer */
    Py_UCS4 *u = PyMem_Malloc(((size_t)*n + 1) * sizeof(Py_UCS4));
    if (!u) {
        PyErr_NoMemory();
        return NULL;
    }
    if (*n && !PyUnicode_AsUCS4(text, u, *n, 0)) {
        PyMem_Free(u);
        return NULL;
    }
    return u;
}

PyDoc_STRVAR(split_words_doc,
             "split_words(text: str) -> list[str]\n\n"
             "signals.split_words: str.split() tokens with signals._PUNCT stripped from both ends, "
             "empty ones dropped.");

static PyObject *split_words(PyObject *self, PyObject *text) {
    Py_ssize_t n;
    Py_UCS4 *u = code_points(text, &n);
    if (!u) return NULL;
    Py_ssize_t cap = n / 2 + 1;
    Py_ssize_t *starts = PyMem_Malloc((size_t)cap * 2 * sizeof(Py_ssize_t));
    if (!starts) {
        PyMem_Free(u);
        return PyErr_NoMemory();
    }
    Py_ssize_t *lens = starts + cap;
    Py_ssize_t count = find_words(u, n, starts, lens, NULL, NULL);
    PyObject *out = PyList_New(count);
    for (Py_ssize_t i = 0; out && i < count; i++) {
        PyObject *w = PyUnicode_Substring(text, starts[i], starts[i] + lens[i]);
        if (!w) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, w);
    }
    PyMem_Free(starts);
    PyMem_Free(u);
    return out;
}

/* ------------------------------------------------------------------ n-gram signals */

/* signals.ngram_signals over the word ids (1 = first distinct word, ...) and lengths: top[n] for
 * n = 2..4 and dup[n] for n = 5..10 (other entries untouched). counts[id] is the word's count,
 * n_vocab the number of distinct words. 0 on success, -1 out of memory. */
static int ngram_signals(const uint64_t *ids, const Py_ssize_t *lens, Py_ssize_t nw, const Py_ssize_t *counts,
                         Py_ssize_t n_vocab, Py_ssize_t total_chars, double *top, double *dup) {
    for (int n = 0; n <= 10; n++) top[n] = dup[n] = 0.0;
    if (nw < 2 || n_vocab == nw) return 0; /* no word repeats, so no n-gram does either */
    const double total = (double)(total_chars > 1 ? total_chars : 1);
    int rc = -1;
    Py_ssize_t *csum = PyMem_Malloc((size_t)(nw + 1) * sizeof(Py_ssize_t));
    Py_ssize_t *pos = PyMem_Malloc((size_t)nw * sizeof(Py_ssize_t));
    uint64_t *raw = PyMem_Malloc((size_t)nw * sizeof(uint64_t));
    uint64_t *hashes = PyMem_Malloc((size_t)nw * sizeof(uint64_t)); /* by group */
    Py_ssize_t *gid = PyMem_Malloc((size_t)nw * sizeof(Py_ssize_t));
    Py_ssize_t *first = PyMem_Malloc((size_t)nw * sizeof(Py_ssize_t));
    Py_ssize_t *gcount = PyMem_Malloc((size_t)nw * sizeof(Py_ssize_t));
    size_t slot_cap = 16;
    while (slot_cap < (size_t)nw * 2) slot_cap <<= 1;
    Py_ssize_t *slots = PyMem_Malloc(slot_cap * sizeof(Py_ssize_t)); /* group + 1; 0: empty */
    if (!csum || !pos || !raw || !hashes || !gid || !first || !gcount || !slots) goto done;

    csum[0] = 0;
    for (Py_ssize_t i = 0; i < nw; i++) csum[i + 1] = csum[i] + lens[i];
    /* positions (ascending) that may start a repeated n-gram: those of repeated words at first */
    Py_ssize_t k = 0;
    for (Py_ssize_t p = 0; p < nw; p++) {
        if (counts[ids[p]] > 1) {
            pos[k] = p;
            raw[k] = ids[p] * FNV_PRIME;
            k++;
        }
    }
    const Py_ssize_t last = nw;
    for (int n = 2; n <= 10; n++) {
        const int is_top = n <= 4;
        if (last < n + (is_top ? 0 : 1)) break;
        while (k > 0 && pos[k - 1] > last - n) k--; /* ascending: those that fit are a prefix */
        if (k < 2) break;                            /* no n-gram repeats, nor any longer one */
        size_t mask = 16;
        while (mask < (size_t)k * 2) mask <<= 1;
        mask -= 1;
        memset(slots, 0, (mask + 1) * sizeof(Py_ssize_t));
        Py_ssize_t n_groups = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            uint64_t r = (raw[j] ^ ids[pos[j] + n - 1]) * FNV_PRIME;
            raw[j] = r;
            uint64_t h = r ^ (r >> 29);
            h *= GOLDEN;
            size_t s = (size_t)(h ^ (h >> 32)) & mask;
            for (;;) {
                Py_ssize_t g = slots[s];
                if (g == 0) {
                    slots[s] = n_groups + 1;
                    first[n_groups] = pos[j];
                    gcount[n_groups] = 1;
                    hashes[n_groups] = h;
                    gid[j] = n_groups++;
                    break;
                }
                if (hashes[g - 1] == h) {
                    gcount[g - 1]++;
                    gid[j] = g - 1;
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        if (is_top) {
            /* the most frequent n-gram; among equals, the first to occur (groups are in that order) */
            Py_ssize_t best = 0;
            for (Py_ssize_t g = 1; g < n_groups; g++) {
                if (gcount[g] > gcount[best]) best = g;
            }
            if (gcount[best] > 1) {
                Py_ssize_t i = first[best];
                top[n] = (double)(csum[i + n] - csum[i] + n - 1) * (double)gcount[best] / total;
            }
        } else {
            /* characters of the words covered by an n-gram that occurred earlier, each word once */
            Py_ssize_t covered = 0, end = 0;
            int any = 0;
            for (Py_ssize_t j = 0; j < k; j++) {
                Py_ssize_t p = pos[j];
                if (first[gid[j]] == p) continue;
                any = 1;
                Py_ssize_t from = p > end ? p : end;
                if (p + n > from) covered += csum[p + n] - csum[from];
                if (p + n > end) end = p + n;
            }
            if (!any) {
                rc = 0;
                goto done; /* no repeated n-gram means no repeated longer n-gram either */
            }
            dup[n] = (double)covered / total;
        }
        /* keep the members of repeated n-grams, in order */
        Py_ssize_t m = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            if (gcount[gid[j]] > 1) {
                pos[m] = pos[j];
                raw[m] = raw[j];
                m++;
            }
        }
        k = m;
    }
    rc = 0;
done:
    PyMem_Free(csum);
    PyMem_Free(pos);
    PyMem_Free(raw);
    PyMem_Free(hashes);
    PyMem_Free(gid);
    PyMem_Free(first);
    PyMem_Free(gcount);
    PyMem_Free(slots);
    if (rc < 0) PyErr_NoMemory();
    return rc;
}

/* ------------------------------------------------------------------ C4's line rules */

/* Whether the lowered line s[0:n] (lower_ascii) holds the ASCII phrase at position i. */
static inline int phrase_at(const Py_UCS4 *s, Py_ssize_t n, Py_ssize_t i, const char *phrase, Py_ssize_t len) {
    if (i + len > n) return 0;
    for (Py_ssize_t k = 0; k < len; k++) {
        if (lower_ascii(s[i + k]) != (Py_UCS4)(unsigned char)phrase[k]) return 0;
    }
    return 1;
}

#define PHRASE(s) s, (Py_ssize_t)(sizeof(s) - 1)

/* Which phrase family may start with a pair of ASCII letters: letter_code is 1-26 for a-z and
 * A-Z (0 otherwise), phrase_start[32 * first + second] the phrases' first letter (0: none). Most
 * positions of a line are rejected by these two look-ups without a hard-to-predict branch. */
static unsigned char letter_code[128];
static unsigned char phrase_start[32 * 32];

static const char *const PHRASES[] = {"lorem ipsum",  "javascript",    "terms of use", "privacy policy",
                                      "cookie policy", "uses cookies", "use of cookies", "use cookies"};

static void fill_phrase_starts(void) {
    for (int c = 'a'; c <= 'z'; c++) letter_code[c] = letter_code[c - 32] = (unsigned char)(c - 'a' + 1);
    for (size_t k = 0; k < sizeof(PHRASES) / sizeof(PHRASES[0]); k++) {
        unsigned char a = (unsigned char)PHRASES[k][0], b = (unsigned char)PHRASES[k][1];
        phrase_start[32 * letter_code[a] + letter_code[b]] = a;
    }
}

static inline unsigned letter_of(Py_UCS4 c) { return c < 128 ? letter_code[c] : 0; }

/* Which of "lorem ipsum" (1), "javascript" (2), a policy phrase (4) the line's lower() holds, and
 * whether the line holds a '{' (8). (A phrase's first two characters are ASCII letters: no other
 * character lower-cases to one there, U+212A's 'k' comes later in a phrase.) */
static int c4_phrases(const Py_UCS4 *s, Py_ssize_t n) {
    int found = 0;
    unsigned next = n ? letter_of(s[0]) : 0;
    for (Py_ssize_t i = 0; i < n && found != 15; i++) {
        unsigned first = next;
        next = i + 1 < n ? letter_of(s[i + 1]) : 0;
        if (s[i] == '{') found |= 8;
        Py_UCS4 c = phrase_start[32 * first + next];
        if (!c) continue;
        switch (c) {
        case 'l':
            if (phrase_at(s, n, i, PHRASE("lorem ipsum"))) found |= 1;
            break;
        case 'j':
            if (phrase_at(s, n, i, PHRASE("javascript"))) found |= 2;
            break;
        case 't':
            if (phrase_at(s, n, i, PHRASE("terms of use"))) found |= 4;
            break;
        case 'p':
            if (phrase_at(s, n, i, PHRASE("privacy policy"))) found |= 4;
            break;
        case 'c':
            if (phrase_at(s, n, i, PHRASE("cookie policy"))) found |= 4;
            break;
        case 'u':
            if (phrase_at(s, n, i, PHRASE("uses cookies")) || phrase_at(s, n, i, PHRASE("use of cookies")) ||
                phrase_at(s, n, i, PHRASE("use cookies")))
                found |= 4;
            break;
        default:
            break;
        }
    }
    return found;
}

/* signals.count_sentences: runs of sentence-ending marks followed by whitespace, the end, a closing
 * mark or an ASCII capital; one more for an unterminated tail. A run that is not so followed cannot
 * match from any of its positions either (what follows a shorter part of the run is another mark). */
static Py_ssize_t count_sentences(const Py_UCS4 *s, Py_ssize_t n) {
    Py_ssize_t count = 0, i = 0;
    while (i < n) {
        if ((s[i] > '?' && s[i] < 0x2026) || !is_sentence_end(s[i])) { /* letters fail the first test */
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && is_sentence_end(s[j])) j++;
        if (j == n || is_space(s[j]) || is_closing(s[j]) || (s[j] >= 'A' && s[j] <= 'Z')) count++;
        i = j;
    }
    Py_ssize_t e = n;
    while (e > 0 && is_closing(s[e - 1])) e--;
    int ended = e > 0 && is_sentence_end(s[e - 1]);
    return ended && count ? count : count + 1;
}

/* The line s[0:n] with signals.C4_CITATION's matches removed, into out; the new length. */
static Py_ssize_t remove_citations(const Py_UCS4 *s, Py_ssize_t n, Py_UCS4 *out) {
    static const char edit[] = "[edit]";
    static const char needed[] = "[citation needed]";
    Py_ssize_t m = 0, i = 0;
    while (i < n) {
        if (s[i] == '[') {
            Py_ssize_t j = i + 1;
            while (j < n && Py_UNICODE_ISDECIMAL(s[j])) j++;
            if (j < n && s[j] == ']') {
                i = j + 1;
                continue;
            }
            Py_ssize_t len = (Py_ssize_t)sizeof(edit) - 1, k;
            for (k = 0; k < len && i + k < n && s[i + k] == (Py_UCS4)edit[k]; k++) {
            }
            if (k == len) {
                i += len;
                continue;
            }
            len = (Py_ssize_t)sizeof(needed) - 1;
            for (k = 0; k < len && i + k < n && s[i + k] == (Py_UCS4)needed[k]; k++) {
            }
            if (k == len) {
                i += len;
                continue;
            }
        }
        out[m++] = s[i++];
    }
    return m;
}

typedef struct {
    Py_ssize_t kept_lines, kept_sentences, policy_lines, js_lines;
    int curly, lorem;
} C4Counts;

/* C4's rules on one stripped, non-empty line (signals.compute_signals_reference's C4 loop). */
static void c4_line(const Py_UCS4 *line, Py_ssize_t n, Py_UCS4 *scratch, Py_ssize_t min_words, int terminal,
                    C4Counts *c4) {
    const Py_UCS4 *s = line;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (line[i] == '[') {
            n = remove_citations(line, n, scratch);
            while (n > 0 && is_space(scratch[n - 1])) n--; /* .rstrip() */
            s = scratch;
            break;
        }
    }
    if (terminal && (n == 0 || !is_c4_terminal(s[n - 1]) || ends_with_ellipsis(s, n))) return;
    Py_ssize_t tokens = 0;
    for (Py_ssize_t i = 0; i < n && tokens < min_words; i++) {
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1]))) tokens++;
    }
    if (tokens < min_words) return;
    int found = c4_phrases(s, n);
    if (found & 1) c4->lorem = 1;
    if (found & 2) {
        c4->js_lines++;
        return;
    }
    if (found & 8) c4->curly = 1;
    if (found & 4) {
        c4->policy_lines++;
        return;
    }
    c4->kept_lines++;
    c4->kept_sentences += count_sentences(s, n);
}

/* ------------------------------------------------------------------ all signals */

static inline double ratio(Py_ssize_t a, Py_ssize_t b) { return b ? (double)a / (double)b : 0.0; }

PyDoc_STRVAR(signals_doc,
             "signals(text, stop_table, short_line_length, c4_min_words_per_line, c4_terminal_punct) -> tuple\n\n"
             "The values of QualitySignals' fields, in their order, as signals.compute_signals_reference "
             "computes them; stop_table: build_word_table() of the stop words as written (all casings).");

static PyObject *signals(PyObject *self, PyObject *args) {
    PyObject *text, *stop_table;
    Py_ssize_t short_line_length, min_words;
    int terminal;
    if (!PyArg_ParseTuple(args, "UOnnp:signals", &text, &stop_table, &short_line_length, &min_words, &terminal))
        return NULL;
    if (check_word_table(stop_table) < 0) return NULL;
    const char *stops = PyBytes_AS_STRING(stop_table);
    Py_ssize_t n;
    Py_UCS4 *u = code_points(text, &n);
    if (!u) return NULL;

    PyObject *result = NULL;
    Py_ssize_t cap = n / 2 + 1;
    Py_ssize_t *starts = PyMem_Malloc((size_t)cap * sizeof(Py_ssize_t));
    Py_ssize_t *lens = PyMem_Malloc((size_t)cap * sizeof(Py_ssize_t));
    uint64_t *ids = PyMem_Malloc((size_t)cap * sizeof(uint64_t));
    Py_ssize_t *counts = PyMem_Malloc(((size_t)cap + 1) * sizeof(Py_ssize_t)); /* by id */
    Py_UCS4 *scratch = PyMem_Malloc(((size_t)n + 1) * sizeof(Py_UCS4));
    size_t newline_cap = 256; /* grows as newlines are found */
    Py_ssize_t *newline_at = PyMem_Malloc(newline_cap * sizeof(Py_ssize_t));
    Py_ssize_t *cuts = NULL; /* paragraph cuts, sized once the newlines are counted */
    SpanTable vocab = {NULL, 0, 0}, lines = {NULL, 0, 0}, paras = {NULL, 0, 0};
    if (!starts || !lens || !ids || !counts || !scratch || !newline_at) {
        PyErr_NoMemory();
        goto done;
    }

    /* one pass over the characters: '#', "..." (non-overlapping, as str.count: a run of k dots
     * holds k / 3), U+2026, mojibake pairs (the lead and trail classes are disjoint, so pairs
     * never overlap) and where the newlines are */
    Py_ssize_t n_symbols = 0, newlines = 0, mojibake = 0, dots = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = u[i];
        if (c == '.') {
            dots++;
            continue;
        }
        n_symbols += dots / 3;
        dots = 0;
        if (c < 0x80) {
            if (c == '\n') {
                if ((size_t)newlines + 1 >= newline_cap) {
                    Py_ssize_t *bigger = PyMem_Realloc(newline_at, newline_cap * 2 * sizeof(Py_ssize_t));
                    if (!bigger) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    newline_at = bigger;
                    newline_cap *= 2;
                }
                newline_at[newlines++] = i;
            } else if (c == '#') {
                n_symbols++;
            }
        } else if (c == 0x2026) {
            n_symbols++;
        } else if (is_mojibake_lead(c) && i + 1 < n && is_mojibake_trail(u[i + 1])) {
            mojibake++;
        }
    }
    n_symbols += dots / 3;
    newline_at[newlines] = n; /* the last line ends at the text's end */
    /* a cut holds two newlines of its own */
    cuts = PyMem_Malloc(((size_t)newlines / 2 + 1) * 2 * sizeof(Py_ssize_t));
    if (!cuts) {
        PyErr_NoMemory();
        goto done;
    }

    /* words: ids by first occurrence, counts, and each distinct word's classes once */
    Py_ssize_t n_cuts;
    Py_ssize_t n_words = find_words(u, n, starts, lens, cuts, &n_cuts);
    Py_ssize_t word_chars = 0, caps_words = 0, alpha_words = 0, stop_hits = 0, n_vocab = 0;
    if (table_alloc(&vocab, 64) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    /* flags of a distinct word, by id: bit 0 all caps, 1 has a letter, 2 stop word; in scratch,
     * free until the line pass ((n + 1) * 4 bytes, more than the n / 2 + 2 ids) */
    unsigned char *flags = (unsigned char *)scratch;
    for (Py_ssize_t w = 0; w < n_words; w++) {
        int added;
        Entry *e = table_find_or_add(&vocab, u, starts[w], lens[w], &added);
        if (!e) {
            PyErr_NoMemory();
            goto done;
        }
        if (added) {
            const Py_UCS4 *s = u + starts[w];
            Py_ssize_t len = lens[w];
            e->value = ++n_vocab;
            counts[n_vocab] = 0;
            flags[n_vocab] = (unsigned char)((len > 1 && word_isupper(s, len)) | (word_has_letter(s, len) << 1) |
                                             (in_word_table(stops, s, len) << 2));
        }
        Py_ssize_t id = e->value;
        ids[w] = (uint64_t)id;
        counts[id]++;
        word_chars += lens[w];
        unsigned char f = flags[id];
        caps_words += f & 1;
        alpha_words += (f >> 1) & 1;
        stop_hits += (f >> 2) & 1;
    }

    double top[11], dup[11];
    if (ngram_signals(ids, lens, n_words, counts, n_vocab, n, top, dup) < 0) goto done;

    /* lines: text.split("\n"), each stripped; the non-empty ones count */
    Py_ssize_t n_lines = 0, bullet_lines = 0, ellipsis_lines = 0, punct_lines = 0, short_lines = 0;
    Py_ssize_t dup_lines = 0, dup_line_chars = 0, nonspace_chars = 0;
    C4Counts c4 = {0, 0, 0, 0, 0, 0};
    if (table_alloc(&lines, (size_t)newlines + 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0, start = 0; k <= newlines; start = newline_at[k++] + 1) {
        Py_ssize_t a = start, b = newline_at[k];
        while (a < b && is_space(u[a])) a++;
        while (b > a && is_space(u[b - 1])) b--;
        if (a == b) continue;
        Py_ssize_t len = b - a;
        const Py_UCS4 *s = u + a;
        n_lines++;
        nonspace_chars += len;
        bullet_lines += is_bullet(s[0]);
        ellipsis_lines += ends_with_ellipsis(s, len);
        punct_lines += is_terminal(s[len - 1]);
        short_lines += len <= short_line_length;
        int added;
        if (!table_find_or_add(&lines, u, a, len, &added)) {
            PyErr_NoMemory();
            goto done;
        }
        if (!added) {
            dup_lines++;
            dup_line_chars += len;
        }
        c4_line(s, len, scratch, min_words, terminal, &c4);
    }

    /* paragraphs: the pieces between find_words' cuts, stripped, empty ones dropped */
    Py_ssize_t n_paras = 0, dup_paras = 0, dup_para_chars = 0;
    if (table_alloc(&paras, (size_t)n_cuts + 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0, start = 0; k <= n_cuts; start = cuts[2 * k + 1], k++) {
        Py_ssize_t a = start, b = k < n_cuts ? cuts[2 * k] : n;
        while (a < b && is_space(u[a])) a++;
        while (b > a && is_space(u[b - 1])) b--;
        if (a == b) continue;
        int added;
        n_paras++;
        if (!table_find_or_add(&paras, u, a, b - a, &added)) {
            PyErr_NoMemory();
            goto done;
        }
        if (!added) {
            dup_paras++;
            dup_para_chars += b - a;
        }
    }

    result = Py_BuildValue(
        "(nnddddd" "n" "dddd" "ddd" "dddddd" "NN" "ddd" "n" "dddd" "dd)",
        n_words, n_lines, ratio(word_chars, n_words), ratio(n_symbols, n_words), ratio(bullet_lines, n_lines),
        ratio(ellipsis_lines, n_lines), ratio(alpha_words, n_words), stop_hits,
        /* Gopher repetition: shares of the non-empty lines and paragraphs, and of the text's length */
        n_lines && n ? (double)dup_lines / (double)n_lines : 0.0,
        n_paras && n ? (double)dup_paras / (double)n_paras : 0.0,
        n_lines && n ? (double)dup_line_chars / (double)n : 0.0,
        n_paras && n ? (double)dup_para_chars / (double)n : 0.0,
        top[2], top[3], top[4], dup[5], dup[6], dup[7], dup[8], dup[9], dup[10],
        PyBool_FromLong(c4.lorem), PyBool_FromLong(c4.curly), ratio(c4.js_lines, n_lines),
        ratio(c4.policy_lines, n_lines), ratio(c4.kept_lines, n_lines), c4.kept_sentences,
        ratio(punct_lines, n_lines), ratio(short_lines, n_lines), ratio(dup_line_chars, nonspace_chars),
        ratio(newlines, n_words), ratio(mojibake, n_words), ratio(caps_words, n_words));

done:
    PyMem_Free(u);
    PyMem_Free(starts);
    PyMem_Free(lens);
    PyMem_Free(ids);
    PyMem_Free(counts);
    PyMem_Free(scratch);
    PyMem_Free(newline_at);
    PyMem_Free(cuts);
    PyMem_Free(vocab.slots);
    PyMem_Free(lines.slots);
    PyMem_Free(paras.slots);
    return result;
}

static PyMethodDef methods[] = {
    {"build_word_table", build_word_table, METH_O, build_word_table_doc},
    {"split_words", split_words, METH_O, split_words_doc},
    {"signals", signals, METH_VARARGS, signals_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_signals",
    "The quality stage's signals in one pass over a text's code points (optional; signals.py is the reference).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__signals(void) {
    fill_phrase_starts();
    return PyModule_Create(&module);
}
