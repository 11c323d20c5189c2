"""langdetect's model evaluated exactly, over every n-gram of the sample at once.

langdetect scores a text by a Monte-Carlo walk: it draws n-grams of the text at random, multiplies
each language's probability by ``alpha / 10000 + p(n-gram | language)``, and stops when one language
passes 0.99999 (a few restarts with jittered ``alpha``, averaged). That walk estimates the naive
Bayes posterior of the same model, and costs one Python step per draw. Here the posterior is
computed, not estimated: the log of ``alpha / 10000 + p(n-gram | language)`` summed over all the
sample's n-grams, then normalised. The profiles, the text preparation (URL and e-mail removal, the
Vietnamese and per-character normalisation, the capital-word rule, dropping Latin letters from a
mostly non-Latin text) and ``alpha`` are langdetect's own; only the random draws are gone, so the
answer depends on the text alone (no seed) and is the same on any worker.

Speed: the n-grams of a word depend only on the word (and on whether a space follows it), so each
distinct word's summed log-probability vector (one row of 55 floats) is computed once per worker and
memoised; a document is then a gather and a sum over its words' rows. On the dev corpus's confident
base pages the answers agree with the sampling walk's on accuracy (0.9605 both) and reject one more
non-English page (non-English rejection 0.9939 -> 0.9969).

Where ``transforms/language/_ngrams.c`` was compiled (setup.py), the walk and the log-sum run there in
one pass over the prepared text, with no memo: pages full of new words (a crawl's long tail, many
languages) no longer pay a Python step per character. It adds the same rows in the same order as the
memoised path below, so both give the same floats; that path stays as the fallback where the module
could not be built.

The compiled path's default, ``score_words``, goes further with the same additions: it applies
langdetect's per-character normalisation itself (a table of the BMP, built with langdetect's own
``NGram.normalize``) instead of a ``str.translate`` pass, and memoises each short word's summed row
in a buffer the detector owns, so a repeated word costs one probe and one row addition instead of
one per n-gram (about 3x fewer additions on web text). The preparation skips two passes that cannot
change the sums: collapsing runs of spaces (the walk skips empty words) and the Vietnamese rule on a
text without any of its five combining marks. ``score`` over the translated text stays as the
reference it is tested against (``_detect_compiled_reference``).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from corpusforge.transforms import derived_cache

try:  # the optional compiled walk (setup.py); the pure-Python path below gives the same scores
    from corpusforge.transforms.language import _ngrams
except ImportError:  # pragma: no cover - depends on the build
    _ngrams = None

# langdetect's text preparation and n-gram extraction, shared with the sampling detector
from corpusforge.transforms.language.stage import _SPACES as SPACES
from corpusforge.transforms.language.stage import _NormalizeTable as NormalizeTable
from corpusforge.transforms.language.stage import build_factory

# Memoised words per worker (cleared when full): 200 k rows of 55 float64 are ~90 MiB at most.
_WORD_ROWS_MAX = 200_000
# The compiled memo (score_words): 64 k words' rows (and keys) are ~33 MiB per detector, enough for a worker's
# frequent words; the long tail passes through (a full memo keeps the words found again, see _ngrams.c).
_COMPILED_WORDS_MAX = 65_536
_LATIN = re.compile("[A-z]")
# langdetect's "non-Latin": at or above U+0300 and outside Latin Extended Additional (U+1E00-U+1EFF)
_NON_LATIN = re.compile("[\u0300-\u1dff\u1f00-\U0010ffff]")
_NOT_LATIN_LETTER = re.compile("[A-z]+")


class ProfileTables(NamedTuple):
    """The read-only part of a detector, built from langdetect's profiles: language codes, n-gram
    -> row, the rows' log-probabilities and (with the compiled walk) its hash table of the n-grams."""

    languages: tuple[str, ...]
    gram_row: dict[str, int]
    gram_logs: np.ndarray
    hash_table: bytes | None
    normalise: np.ndarray | None  # uint32 per BMP code point: langdetect's NGram.normalize


_TABLES: dict[bool, ProfileTables] = {}
_TABLES_LOCK = threading.Lock()


