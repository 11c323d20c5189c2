"""Language identification with langdetect: seeded, on a bounded sample, factory built once.

langdetect draws random n-grams from the text; its ``Detector`` re-seeds its generator with the
factory's seed before every detection, so with a fixed seed the answer depends only on the text,
never on which worker saw it or in what order. Its stock ``init_factory`` loads the profiles in
``os.listdir`` order, which differs between file systems; :func:`build_factory` loads them sorted
so every worker has the same language indices.

Speed: detection cost grows with the text, so only a sample is examined: up to ``sample_chars``
characters taken as ``sample_chunks`` evenly spaced slices (start, middle, end, ...), each cut at
whitespace, so a boilerplate header or footer cannot decide the language of a long page alone.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import replace

from corpusforge.schemas.config import LanguageConfig
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.base import ApplyStage, DocumentStage, WorkerState

LANG_SCORE_EDGES: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


_SPACES = re.compile(" {2,}")
# Memo sizes per worker (cleared when full): ~100 k words' n-gram lists and ~50 k n-grams'
# 55-language probability vectors (~0.5 KiB each) keep a worker's memory to a few tens of MiB.
_WORD_CACHE_MAX = 100_000
_VECTOR_CACHE_MAX = 50_000


class _NormalizeTable(dict):
    """``str.translate`` table computing langdetect's per-character normalization on first use."""

    def __missing__(self, code: int) -> str:
        from langdetect.utils.ngram import NGram

        value = self[code] = NGram.normalize(chr(code))
        return value


def _make_fast_detector_class():
    """A langdetect ``Detector`` whose text preparation and n-gram extraction give exactly the
    same n-gram list as langdetect's character loops, in the same order, several times faster:
    normalization is one ``str.translate`` with a memo table, and the n-grams of a word (which
    depend only on the word and on whether a space follows it) are memoized per worker. The
    sampling of n-grams and the probability updates are langdetect's own, seed included."""
    import numpy as np
    from langdetect.detector import Detector
    from langdetect.lang_detect_exception import ErrorCode, LangDetectException
    from langdetect.utils.ngram import NGram

    table = _NormalizeTable()
    cache: dict[tuple[str, bool], list[str]] = {}
    vectors: dict[str, np.ndarray] = {}

    class FastDetector(Detector):
        def append(self, text: str) -> None:
            text = self.URL_RE.sub(" ", text)
            text = self.MAIL_RE.sub(" ", text)
            text = NGram.normalize_vi(text)
            self.text += _SPACES.sub(" ", text[: self.max_text_length])

        def _extract_ngrams(self) -> list[str]:
            known = self.word_lang_prob_map
            tokens = self.text.translate(table).split(" ")
            last = len(tokens) - 1
            result: list[str] = []
            for i, word in enumerate(tokens):
                if not word:
                    continue
                key = (word, i < last)
                grams = cache.get(key)
                if grams is None:
                    if len(cache) > _WORD_CACHE_MAX:
                        cache.clear()
                    grams = cache[key] = _word_ngrams(word, i < last, known)
                result.extend(grams)
            return result

        def _detect_block(self) -> None:
            # langdetect's loop with the 55-language probability vector in numpy: the same random
            # draws and the same float64 operations element by element (the normalizing sum is
            # taken in Python's order), so the probabilities are identical, without a Python loop
            # over languages per sampled n-gram.
            self.cleaning_text()
            ngrams = self._extract_ngrams()
            if not ngrams:
                raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
            if len(vectors) > _VECTOR_CACHE_MAX:
                vectors.clear()
            probs_of = self.word_lang_prob_map
            vec = {}
            for w in set(ngrams):
                v = vectors.get(w)
                if v is None:
                    v = vectors[w] = np.asarray(probs_of[w], dtype=np.float64)
                vec[w] = v
            n_lang = len(self.langlist)
            langprob = np.zeros(n_lang)
            rand = self.random
            rand.seed(self.seed)
            for _ in range(self.n_trial):
                prob = np.full(n_lang, 1.0 / n_lang) if self.prior_map is None else np.array(self.prior_map)
                alpha = self.alpha + rand.gauss(0.0, 1.0) * self.ALPHA_WIDTH
                weight = alpha / self.BASE_FREQ
                i = 0
                while True:
                    prob *= weight + vec[rand.choice(ngrams)]
                    if i % 5 == 0:
                        prob /= sum(prob.tolist())
                        if prob.max() > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                            break
                    i += 1
                langprob += prob / self.n_trial
            self.langprob = langprob.tolist()

    return FastDetector


def _word_ngrams(word: str, trailing_space: bool, known: dict) -> list[str]:
    """The n-grams langdetect's NGram buffer yields over one normalized word (after a space, and
    then the space that follows it, if any), in its order, keeping those with a profile entry.

    The buffer holds the last three characters of `` word``; a position is skipped when it and
    the character before it are both upper case (langdetect's "capital word" rule)."""
    s = " " + word + " " if trailing_space else " " + word
    out: list[str] = []
    append = out.append
    intern = sys.intern  # memoized lists then share one string per n-gram (memory)
    for j in range(1, len(s)):
        ch = s[j]
        if ch.isupper() and s[j - 1].isupper():
            continue
        if ch != " " and ch in known:
            append(intern(ch))
        g = s[j - 1 : j + 1]
        if g in known:
            append(intern(g))
        if j >= 2:
            g = s[j - 2 : j + 1]
            if g in known:
                append(intern(g))
    return out


