"""Text normalisation and 64-bit word n-gram hashing for decontamination, vectorised with numpy.

Documents and benchmark items go through exactly the same function, so a benchmark item matches
however a page re-typed it: Unicode NFKC, case folding, punctuation and symbols *deleted* (so
``dik-dik`` and ``dikdik``, ``it's`` and ``its`` are the same word), whitespace collapsed. Words are
then the whitespace-separated tokens of what remains.

Why numpy and not ``str.split`` plus ``hashlib``: a page has thousands of words and the stage must
keep up with the cheap filters (thousands of documents per second per core). Hashing word by word in
Python costs about a microsecond a word; here every step is an array operation over the bytes:

* a code point class table (all of Unicode) deletes punctuation and finds word boundaries;
* a word's hash is a polynomial hash of its code points read off a prefix sum (``uint64`` arithmetic wraps
  modulo 2**64, which is the modulus), then mixed with the splitmix64 finaliser;
* an L-word gram's hash is the same construction one level up, over the word hashes, with ``L``
  mixed in, so any gram length costs a few array operations.

All constants are fixed, so hashes are stable across processes, machines and runs (never Python's
salted ``hash()``).
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpusforge.transforms import derived_cache
from corpusforge.transforms.hashing import FNV_PRIME, GOLDEN, U64, PowerTable, splitmix64

try:  # the optional compiled hashing and look-up (setup.py); the numpy paths give the same hashes
    from corpusforge.transforms.decontam import _grams
except ImportError:  # pragma: no cover - depends on the build
    _grams = None

_LEN_SALT = U64(0xD6E8FEB86659FD93)

# Code point classes: 0 = delete (punctuation, symbols, control and format characters such as
# zero-width spaces), 1 = separator (whitespace), 2 = part of a word (letters, digits, combining
# marks, ...). A table over all of Unicode (1.1 MB, built once per process in a fraction of a second)
# lets numpy classify a whole document in one indexing operation.
_DELETE, _SPACE, _WORD = 0, 1, 2
_TABLE: np.ndarray | None = None
_TABLE_LOCK = threading.Lock()


def _class_of(ch: str) -> int:
    if ch.isspace():
        return _SPACE
    cat = unicodedata.category(ch)
    if cat[0] in "PS" or cat in ("Cc", "Cf"):
        return _DELETE
    return _WORD


# Planes 4-13 are unassigned and planes 15-16 private use (all _WORD) in every Unicode version up
# to 16 (Python 3.11 has 14): the table skips them there, a third of the build's ~0.3 s per process.
_ALL_WORD_PLANES = ((0x40000, 0xE0000), (0xF0000, 0x110000))


def _class_ranges() -> list[tuple[int, int]]:
    """The code point ranges :func:`_class_table` must classify one by one."""
    if int(unicodedata.unidata_version.split(".")[0]) > 16:
        return [(0, 0x110000)]  # a newer Unicode may assign in those planes: classify everything
    return [(0, _ALL_WORD_PLANES[0][0]), (_ALL_WORD_PLANES[0][1], _ALL_WORD_PLANES[1][0])]


def _class_table() -> np.ndarray:
    """The class of every code point. Deriving it calls :func:`_class_of` for every code point of the
    planes :func:`_class_ranges` names (~0.06 s of CPU, in every worker before its first document is
    hashed; ~0.25 s on a newer Unicode, where every plane is classified), so it is read from the derived-data
    cache (``transforms/derived_cache.py``) when this machine derived it before from the same Unicode
    database (``unicodedata.unidata_version``, the Python version) and this module's source."""
    global _TABLE
    if _TABLE is None:
        with _TABLE_LOCK:
            if _TABLE is None:
                key = derived_cache.content_key(
                    CLASS_TABLE_KIND,
                    [unicodedata.unidata_version, derived_cache.runtime_fingerprint(), Path(__file__)],
                )
                _TABLE = derived_cache.load_or_build(
                    CLASS_TABLE_KIND, key, ".npy", _build_class_table, _save_array, _load_class_table
                )
    return _TABLE


CLASS_TABLE_KIND = "decontam-word-classes-v1"