def profile_tables(compiled: bool) -> ProfileTables:
    """The profiles' tables, built once per process and shared by every detector of the process,
    since nothing writes to them. Deriving them costs ~0.2 s of CPU (parsing 55 JSON profiles into a
    38 MB float table, :func:`profile_probabilities`); they are read from the derived-data cache when an earlier process of this
    machine derived them from the same profiles, code and runtime (``transforms/derived_cache.py``:
    ~0.05 s).

    Why once per process: a worker builds one detector per copy of the language stage it sets up
    (and the local runner's SDK workers may set up several), and a pre-started local worker builds
    them while it waits for its first bundle (``pipelines/local/warm.py``), off the run's start-up.
    ``compiled`` says whether the compiled walk's hash table is wanted (tests build detectors with
    and without it); the profiles are langdetect's installed files, which do not change while a
    process runs.
    """
    with _TABLES_LOCK:
        tables = _TABLES.get(compiled)
        if tables is None:
            other = next(iter(_TABLES.values()), None)  # the other mode's: the same profiles, read once
            if other is None:
                languages, grams, logs = derived_cache.load_or_build(
                    TABLES_CACHE_KIND, tables_cache_key(), ".npz", _build_tables, _save_tables, _load_tables
                )
                logs.setflags(write=False)
                gram_row = {gram: i for i, gram in enumerate(grams)}
            else:
                languages, gram_row, logs = other.languages, other.gram_row, other.gram_logs
            tables = _TABLES[compiled] = ProfileTables(
                languages=languages,
                gram_row=gram_row,
                gram_logs=np.ascontiguousarray(logs) if compiled else logs,
                hash_table=_ngrams.build_table(gram_row) if compiled and _ngrams is not None else None,
                normalise=normalisation_table() if compiled and _ngrams is not None else None,
            )
        return tables


def profile_probabilities() -> tuple[list[str], dict[str, int], np.ndarray]:
    """langdetect's ``DetectorFactory`` tables, built as its ``add_profile`` builds them, in numpy:
    the languages (profiles in sorted file order, as :func:`build_factory`), each n-gram's row (in
    the order the factory's ``word_lang_prob_map`` first meets them) and p(n-gram | language), the
    n-gram's count over the profile's n-gram total of its length (0 where a language lacks it).

    Why not the factory: it re-parses every profile and fills 55-element Python lists one float at
    a time, ~0.8 s of CPU in every process that detects (each local worker), against ~0.2 s here
    (the JSON parse is most of it). The divisions are the same IEEE divisions, so the floats are the same
    (:func:`profile_probabilities_reference` is the factory's, tested equal)."""
    import json
    import os

    from langdetect.detector_factory import PROFILES_DIRECTORY

    names = sorted(n for n in os.listdir(PROFILES_DIRECTORY) if not n.startswith("."))
    gram_row: dict[str, int] = {}
    langlist, cells = [], []
    for index, name in enumerate(names):
        with open(os.path.join(PROFILES_DIRECTORY, name), encoding="utf-8") as f:
            profile = json.load(f)
        langlist.append(profile["name"])
        freq = profile["freq"]
        rows = np.fromiter(
            (gram_row.setdefault(g, len(gram_row)) for g in freq), dtype=np.int64, count=len(freq)
        )
        lengths = np.fromiter(map(len, freq), dtype=np.int64, count=len(freq))
        counts = np.fromiter(freq.values(), dtype=np.float64, count=len(freq))
        usable = (lengths >= 1) & (lengths <= 3)  # other lengths get a row of zeros, as in add_profile
        totals = np.asarray(profile["n_words"], dtype=np.float64)
        cells.append((rows[usable], index, counts[usable] / totals[lengths[usable] - 1]))
    probabilities = np.zeros((len(gram_row), len(names)), dtype=np.float64)
    for rows, index, values in cells:
        probabilities[rows, index] = values
    return langlist, gram_row, probabilities


def profile_probabilities_reference() -> tuple[list[str], dict[str, int], np.ndarray]:
    """:func:`profile_probabilities` through langdetect's own factory (the definition)."""
    factory = build_factory(0)
    table = factory.word_lang_prob_map
    gram_row = {gram: i for i, gram in enumerate(table)}
    return list(factory.langlist), gram_row, np.array(list(table.values()), dtype=np.float64)


def normalisation_table() -> np.ndarray:
    """langdetect's ``NGram.normalize`` of every BMP code point (~70 ms), for ``score_words``.

    Every character it changes is in the BMP (its blocks: Latin, punctuation, Arabic, CJK, kana,
    Hangul); above it returns the character itself, which is what ``score_words`` does there.
    """
    from langdetect.utils.ngram import NGram

    chars = [NGram.normalize(chr(cp)) for cp in range(0x10000)]
    table = np.fromiter(map(ord, chars), dtype=np.uint32, count=0x10000)  # ord fails on 2+ chars
    table.setflags(write=False)
    return table


# The derived tables on disk (``transforms/derived_cache.py``): the languages, the n-grams in the
# profiles' order and their log-probabilities, exactly as :func:`_build_tables` computes them.
TABLES_CACHE_KIND = "langdetect-tables-v1"
_RawTables = tuple[tuple[str, ...], list[str], np.ndarray]