def build_factory(seed: int):  # -> langdetect.DetectorFactory (imported lazily: heavy)
    """A langdetect factory with the packaged profiles, loaded in sorted order, and ``seed`` set."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    names = sorted(n for n in os.listdir(PROFILES_DIRECTORY) if not n.startswith("."))
    profiles = []
    for name in names:
        with open(os.path.join(PROFILES_DIRECTORY, name), encoding="utf-8") as f:
            profiles.append(json.dumps(json.load(f)))
    factory.load_json_profile(profiles)
    factory.set_seed(seed)
    return factory


def sample_text(text: str, max_chars: int, chunks: int) -> str:
    """Up to ``max_chars`` of ``text`` as ``chunks`` evenly spaced slices cut at whitespace."""
    if len(text) <= max_chars:
        return text
    size = max_chars // chunks
    step = (len(text) - size) / max(1, chunks - 1)
    parts = []
    for k in range(chunks):
        start = int(k * step)
        if start:
            sp = text.find(" ", start, start + 50)
            start = sp + 1 if sp >= 0 else start
        end = start + size
        if end >= len(text):
            parts.append(text[start:])
            break
        sp = text.rfind(" ", end - 50, end)
        parts.append(text[start : sp if sp > start else end])
    return "\n".join(parts)


METHODS = ("naive_bayes", "sampling")


class LanguageDetector(WorkerState):
    """Pure language identification: text in, ``(code, probability)`` out (``("unknown", 0.0)``).

    ``method`` "naive_bayes" computes langdetect's posterior over every n-gram of the sample
    (:mod:`corpusforge.transforms.language.naive_bayes`: exact, no seed, ~5x faster); "sampling" is
    langdetect's own seeded random walk (``seed``, ``n_trial``), kept to reproduce earlier outputs.
    The profiles and detectors are per worker (never pickled: see :class:`WorkerState`).
    """

    per_worker = ("_factory", "_detector_cls", "_naive_bayes")
    _factory = None
    _detector_cls = None
    _naive_bayes = None

    def __init__(self, cfg: LanguageConfig | None = None) -> None:
        """Method, sampling and seeding come from ``cfg`` (the defaults of :class:`LanguageConfig`)."""
        cfg = cfg or LanguageConfig()
        if cfg.method not in METHODS:
            raise ValueError(
                f"unknown language detection method {cfg.method!r} (one of {', '.join(METHODS)})"
            )
        self.seed = cfg.seed
        self.sample_chars = cfg.sample_chars
        self.sample_chunks = cfg.sample_chunks
        self.n_trial = cfg.n_trial
        self.method = cfg.method

    def setup(self) -> None:
        if self.method == "naive_bayes":
            from corpusforge.transforms.language.naive_bayes import NaiveBayesLanguageDetector

            self._naive_bayes = NaiveBayesLanguageDetector()
        else:
            self._factory = build_factory(self.seed)
            self._detector_cls = _make_fast_detector_class()

    def detect(self, text: str) -> tuple[str, float]:
        from langdetect.lang_detect_exception import LangDetectException

        self.ready()
        if self._naive_bayes is not None:
            return self._naive_bayes.detect(sample_text(text, self.sample_chars, self.sample_chunks))
        detector = self._detector_cls(self._factory)
        detector.n_trial = self.n_trial
        detector.append(sample_text(text, self.sample_chars, self.sample_chunks))
        try:
            probs = detector.get_probabilities()
        except LangDetectException:
            return "unknown", 0.0
        if not probs:
            return "unknown", 0.0
        best = probs[0]
        return best.lang.split("-")[0].lower(), float(best.prob)


class LanguageFilter(DocumentStage):
    """Annotate ``lang`` and ``lang_score``; reject languages not kept or not confident enough.

    Rejections are ``language:<code>`` (the detected code, also when its score is below
    ``min_score``) and ``language:unknown`` (no letters langdetect can use). ``keep=[]`` keeps every
    language and only annotates.
    """

    name = "language"

    def __init__(self, cfg: LanguageConfig | None = None) -> None:
        cfg = cfg or LanguageConfig()
        self.keep = frozenset(k.lower() for k in cfg.keep)
        self.min_score = cfg.min_score
        self.detector = LanguageDetector(cfg)

    def setup(self) -> None:
        self.detector.ready()

    def process(self, doc: Document) -> Document | RejectedDocument:
        lang, score = self.detector.detect(doc.text)
        if self.counters is not None:
            self.counters.observe("lang_score", score, LANG_SCORE_EDGES)
        annotated = replace(doc, lang=lang, lang_score=score)
        if lang == "unknown":
            return RejectedDocument(annotated, self.reject("unknown", "no detectable language"))
        if self.keep and (lang not in self.keep or score < self.min_score):
            return RejectedDocument(annotated, self.reject(lang, f"{lang} p={score:.3f}"))
        return annotated


class IdentifyLanguage(ApplyStage):
    """Stage ``language`` from its section (``cfg.language``): documents -> ``(kept, rejected)``."""

    def __init__(self, cfg: LanguageConfig) -> None:
        super().__init__(LanguageFilter(cfg))
        self.cfg = cfg
