"""Quality signals of one text, computed in a few passes; no Beam, no thresholds.

Every rule family of the quality stage (Gopher quality, Gopher repetition, C4, FineWeb) reads its
numbers from :class:`~corpusforge.schemas.records.QualitySignals`, which :func:`compute_signals`
fills from the text with one split into lines, one split into words and a handful of numpy passes
over word ids for the n-gram statistics. Keeping the numbers apart from the thresholds is what lets
kept documents carry them as columns, so a user can re-threshold without re-running.

What a *word* is matters more than any threshold. A word here is a whitespace-separated token with
leading and trailing punctuation stripped; a token made only of punctuation or symbols (``-``,
``|``, ``•``, ``...``) is not a word. Counting such tokens as words (as datatrove's spaCy-based
splitter does) makes ordinary articles fail the "80% of words contain a letter" rule and lowers
their mean word length. Symbols (``#``, ``...``, ``…``) are counted separately for the
symbol-to-word ratio.

Where ``transforms/quality/_signals.c`` was compiled (setup.py), :func:`compute_signals` and
:func:`split_words` run there: one pass over the text's code points, no Python object per word or
line, the same values bit for bit (its header says how each definition is matched). The Python
functions below stay as the fallback (no C compiler) and as the reference the compiled pass is
tested against (``compute_signals_reference``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat

import numpy as np

from corpusforge.schemas.records import QualitySignals
from corpusforge.transforms.hashing import FNV_PRIME, GOLDEN

try:  # the optional compiled pass (setup.py); the Python functions below give the same values
    from corpusforge.transforms.quality import _signals
except ImportError:  # pragma: no cover - depends on the build
    _signals = None

# Characters stripped from both ends of a token before it counts as a word.
_PUNCT = (
    "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())
    + "\u00a1\u00bf\u00ab\u00bb\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u2022\u00b7\u00a7\u00b6\u2122\u00ae\u00a9\u2039\u203a\u30fb\u3001\u3002\uff0c\uff01\uff1f\uff1a\uff1b"
)
# Lines ending with one of these end a sentence (C4's and FineWeb's terminal punctuation; the
# closing quote counts, as it does in both recipes).
TERMINAL_PUNCT = (".", "!", "?", '"', "\u201d", "\u2019", "'", "\u2026", "\u3002", "\uff01", "\uff1f", ":")
C4_TERMINAL_PUNCT = (".", "!", "?", '"', "\u201d")
# Wikipedia-style citation markers, removed from a line before C4's line rules look at it (as C4's
# reference code, tensorflow_datasets c4_utils, does): "ends.[3]" ends in a full stop.
C4_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
BULLETS = (
    "\u2022",
    "\u2023",
    "\u25b6",
    "\u25cf",
    "\u25e6",
    "\u25aa",
    "\u25ab",
    "\u2013",
    "\u2014",
    "-",
    "*",
    "\u00b7",
)
ELLIPSES = ("...", "\u2026")
C4_POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026]+(?=\s|$|[\"\u201d\u2019)\]]|[A-Z])")
# UTF-8 decoded as Latin-1 / cp1252: a lead byte shown as Ã, Â, Å, Ä, â, ð followed by a
# continuation byte shown as a C1 control, a Latin-1 symbol or a cp1252 letter (€, ™, œ, ...).
_MOJIBAKE = re.compile(
    "[\u00c2-\u00c5\u00e2\u00f0][\u0080-\u00bf\u20ac\u2122\u0153\u0161\u017e\u2019\u201c\u201d\u2013\u2014\u0178\u0152]"
)
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")
_FNV_MUL = np.uint64(FNV_PRIME)
_MIX = np.uint64(GOLDEN)

_HAS_LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=64)
def _cased(stop_words: frozenset[str]) -> frozenset[str]:
    """Stop words as written at a sentence start or in capitals too, so no word is lower-cased."""
    return frozenset(v for w in stop_words for v in (w, w.capitalize(), w.upper()))


TOP_NGRAM_NS: tuple[int, ...] = (2, 3, 4)
DUP_NGRAM_NS: tuple[int, ...] = (5, 6, 7, 8, 9, 10)


def split_words(text: str) -> list[str]:
    """Whitespace tokens with edge punctuation stripped; pure-punctuation tokens dropped (compiled
    where ``_signals`` was built)."""
    if _signals is not None:
        return _signals.split_words(text)
    return _split_words_python(text)


def _split_words_python(text: str) -> list[str]:
    """:func:`split_words` in Python (``map``/``filter`` run the strip per token in C: a third less
    than a Python loop)."""
    tokens = text.split()
    return list(filter(None, map(str.strip, tokens, repeat(_PUNCT, len(tokens)))))


def split_words_reference(text: str) -> list[str]:
    """The definition :func:`split_words` is tested against (a loop over ``str.split()``)."""
    out = []
    append = out.append
    strip = str.strip
    for tok in text.split():
        w = strip(tok, _PUNCT)
        if w:
            append(w)
    return out


def _dup_fractions(items: Sequence[str], total_chars: int) -> tuple[float, float]:
    """(share of items that repeat an earlier item, their characters / ``total_chars``), Gopher style."""
    if not items or not total_chars:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_n = dup_chars = 0
    for it in items:
        n = len(it)
        if it in seen:
            dup_n += 1
            dup_chars += n
        else:
            seen.add(it)
    return dup_n / len(items), (dup_chars / total_chars if total_chars else 0.0)


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of every n-gram of word ids (deterministic; collisions are negligible)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = (h ^ ids[k : len(ids) - n + 1 + k]) * _FNV_MUL
        h ^= h >> np.uint64(29)
        h *= _MIX
    return h


def ngram_signals(
    words: Sequence[str], total_chars: int, counts: Counter[str] | None = None
) -> tuple[dict[int, float], dict[int, float]]:
    """Gopher's top n-gram character fractions (n=2..4) and duplicate n-gram fractions (n=5..10).

    Both are shares of ``total_chars`` (the text's length, as in Gopher and datatrove). *Top*: the
    characters of the most frequent n-gram, with the single spaces between its words (as datatrove
    joins them), times its count, when it occurs more than once. *Duplicate*: the characters of the
    words that lie in an n-gram occurring earlier in the text, spaces not counted; a word in several
    such n-grams counts once. Not counting spaces here is deliberately the milder reading: a news
    page that repeats one summary sentence sits right at the 8- to 10-gram limits otherwise.

    Each length looks only at the positions whose (n-1)-gram occurs more than once: an n-gram can
    repeat only where its first n-1 words do, so every repeated n-gram, all its occurrences and the
    earliest one are among them, and the rest (most of a page) is never hashed or sorted again.
    ``counts``: ``Counter(words)`` when the caller has it (its keys are the words in order of first
    occurrence, which is all the word ids need).
    """
    top = dict.fromkeys(TOP_NGRAM_NS, 0.0)
    dup = dict.fromkeys(DUP_NGRAM_NS, 0.0)
    if len(words) < 2:
        return top, dup
    vocab = {w: i for i, w in enumerate(counts if counts is not None else dict.fromkeys(words), 1)}
    if len(vocab) == len(words):  # no word repeats, so no n-gram does either
        return top, dup
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.uint64, count=len(words))
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    total = float(max(total_chars, 1))
    csum = np.concatenate(([0], np.cumsum(lengths)))
    # positions (ascending) that may start a repeated n-gram: those of repeated words at first
    word = ids.astype(np.int64)
    pos = np.flatnonzero(np.bincount(word)[word] > 1)
    raw = ids[pos] * _FNV_MUL  # each position's hash so far, before the final mix
    last = len(words)
    for n in (*TOP_NGRAM_NS, *DUP_NGRAM_NS):
        if last < n + (n in DUP_NGRAM_NS):
            break
        fits = pos <= last - n
        if not fits.all():
            pos, raw = pos[fits], raw[fits]
        if pos.size < 2:
            break  # no n-gram repeats, nor any longer one
        # the n-gram's hash extends the (n-1)-gram's by one word, exactly as _ngram_hashes folds
        # them (uint64 arrays wrap silently: no errstate, whose context switch costs more here)
        raw = (raw ^ ids[pos + (n - 1)]) * _FNV_MUL
        h = raw ^ (raw >> np.uint64(29))
        h *= _MIX
        order, counts, earliest = _hash_groups(h)
        if n in TOP_NGRAM_NS:
            tied = np.flatnonzero(counts == counts.max())
            best = int(tied[np.argmin(earliest[tied])])
            if counts[best] > 1:
                i = int(pos[earliest[best]])
                top[n] = float(csum[i + n] - csum[i] + n - 1) * int(counts[best]) / total
        else:
            repeat = pos[order[order != np.repeat(earliest, counts)]]
            if len(repeat) == 0:
                break
            size = last + 1
            mark = np.bincount(repeat, minlength=size) - np.bincount(repeat + n, minlength=size)
            covered = np.cumsum(mark[:-1]) > 0
            dup[n] = float(lengths[covered].sum()) / total
        keep = np.sort(order[np.repeat(counts > 1, counts)])  # members of repeated n-grams
        pos, raw = pos[keep], raw[keep]
    return top, dup


def ngram_signals_reference(
    words: Sequence[str], total_chars: int
) -> tuple[dict[int, float], dict[int, float]]:
    """The definition :func:`ngram_signals` is tested against (the same figures, defined in its
    docstring): every n-gram length hashed and sorted over the whole text."""
    top = dict.fromkeys(TOP_NGRAM_NS, 0.0)
    dup = dict.fromkeys(DUP_NGRAM_NS, 0.0)
    if len(words) < 2:
        return top, dup
    # each distinct word's id is its rank of first occurrence (dict keeps that order); the Python
    # loop runs over distinct words only, the per-word work is map() in C
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words), 1)}
    if len(vocab) == len(words):  # no word repeats, so no n-gram does either
        return top, dup
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.uint64, count=len(words))
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    total = float(max(total_chars, 1))
    csum = np.concatenate(([0], np.cumsum(lengths)))
    for n in TOP_NGRAM_NS:
        if len(words) < n:
            break
        _, counts, earliest = _hash_groups(_ngram_hashes(ids, n))
        # ties between equally frequent n-grams: the first to occur (as datatrove's Counter.most_common
        # and Gopher do), never the hash order, which would make the verdict depend on the words
        tied = np.flatnonzero(counts == counts.max())
        best = int(tied[np.argmin(earliest[tied])])
        if counts[best] > 1:
            i = int(earliest[best])
            top[n] = float(csum[i + n] - csum[i] + n - 1) * int(counts[best]) / total
    for n in DUP_NGRAM_NS:
        if len(words) < n + 1:
            break
        order, counts, earliest = _hash_groups(_ngram_hashes(ids, n))
        repeat = order[order != np.repeat(earliest, counts)]  # positions whose n-gram came earlier
        if len(repeat) == 0:
            break  # no repeated n-gram means no repeated longer n-gram either
        # Mark the words of every repeated n-gram with a difference array, then count them once.
        size = len(words) + 1
        mark = np.bincount(repeat, minlength=size) - np.bincount(repeat + n, minlength=size)
        covered = np.cumsum(mark[:-1]) > 0
        dup[n] = float(lengths[covered].sum()) / total
    return top, dup


def _hash_groups(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal values of ``h``, in ascending order of value: the sorting permutation (positions
    grouped by value), each group's size, and each group's earliest position in ``h``.

    One unstable sort and a few passes (``np.unique`` with first indices and an inverse sorts
    stably and does more): the n-gram signals sort nine hash arrays per document.
    """
    order = np.argsort(h)
    ordered = h[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, len(h)))
    earliest = np.minimum.reduceat(order, starts)
    return order, counts, earliest