def tables_cache_key() -> str:
    """The tables' cache key: langdetect's profile files (content, sorted by name), the source of
    the code deriving the tables (this module, :func:`build_factory`'s module, langdetect's profile
    loading) and the runtime whose ``log`` computes them."""
    import langdetect
    from langdetect import detector_factory
    from langdetect.utils import lang_profile

    from corpusforge.transforms.language import stage

    profiles = Path(detector_factory.PROFILES_DIRECTORY)
    return derived_cache.content_key(
        TABLES_CACHE_KIND,
        [
            getattr(langdetect, "__version__", ""),
            derived_cache.runtime_fingerprint(),
            *(Path(m.__file__) for m in (sys.modules[__name__], stage, detector_factory, lang_profile)),
            *sorted((p for p in profiles.iterdir() if not p.name.startswith(".")), key=lambda p: p.name),
        ],
    )


def _build_tables() -> _RawTables:
    """langdetect's profiles parsed (:func:`profile_probabilities`, ~0.2 s of CPU) into languages,
    n-grams and log-probabilities."""
    from langdetect.detector import Detector

    langlist, gram_row, probabilities = profile_probabilities()
    weight = Detector.ALPHA_DEFAULT / Detector.BASE_FREQ
    logs = np.log(weight + probabilities)
    languages = tuple(lang.split("-")[0].lower() for lang in langlist)
    return languages, list(gram_row), logs  # gram_row's keys are in row order


def _save_tables(tables: _RawTables, path: Path) -> None:
    languages, grams, logs = tables
    with open(path, "wb") as f:
        np.savez(f, logs=logs, grams=_utf8_json(grams), languages=_utf8_json(list(languages)))


def _load_tables(path: Path) -> _RawTables:
    with np.load(path, allow_pickle=False) as data:
        logs = data["logs"]
        grams = json.loads(data["grams"].tobytes().decode("utf-8"))
        languages = tuple(json.loads(data["languages"].tobytes().decode("utf-8")))
    if logs.dtype != np.float64 or logs.shape != (len(grams), len(languages)):
        raise ValueError(f"cached language tables {path} have shape {logs.shape}, dtype {logs.dtype}")
    return languages, grams, logs


def _utf8_json(value: list[str]) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def preload() -> None:
    """Build this process's profile tables ahead of the language stage's set-up (warm workers)."""
    profile_tables(compiled=_ngrams is not None)


