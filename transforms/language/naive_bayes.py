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


_TABLES: dict[bool, ProfileTables] = {}
_TABLES_LOCK = threading.Lock()


def profile_tables(compiled: bool) -> ProfileTables:
    """The profiles' tables, built once per process and shared by every detector of the process,
    since nothing writes to them. Deriving them costs ~1 s of CPU (parsing 55 JSON profiles into a
    38 MB float table); they are read from the derived-data cache when an earlier process of this
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
            languages, grams, logs = derived_cache.load_or_build(
                TABLES_CACHE_KIND, tables_cache_key(), ".npz", _build_tables, _save_tables, _load_tables
            )
            logs.setflags(write=False)
            gram_row = {gram: i for i, gram in enumerate(grams)}
            tables = _TABLES[compiled] = ProfileTables(
                languages=languages,
                gram_row=gram_row,
                gram_logs=np.ascontiguousarray(logs) if compiled else logs,
                hash_table=_ngrams.build_table(gram_row) if compiled and _ngrams is not None else None,
            )
        return tables


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
    """langdetect's profiles parsed (~1 s of CPU) into languages, n-grams and log-probabilities."""
    from langdetect.detector import Detector

    factory = build_factory(0)
    probabilities = factory.word_lang_prob_map
    weight = Detector.ALPHA_DEFAULT / Detector.BASE_FREQ
    logs = np.log(weight + np.array(list(probabilities.values()), dtype=np.float64))
    languages = tuple(lang.split("-")[0].lower() for lang in factory.langlist)
    return languages, list(probabilities), logs


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
        n_lang = len(self.languages)
        self._word_rows: dict[tuple[str, bool], int] = {}
        self._rows = np.zeros((4096, n_lang), dtype=np.float64)
        self._next_row = 0
        self._compiled = _ngrams

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
        prepared = self._prepare(text).translate(self._table)
        if self._compiled is not None:
            scores = np.empty(len(self.languages))
            if not self._compiled.score(prepared, self._hash_table, self._gram_logs, scores):
                return "unknown", 0.0
            return self._posterior(scores)
        return self._detect_memoised(prepared)

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