def count_sentences(line: str) -> int:
    """Sentences in one line: sentence-ending marks followed by a space, a capital (a missing
    space, common in scraped text) or the end, plus one for an unterminated tail."""
    n = len(_SENTENCE_END.findall(line))
    ended = line.rstrip('"\u201d\u2019)]').endswith((".", "!", "?", "\u2026", "\u3002", "\uff01", "\uff1f"))
    return n if ended and n else n + 1


@lru_cache(maxsize=64)
def _stop_table(stop_words: frozenset[str]) -> bytes:
    """The compiled pass's look-up table of the stop words in every casing :func:`_cased` allows."""
    return _signals.build_word_table(_cased(stop_words) if stop_words else ())


def compute_signals(
    text: str,
    stop_words: frozenset[str],
    short_line_length: int = 30,
    c4_min_words_per_line: int = 5,
    c4_terminal_punct: bool = False,
) -> QualitySignals:
    """All signals of ``text`` (:func:`compute_signals_reference` defines them), compiled where
    ``_signals`` was built."""
    if _signals is None:
        return compute_signals_reference(
            text, stop_words, short_line_length, c4_min_words_per_line, c4_terminal_punct
        )
    return QualitySignals(
        *_signals.signals(
            text, _stop_table(stop_words), short_line_length, c4_min_words_per_line, c4_terminal_punct
        )
    )