class NaiveBayesLanguageDetector:
    """``detect(text) -> (code, posterior)`` with langdetect's profiles, computed exactly.

    Built on the worker (``setup``): the profiles' log-probability table is ~30 MiB. Uses the
    compiled walk when :mod:`._ngrams` was built (chosen here, once: tests set ``_ngrams`` to None
    before building a detector to run the pure-Python path).
    """

    def __init__(self) -> None:
        from langdetect.detector import Detector
        from langdetect.utils.ngram import NGram

        tables = profile_tables(compiled=_ngrams is not None)
        self.languages = list(tables.languages)
        self._gram_row = tables.gram_row
        self._gram_logs = tables.gram_logs
        self._hash_table = tables.hash_table
        self._url, self._mail = Detector.URL_RE, Detector.MAIL_RE
        self._max_text_length = 10_000  # langdetect's Detector.max_text_length
        self._normalize_vi = NGram.normalize_vi
        self._table = NormalizeTable()
        self._normalise = tables.normalise
        self._dmarks = tuple(NGram.DMARK_CLASS)  # normalize_vi changes only texts with one of these
        n_lang = len(self.languages)
        self._word_rows: dict[tuple[str, bool], int] = {}
        self._rows = np.zeros((4096, n_lang), dtype=np.float64)
        self._next_row = 0
        self._compiled = _ngrams
        self._memo = _ngrams.new_memo(n_lang, _COMPILED_WORDS_MAX) if _ngrams is not None else None

    def _prepare_fast(self, text: str) -> str:
        """:meth:`_prepare` without the passes that cannot change ``score_words``' sums: the runs
        of spaces stay (the walk skips empty words; the text is cut before they would be collapsed),
        and the Vietnamese rule runs only where one of its combining marks is (its pattern needs
        one). Tested against :meth:`_prepare` through the scores on every dev page."""
        if "http" in text:
            text = self._url.sub(" ", text)
        if "@" in text:
            text = self._mail.sub(" ", text)
        if not text.isascii():
            if any(mark in text for mark in self._dmarks):
                text = self._normalize_vi(text)  # before the cut, as langdetect: it shortens the text
        text = text[: self._max_text_length]
        if not text.isascii():
            latin, non_latin = self._compiled.latin_counts(text)
            if latin * 2 < non_latin:
                text = _NOT_LATIN_LETTER.sub("", text)
        return text

    def _prepare(self, text: str) -> str:
        """langdetect's ``Detector.append`` and ``cleaning_text``, with cheap gates."""
        if "http" in text:
            text = self._url.sub(" ", text)
        if "@" in text:
            text = self._mail.sub(" ", text)
        text = self._normalize_vi(text)
        text = SPACES.sub(" ", text[: self._max_text_length])
        if not text.isascii():
            if self._compiled is not None:
                latin, non_latin = self._compiled.latin_counts(text)
            else:
                latin, non_latin = len(_LATIN.findall(text)), len(_NON_LATIN.findall(text))
            if latin * 2 < non_latin:
                text = _NOT_LATIN_LETTER.sub("", text)
        return text

    def _gram_rows(self, word: str, followed_by_space: bool) -> list[int]:
        """The profile rows of the n-grams langdetect's NGram buffer yields over `` word`` (and the
        space after it), in its order: :func:`word_ngrams`'s walk, giving row indices directly."""
        s = " " + word + " " if followed_by_space else " " + word
        row = self._gram_row.get
        capitals = not word.islower()  # langdetect's capital-word rule can only bite then
        out: list[int] = []
        for j in range(1, len(s)):
            ch = s[j]
            if capitals and ch.isupper() and s[j - 1].isupper():
                continue
            if ch != " ":
                r = row(ch)
                if r is not None:
                    out.append(r)
            r = row(s[j - 1 : j + 1])
            if r is not None:
                out.append(r)
            if j >= 2:
                r = row(s[j - 2 : j + 1])
                if r is not None:
                    out.append(r)
        return out

    def _add_rows(self, keys: list[tuple[str, bool]]) -> None:
        """Memoise the rows of new words (the cold path: a worker keeps meeting new words in a
        crawl's long tail, so they are batched per document).

        Each word's rows are added one after another in the walk's order (a ``sum`` over the
        first axis adds rows in sequence; ``np.add.reduceat`` would add them pairwise), the order
        the compiled walk uses, so that both paths give the same floats."""
        grams_of = [self._gram_rows(word, space) for word, space in keys]
        with_grams = [i for i, grams in enumerate(grams_of) if grams]
        for key in keys:
            self._word_rows[key] = -1  # overwritten below when the word has n-grams
        if not with_grams:
            return
        first = self._next_row
        need = first + len(with_grams)
        if need > len(self._rows):
            grown = np.zeros((max(need, 2 * len(self._rows)), self._rows.shape[1]))
            grown[: len(self._rows)] = self._rows
            self._rows = grown
        logs, rows = self._gram_logs, self._rows
        for row, i in enumerate(with_grams, start=first):
            logs[grams_of[i]].sum(axis=0, out=rows[row])
            self._word_rows[keys[i]] = row
        self._next_row = need

    def detect(self, text: str) -> tuple[str, float]:
        """The most probable language and its posterior; ``("unknown", 0.0)`` without n-grams."""
        if self._compiled is not None:
            scores = np.empty(len(self.languages))
            found = self._compiled.score_words(
                self._prepare_fast(text),
                self._hash_table,
                self._gram_logs,
                self._normalise,
                self._memo,
                scores,
            )
            return self._posterior(scores) if found else ("unknown", 0.0)
        return self._detect_memoised(self._prepare(text).translate(self._table))

    def _detect_compiled_reference(self, text: str) -> tuple[str, float]:
        """The compiled walk before ``score_words`` (full preparation, ``str.translate``, no memo):
        the reference the default path is tested against."""
        prepared = self._prepare(text).translate(self._table)
        scores = np.empty(len(self.languages))
        if not self._compiled.score(prepared, self._hash_table, self._gram_logs, scores):
            return "unknown", 0.0
        return self._posterior(scores)

    def _detect_memoised(self, prepared: str) -> tuple[str, float]:
        """The pure-Python path: each distinct word's summed rows memoised, then summed per text."""
        words = prepared.split(" ")
        last = len(words) - 1
        keys = [(w, i < last) for i, w in enumerate(words) if w]
        memo = self._word_rows
        new = list(dict.fromkeys(k for k in keys if k not in memo))
        if new:
            if len(memo) + len(new) > _WORD_ROWS_MAX:  # full: start again with this document's words
                memo.clear()
                self._next_row = 0
                new = list(dict.fromkeys(keys))
            self._add_rows(new)
        rows = [r for r in map(memo.__getitem__, keys) if r >= 0]
        if not rows:
            return "unknown", 0.0
        return self._posterior(self._rows[rows].sum(axis=0))

    def _posterior(self, scores: np.ndarray) -> tuple[str, float]:
        """The best language and its normalised posterior from the summed log-probabilities."""
        scores -= scores.max()
        posterior = np.exp(scores)
        posterior /= posterior.sum()
        best = int(posterior.argmax())
        return self.languages[best], float(posterior[best])