def _build_class_table() -> np.ndarray:
    table = np.full(0x110000, _WORD, dtype=np.int8)
    for lo, hi in _class_ranges():
        for cp in range(lo, hi):
            if not 0xD800 <= cp <= 0xDFFF:
                c = _class_of(chr(cp))
                if c != _WORD:
                    table[cp] = c
    return table


def _save_array(table: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, table, allow_pickle=False)


def _load_class_table(path: Path) -> np.ndarray:
    table = np.load(path, allow_pickle=False)
    if table.dtype != np.int8 or table.shape != (0x110000,):
        raise ValueError(f"cached class table {path} has shape {table.shape}, dtype {table.dtype}")
    return table


# Case folding by table: each code point's one-character casefold (itself when it has none), or
# _MULTI for the ~100 that fold to several characters (ß -> ss); every code point that folds lies
# below _FOLD_LIMIT. str.casefold() on a non-ASCII page costs ~4x the table look-up.
_FOLD_LIMIT = 0x1E922
_MULTI = np.uint32(0xFFFFFFFF)
_FOLD: np.ndarray | None = None


def _fold_table() -> np.ndarray:
    global _FOLD
    if _FOLD is None:
        with _TABLE_LOCK:
            if _FOLD is None:
                table = np.arange(0x110000, dtype=np.uint32)
                for cp in range(_FOLD_LIMIT):
                    ch = chr(cp)
                    folded = ch.casefold()
                    if folded != ch:
                        table[cp] = ord(folded) if len(folded) == 1 else _MULTI
                _FOLD = table
    return _FOLD


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, normalising only the pieces that need it.

    A space or newline is a stable boundary (a starter that never composes or reorders with its
    neighbours), so NFKC of the whole is the NFKC of each piece between them joined back; most of
    a page is already normalised and the quick check skips it, where ``normalize`` redoes the page.
    A line that is not normalised is halved at a space until the halves that still need it are
    short (a third faster than normalising it word by word).
    """
    if unicodedata.is_normalized("NFKC", text):
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not unicodedata.is_normalized("NFKC", line):
            lines[i] = _nfkc_halves(line)
    return "\n".join(lines)


_SHORT_PIECE = 256  # characters: below this a piece is normalised whole
_SPAN_GAP = 32  # nfkc_spans: spans closer than this are normalised as one (fewer calls)
_UNSAFE: bytes | None = None


def _unsafe_bitmap() -> bytes:
    """The BMP characters that are not a stable NFKC starter, as a bitmap (for ``nfkc_spans``):
    changed by NFKC on their own, a non-zero combining class, or able to combine with the character
    before them (the second character of a canonical pair, and Hangul's vowel and final jamo).
    Surrogates count as unsafe too. A text of safe characters only is NFKC already, and a boundary
    lies before every safe character, so NFKC may be applied to the spans around the unsafe ones
    alone. Built in ~20 ms per process."""
    global _UNSAFE
    if _UNSAFE is None:
        unsafe = np.zeros(0x10000, dtype=bool)
        for cp in range(0x10000):
            ch = chr(cp)
            if unicodedata.combining(ch) or not unicodedata.is_normalized("NFKC", ch):
                unsafe[cp] = True
            decomposition = unicodedata.decomposition(ch)
            if decomposition and not decomposition.startswith("<"):
                parts = decomposition.split()
                if len(parts) == 2:
                    unsafe[int(parts[1], 16)] = True  # may compose with the character before it
        unsafe[0x1161:0x1176] = unsafe[0x11A8:0x11C3] = unsafe[0xD800:0xE000] = True
        _UNSAFE = np.packbits(unsafe, bitorder="little").tobytes()
    return _UNSAFE


def _nfkc_compiled(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, normalising only the spans ``_grams.nfkc_spans``
    finds around the characters that are not stable starters: a page with a few curly quotes'
    neighbours, non-breaking spaces or ellipses pays for those few characters, not for its lines."""
    spans = _grams.nfkc_spans(text, _unsafe_bitmap(), _SPAN_GAP)
    if not spans:
        return text
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pieces.append(unicodedata.normalize("NFKC", text[start:end]))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _nfkc_halves(piece: str) -> str:
    if unicodedata.is_normalized("NFKC", piece):
        return piece
    if len(piece) > _SHORT_PIECE:
        cut = piece.find(" ", len(piece) // 2)
        if cut < 0:
            cut = piece.rfind(" ", 0, len(piece) // 2)
        if cut >= 0:
            return _nfkc_halves(piece[:cut]) + " " + _nfkc_halves(piece[cut + 1 :])
    return unicodedata.normalize("NFKC", piece)


def _codepoints(text: str) -> np.ndarray:
    """Case-folded (and, for non-ASCII text, NFKC) code points of ``text``: exactly those of
    ``unicodedata.normalize("NFKC", text).casefold()``."""
    if text.isascii():
        return np.frombuffer(text.lower().encode("ascii"), dtype=np.uint8)  # casefold == lower here
    text = _nfkc(text)
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    folded = _fold_table()[cps]
    multi = np.flatnonzero(folded == _MULTI)
    if multi.size == 0:
        return folded
    # characters folding to several (ß -> ss): make room for each expansion and write it in
    expansions = [_expansion(int(cps[i])) for i in multi]
    counts = np.ones(folded.size, dtype=np.int64)
    counts[multi] = [e.size for e in expansions]
    out = np.repeat(folded, counts)
    starts = np.cumsum(counts) - counts
    for i, e in zip(starts[multi].tolist(), expansions, strict=True):
        out[i : i + e.size] = e
    return out


@functools.lru_cache(maxsize=256)
def _expansion(cp: int) -> np.ndarray:
    return np.frombuffer(chr(cp).casefold().encode("utf-32-le"), dtype=np.uint32)


def _codepoints_reference(text: str) -> np.ndarray:
    """The definition :func:`_codepoints` is tested against (the straightforward, slower way)."""
    if text.isascii():
        return np.frombuffer(text.lower().encode("ascii"), dtype=np.uint8)
    text = unicodedata.normalize("NFKC", text)
    return np.frombuffer(text.casefold().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _kept_codepoints(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Code points with punctuation deleted, and their classes (separator or word)."""
    cps = _codepoints(text)
    cls = _class_table()[cps]
    drop = cls == _DELETE
    if drop.any():
        keep = ~drop
        cps, cls = cps[keep], cls[keep]
    return cps, cls


def benchmark_matching_form(text: str) -> str:
    """The matching form of ``text``: NFKC, case-folded, punctuation deleted, single spaces.

    This is the readable definition (used in ``detail`` and by tests); :func:`word_hashes` hashes
    exactly these words without building the string.
    """
    cps, cls = _kept_codepoints(text)
    cps = np.where(cls == _SPACE, 32, cps).astype(np.uint32)
    return " ".join(cps.tobytes().decode("utf-32-le", "surrogatepass").split())


_BYTE_POW = PowerTable(FNV_PRIME)
_WORD_POW = PowerTable(GOLDEN)
_EMPTY = np.zeros(0, dtype=U64)


def _hash_words(data: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word hashes, and each word's start and end in ``data`` (kept code points and classes)."""
    is_word = (cls == _WORD).view(np.int8)
    edges = np.diff(is_word, prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    if starts.size == 0:
        return _EMPTY, starts, starts
    ends = np.flatnonzero(edges == -1)
    pw, ipw = _BYTE_POW.ensure(data.size + 1)
    with np.errstate(over="ignore"):
        prefix = np.empty(data.size + 1, dtype=U64)
        prefix[0] = 0
        np.cumsum(data.astype(U64) * pw[: data.size], out=prefix[1:])
        raw = (prefix[ends] - prefix[starts]) * ipw[starts]
        return splitmix64(raw + (ends - starts).astype(U64)), starts, ends


def word_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the words of ``normalize_for_matching(text)``, in order."""
    data, cls = _kept_codepoints(text)
    if data.size == 0:
        return _EMPTY
    return _hash_words(data, cls)[0]


_SEP = 0x1E  # ASCII record separator: joins many texts into one array, stable under NFKC


@dataclass
class WordBatch:
    """The words of many texts hashed in one pass (index building: thousands of short texts)."""

    hashes: np.ndarray  # uint64 per word, all texts in order
    text_of_word: np.ndarray  # which text each word belongs to (non-decreasing)
    numeric: np.ndarray  # bool per word: made only of the digits 0-9
    n_words: np.ndarray  # words per text
    first_word: np.ndarray  # index of each text's first word in ``hashes``


def word_hashes_many(texts: Sequence[str]) -> WordBatch:
    """Exactly ``[word_hashes(t) for t in texts]``, concatenated, at a fraction of the cost."""
    joined = chr(_SEP).join(t.replace(chr(_SEP), " ") for t in texts)
    cps = _codepoints(joined)
    cls = _class_table()[cps]
    sep = cps == _SEP
    cls[sep] = _SPACE
    keep = cls != _DELETE
    if not keep.all():
        cps, cls, sep = cps[keep], cls[keep], sep[keep]
    hashes, starts, ends = _hash_words(cps, cls)
    text_of_word = np.cumsum(sep)[starts] if starts.size else starts
    digit = (cps >= 0x30) & (cps <= 0x39)
    non_digit = np.concatenate(([0], np.cumsum(~digit)))
    numeric = (non_digit[ends] - non_digit[starts]) == 0
    n_words = np.bincount(text_of_word, minlength=len(texts))
    first_word = np.concatenate(([0], np.cumsum(n_words)[:-1]))
    return WordBatch(hashes, text_of_word, numeric, n_words, first_word)


_EXPAND: np.ndarray | None = None


def _expand_table() -> np.ndarray:
    """The multi-character case folds for ``_grams.word_hashes``: rows of (code point, count, up to
    three code points), sorted; the fold table marks these code points with ``_MULTI``."""
    global _EXPAND
    if _EXPAND is None:
        fold = _fold_table()
        with _TABLE_LOCK:
            if _EXPAND is None:
                rows = []
                for cp in np.flatnonzero(fold == _MULTI).tolist():
                    e = _expansion(cp).tolist()
                    rows.append([cp, len(e), *e, *[0] * (3 - len(e))])  # fails on a 4-character fold
                _EXPAND = np.asarray(rows, dtype=np.uint32).reshape(-1, 5)
    return _EXPAND


def word_hashes_docs(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The word hashes of ``texts`` (concatenated, uint64) and each text's word count (int64):
    exactly :func:`word_hashes_many`'s ``hashes`` and ``n_words``, in one compiled loop per text
    where ``_grams`` was built (NFKC stays in Python: :func:`_nfkc_compiled`, on the texts that are not
    ASCII)."""
    if _grams is None:
        batch = word_hashes_many(texts)
        return batch.hashes, batch.n_words.astype(np.int64)
    prepared = [t if t.isascii() else _nfkc_compiled(t) for t in texts]
    hashes, counts = _grams.word_hashes(prepared, _fold_table(), _class_table(), _expand_table())
    return np.frombuffer(hashes, dtype=U64), np.frombuffer(counts, dtype=np.int64)


def gram_prefix(words: np.ndarray) -> np.ndarray:
    """Prefix sums over word hashes from which :func:`gram_hashes` reads any gram length."""
    pw, _ = _WORD_POW.ensure(words.size + 1)
    out = np.empty(words.size + 1, dtype=U64)
    out[0] = 0
    with np.errstate(over="ignore"):
        np.cumsum(words * pw[: words.size], out=out[1:])
    return out


def gram_hashes(prefix: np.ndarray, length: int) -> np.ndarray:
    """Hashes of every run of ``length`` consecutive words; element i starts at word i."""
    m = prefix.size - 1 - length + 1
    if m <= 0:
        return _EMPTY
    _, ipw = _WORD_POW.ensure(prefix.size)
    with np.errstate(over="ignore"):
        raw = (prefix[length:] - prefix[:m]) * ipw[:m]
        return splitmix64(raw ^ (_LEN_SALT * U64(length)))


def gram_hashes_at(prefix: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Hashes of the word runs ``[starts[k], starts[k] + lengths[k])``, equal to
    ``gram_hashes(prefix, lengths[k])[starts[k]]`` (whole texts of different lengths at once)."""
    _, ipw = _WORD_POW.ensure(prefix.size)
    lengths = np.asarray(lengths, dtype=U64)
    with np.errstate(over="ignore"):
        raw = (prefix[starts + lengths.astype(np.int64)] - prefix[starts]) * ipw[starts]
        return splitmix64(raw ^ (_LEN_SALT * lengths))


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Convenience: hashes of all word n-grams of ``text`` (empty if it has fewer than n words)."""
    return gram_hashes(gram_prefix(word_hashes(text)), n)