def compute_signals_reference(
    text: str,
    stop_words: frozenset[str],
    short_line_length: int = 30,
    c4_min_words_per_line: int = 5,
    c4_terminal_punct: bool = False,
) -> QualitySignals:
    """All signals of ``text``, in Python: the fallback and the definition the compiled pass is
    tested against. ``stop_words`` are lower-case words of the expected language(s);
    FineWeb's short lines are those of at most ``short_line_length`` characters. C4's line rules
    (a line needs ``c4_min_words_per_line`` words and, if ``c4_terminal_punct``, a terminal mark)
    decide which lines count towards ``c4_sentences``, ``c4_curly_brace`` and ``c4_lorem_ipsum``."""
    raw_lines = text.split("\n")
    lines = [ln.strip() for ln in raw_lines]
    nonempty = [ln for ln in lines if ln]
    n_lines = len(nonempty)
    words = _split_words_python(text)
    n_words = len(words)
    word_chars = sum(map(len, words))

    # Gopher quality
    n_symbols = text.count("#") + text.count("...") + text.count("\u2026")
    # per distinct word, weighted by its count (Counter counts in C): web text repeats its words
    counts = Counter(words)
    caps_words = sum(n for w, n in counts.items() if len(w) > 1 and w.isupper())
    alpha_words = sum(n for w, n in counts.items() if w.isalpha() or _HAS_LETTER.search(w))
    cased_stop_words = _cased(stop_words) if stop_words else frozenset()
    stop_hits = sum(n for w, n in counts.items() if w in cased_stop_words)
    bullet_lines = sum(1 for ln in nonempty if ln.startswith(BULLETS))
    ellipsis_lines = sum(1 for ln in nonempty if ln.endswith(ELLIPSES))

    # Gopher repetition
    dup_line_frac, dup_line_char_frac = _dup_fractions(nonempty, len(text))
    paragraphs = [p.strip() for p in _PARAGRAPH_SPLIT.split(text)]
    dup_para_frac, dup_para_char_frac = _dup_fractions([p for p in paragraphs if p], len(text))
    top, dup = ngram_signals(words, len(text), counts)
    mojibake = len(_MOJIBAKE.findall(text))

    # C4, evaluated per document: which lines C4's line rules would keep, and their sentences
    c4_kept_lines = c4_kept_sentences = policy_lines = js_lines = 0
    c4_curly = c4_lorem = False
    for ln in nonempty:
        if "[" in ln:
            ln = C4_CITATION.sub("", ln).rstrip()
        if c4_terminal_punct and (not ln.endswith(C4_TERMINAL_PUNCT) or ln.endswith(ELLIPSES)):
            continue
        if len(ln.split()) < c4_min_words_per_line:
            continue
        low = ln.lower()
        if "lorem ipsum" in low:
            c4_lorem = True
        if "javascript" in low:
            js_lines += 1
            continue
        if "{" in ln:
            c4_curly = True
        if any(p in low for p in C4_POLICY_SUBSTRINGS):
            policy_lines += 1
            continue
        c4_kept_lines += 1
        c4_kept_sentences += count_sentences(ln)

    # FineWeb
    punct_lines = sum(1 for ln in nonempty if ln.endswith(TERMINAL_PUNCT))
    short_lines = sum(1 for ln in nonempty if len(ln) <= short_line_length)
    dup_line_chars_fw = 0
    seen: set[str] = set()
    for ln in nonempty:
        if ln in seen:
            dup_line_chars_fw += len(ln)
        else:
            seen.add(ln)
    nonspace_chars = sum(map(len, nonempty))
    newline_words = text.count("\n")

    def ratio(a: float, b: float) -> float:
        return a / b if b else 0.0

    return QualitySignals(
        n_words=n_words,
        n_lines=n_lines,
        mean_word_length=ratio(word_chars, n_words),
        symbol_word_ratio=ratio(n_symbols, n_words),
        bullet_lines_ratio=ratio(bullet_lines, n_lines),
        ellipsis_lines_frac=ratio(ellipsis_lines, n_lines),
        alpha_words_frac=ratio(alpha_words, n_words),
        stop_words=stop_hits,
        dup_line_frac=dup_line_frac,
        dup_para_frac=dup_para_frac,
        dup_line_char_frac=dup_line_char_frac,
        dup_para_char_frac=dup_para_char_frac,
        top_2gram_char_frac=top[2],
        top_3gram_char_frac=top[3],
        top_4gram_char_frac=top[4],
        dup_5gram_char_frac=dup[5],
        dup_6gram_char_frac=dup[6],
        dup_7gram_char_frac=dup[7],
        dup_8gram_char_frac=dup[8],
        dup_9gram_char_frac=dup[9],
        dup_10gram_char_frac=dup[10],
        c4_lorem_ipsum=c4_lorem,
        c4_curly_brace=c4_curly,
        c4_javascript_lines_frac=ratio(js_lines, n_lines),
        c4_policy_lines_frac=ratio(policy_lines, n_lines),
        c4_kept_lines_frac=ratio(c4_kept_lines, n_lines),
        c4_sentences=c4_kept_sentences,
        line_punct_ratio=ratio(punct_lines, n_lines),
        short_line_ratio=ratio(short_lines, n_lines),
        char_dup_ratio=ratio(dup_line_chars_fw, nonspace_chars),
        list_ratio=ratio(newline_words, n_words),
        mojibake_ratio=ratio(mojibake, n_words),
        all_caps_words_ratio=ratio(caps_words, n_words),
    )


__all__ = ["compute_signals", "compute_signals_reference", "ngram_signals", "split_words"]
