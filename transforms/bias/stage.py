"""Bias signals: gendered words, identity mentions per category, and which of them sit in toxic text.

Tagging only (the stage never rejects). For every document it sets ``bias``
(:class:`~corpusforge.schemas.records.BiasSignals`):

* the text is lower-cased once (and, with ``clean_text``, cleaned as the toxicity stage cleans it:
  mentions and URLs dropped, masked profanity spelt out), split into lines and each line into words;
* a line without any lexicon word is skipped: where ``_bias_match.c`` was compiled (setup.py), one
  pass over the document's bytes counts its words and finds the lines holding a lexicon word, with
  no Python object per word (chosen once, in :class:`BiasTagger`; the pure-Python path, one split
  and one C-level set test per line, gives the same signals and is the fallback); the mentions of
  a line found are counted (:meth:`Lexicon.match`);
* the unit of "next to toxic text" is the line, or the sentence in a line longer than
  ``max_segment_words`` words (the toxicity classifier was trained on tweet-sized texts, see
  :mod:`corpusforge.transforms.toxicity.stage`). Only units holding a mention are scored, all units
  of a batch in one vectorised call of the shipped classifier; a mention in a unit scoring at or above
  ``threshold`` (``toxicity.threshold``) is a toxic mention.
* the compiled pass also counts each unit's mentions and cuts the long lines the toxicity stage
  cleans into that stage's sentences; and a line (or sentence) scored before is taken from a
  bounded LRU (``score_cache`` entries, :mod:`corpusforge.transforms.bias.cache`) instead of being
  split and scored again: a unit's mentions and score depend on its own text only, so the signals
  are the same with or without it.

Counters (namespace ``corpusforge.bias``), summed per batch: ``words``, ``mentions:<category>`` and
``toxic_mentions:<category>`` over the documents the stage tagged, and the same names prefixed
``rejected_records:`` over every record rejected before the stage (:class:`CountBiasOfRejected`), so
stats.json can compare the corpus before filtering with what was kept.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from itertools import chain, repeat
from typing import Any

import apache_beam as beam
import numpy as np

from corpusforge.schemas.config import BiasConfig, ConfigError, ToxicityConfig
from corpusforge.schemas.records import BiasSignals, Document, RejectedDocument
from corpusforge.transforms import shared_setup
from corpusforge.transforms.base import ApplyStage, DocumentStage, StageCounters
from corpusforge.transforms.bias.cache import LineCache
from corpusforge.transforms.bias.lexicon import FEMALE, MALE, Lexicon, LexiconError
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts

try:  # the optional compiled word pass (setup.py); the pure-Python path below gives the same signals
    from corpusforge.transforms.bias import _bias_match
except ImportError:  # pragma: no cover - depends on the build
    _bias_match = None

STAGE = "bias"
# A unit holding a mention: [raw text or None, words or None, labels of its mentions, toxic or None].
# Lists, so that scoring fills the last item in place; None: not scored (yet).
Unit = list[Any]
REJECTED_PREFIX = "rejected_records:"
# Sentence ends inside a long line (the toxicity stage's definition).
_SENTENCE_END = re.compile(r"[.!?\u2026]\s")


def _byte_table(sentence_ends: bool = False) -> bytes:
    """Lower-case ASCII letters, keep digits, ``_``, line breaks and every non-ASCII byte (parts of
    letters in other scripts), and turn every other ASCII byte (punctuation, spaces) into a space;
    with ``sentence_ends``, ``.``, ``!`` and ``?`` become line breaks (to split a long line)."""
    out = bytearray(range(256))
    for b in range(128):
        c = chr(b)
        if c == "\n" or c == "_" or c.isdigit():
            continue
        out[b] = ord(c.lower()) if c.isalpha() else 0x0A if sentence_ends and c in ".!?" else 0x20
    return bytes(out)


_TABLE = _byte_table()
_SENTENCE_TABLE = _byte_table(sentence_ends=True)
# Unicode punctuation common in web text ("she’s", "men—women"), made spaces before the byte pass.
_UNICODE_PUNCT = ("\u2019", "\u2018", "\u201c", "\u201d", "\u2014", "\u2013", "\u2026", "\u00a0", "\u00b4")
_SPACED = "".join(_UNICODE_PUNCT)  # for the compiled pass: each takes one byte (a space) when prepared
# A line holding any of these may carry what the toxicity stage cleans (mentions, URLs, HTML
# entities, masked profanity): it is scored through the toxicity stage's own cleaning.
_NEEDS_CLEANING = ("*", "@", "$", "#", "//", "&", "www.", "RT", "URL")
# The same test as one C-level search (a generator over the substrings cost more than the search).
_NEEDS_CLEANING_RE = re.compile("|".join(map(re.escape, _NEEDS_CLEANING)))
# The same for the compiled pass, which finds them in a long line's bytes (ASCII: the same there).
_NEEDS_CLEANING_BYTES = tuple(n.encode("ascii") for n in _NEEDS_CLEANING)


def _prepared(text: str, table: bytes = _TABLE) -> bytes:
    """``text`` as lower-case UTF-8 bytes with punctuation made spaces (see :func:`_byte_table`);
    line breaks stay where they are, so its lines are the text's lines."""
    for p in _UNICODE_PUNCT:
        if p in text:
            text = text.replace(p, " ")
    return text.encode("utf-8", "replace").translate(table)


def words_of(text: str) -> list[bytes]:
    """The words of ``text`` as lower-case UTF-8 bytes: runs of ASCII letters, digits and ``_`` and
    of non-ASCII characters. One ``bytes.translate`` and one split, both in C: several times faster
    than ``re.findall(r"\\w+")`` on web text, and the same words on English text."""
    return _prepared(text).split()


class BiasTagger:
    """Pure logic: lexicon matching and toxic-unit scoring for a batch of texts. No Beam in here."""

    def __init__(
        self,
        lexicon: Lexicon,
        model: LinearToxicityModel | None,
        threshold: float = 0.7,
        max_segment_words: int = 64,
        clean_text: bool = True,
        score_cache: int = 0,
    ) -> None:
        self.lexicon = lexicon
        self.model = model
        self.threshold = threshold
        self.max_segment_words = max_segment_words
        self.clean_text = clean_text and model is not None
        self.unmask = Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT)) if self.clean_text else None
        # The lexicon as bytes (the words are bytes); terms outside ASCII need str.lower first.
        self.bytes_lexicon = lexicon.encoded()
        self.lower_first = not all(k.isascii() for k in lexicon.keys)
        self.index = {t.encode("utf-8"): i for t, i in model.index.items()} if model is not None else {}
        # The compiled word pass, chosen once here (tests set ``_bias_match`` to None first to run
        # the pure-Python path).
        self.compiled = _bias_match
        self.filter = _bias_match.build_filter(self.bytes_lexicon.keys) if _bias_match is not None else b""
        # The compiled pass labels a mention by its category's index, the pure-Python one by its
        # name: ``label_names`` turns either into the name.
        self.terms = self.bytes_lexicon.term_table() if _bias_match is not None else {}
        self.label_names: Sequence[str] | dict[str, str] = (
            lexicon.categories if _bias_match is not None else {c: c for c in lexicon.categories}
        )
        # Scored lines seen before (compiled path with scoring only; see cache.py): key -> the
        # (labels, toxic) of the key's units.
        self.cache: LineCache[tuple[tuple[list[Any], bool], ...]] | None = (
            LineCache(score_cache)
            if score_cache > 0 and _bias_match is not None and model is not None
            else None
        )

    def clear_cache(self) -> None:
        """Forget the scored lines (a benchmark's passes then each start cold)."""
        if self.cache is not None:
            self.cache.clear()

    def _needs_cleaning(self, raw: str | None) -> bool:
        return raw is not None and self.unmask is not None and _NEEDS_CLEANING_RE.search(raw) is not None

    def _cleaned(self, raw: str, words: list[bytes]) -> list[bytes] | list[int]:
        """A unit whose raw text holds what the toxicity stage cleans, through that cleaning: its
        words when the cleaned text is ASCII (where the byte words and the classifier's token
        pattern give the same vocabulary terms, and the byte pass is the cheaper), its term ids
        through the classifier's own token pattern otherwise."""
        assert self.model is not None and self.unmask is not None
        stripped = strip_artefacts(raw)
        lowered = stripped.lower()
        text = self.unmask(lowered)
        if not text.isascii():
            return self.model.term_ids(text, lowered=True)
        if text is lowered and stripped is raw:
            return words  # nothing to clean after all: the unit's own words
        return text.encode("ascii").translate(_TABLE).split()

    def _toxic_flags(self, units: Sequence[tuple[str | None, list[bytes]]]) -> list[bool]:
        """Whether each unit scores at or above the threshold; a unit without a vocabulary term is
        never toxic. The words of all plain units go through the vocabulary in one C-level ``map``
        into one array (no Python loop per word), and all units are scored in one call; each
        unit's score is computed from its own terms only, so it does not depend on the batch."""
        assert self.model is not None
        n = len(units)
        if not n:
            return []
        plain_words: list[list[bytes]] = []
        plain_units: list[int] = []
        cleaned: list[np.ndarray] = []
        cleaned_units: list[np.ndarray] = []
        for k, (raw, words) in enumerate(units):
            if self._needs_cleaning(raw):
                assert raw is not None
                unit = self._cleaned(raw, words)
                if unit and isinstance(unit[0], int):
                    cleaned.append(np.asarray(unit, dtype=np.int64))
                    cleaned_units.append(np.full(len(unit), k, dtype=np.int64))
                    continue
                words = unit  # type: ignore[assignment]
            plain_words.append(words)
            plain_units.append(k)
        lengths = np.fromiter(map(len, plain_words), dtype=np.int64, count=len(plain_words))
        flat = np.fromiter(
            map(self.index.get, chain.from_iterable(plain_words), repeat(-1)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        ids = np.concatenate([flat, *cleaned])
        seg = np.concatenate([np.repeat(np.asarray(plain_units, dtype=np.int64), lengths), *cleaned_units])
        known = ids >= 0
        ids, seg = ids[known], seg[known]
        has_terms = np.bincount(seg, minlength=n) > 0
        probs = self.model.score_flat(ids, seg, n)
        return ((probs >= self.threshold) & has_terms).tolist()

    def _units(self, text: str) -> tuple[int, list[Unit], list[tuple[Any, list[Unit]]]]:
        """(words, units holding a mention, units to cache once scored as (key, units)); see
        :data:`Unit` (the compiled pass leaves the words out when nothing scores the units, and
        fills the toxic flag of units found in the cache)."""
        if self.lower_first:
            text = text.lower()
        if self.compiled is not None:
            return self._units_compiled(text)
        keys, limit = self.bytes_lexicon.keys, self.max_segment_words
        n_words = 0
        found: list[Unit] = []
        raw_lines: list[str] | None = None
        for i, line in enumerate(_prepared(text).split(b"\n")):
            words = line.split()
            n_words += len(words)
            if keys.isdisjoint(words):
                continue
            if raw_lines is None:
                raw_lines = text.split("\n")
            raw = raw_lines[i]
            units: list[tuple[str | None, list[bytes]]]
            if len(words) <= limit:
                units = [(raw, words)]
            elif self._needs_cleaning(raw):
                units = self._raw_sentences(raw)
            else:  # sentences in one translate pass (a "." inside "3.5" splits too: harmless)
                units = [
                    (None, w) for w in (s.split() for s in _prepared(raw, _SENTENCE_TABLE).split(b"\n")) if w
                ]
            self._collect(units, found)
        return n_words, found, []

    def _units_compiled(self, text: str) -> tuple[int, list[Unit], list[tuple[Any, list[Unit]]]]:
        """:meth:`_units` through the compiled pass: it counts the words, finds the lines (and, in a
        long line, the sentences) holding a lexicon word and gives each one's mentions as category
        ids; only units with a mention are split into words here, and only to be scored. With the
        cache, a line (or sentence) scored before is neither split nor scored again: the key is
        the raw line (its units follow from it), or a sentence's prepared bytes (its words)."""
        assert self.compiled is not None
        spaced = text
        for p in _UNICODE_PUNCT:
            if p in spaced:
                spaced = spaced.replace(p, " ")
        raw_bytes = spaced.encode("utf-8", "replace")
        prepared = raw_bytes.translate(_TABLE)
        n_words, hits = self.compiled.scan_mentions(
            prepared,
            raw_bytes,
            self.filter,
            self.bytes_lexicon.keys,
            self.terms,
            self.max_segment_words,
            _NEEDS_CLEANING_BYTES if self.unmask is not None else (),
        )
        found: list[Unit] = []
        pending: list[tuple[Any, list[Unit]]] = []
        if not hits:
            return n_words, found, pending
        raw_lines = text.split("\n")
        scored = self.model is not None
        cache = self.cache
        for i, start, end, sentences, mentions in hits:
            raw = raw_lines[i]
            if sentences is None and mentions is not None:  # a line of at most max_segment_words
                if not mentions:
                    continue
                if cache is None:
                    found.append([raw, prepared[start:end].split() if scored else None, mentions, None])
                elif not self._from_cache(raw, found):
                    units = [[raw, prepared[start:end].split(), mentions, None]]
                    found += units
                    pending.append((raw, units))
            elif sentences is None:  # a long line to clean (see _NEEDS_CLEANING): its raw sentences
                if cache is None or not self._from_cache(raw, found):
                    units = self._raw_sentences_compiled(raw, prepared, start, end)
                    found += units
                    if cache is not None:
                        pending.append((raw, units))
            else:
                for a, b, m in sentences:
                    if not m:
                        continue
                    if cache is None:
                        found.append([None, prepared[a:b].split() if scored else None, m, None])
                        continue
                    key = prepared[a:b]
                    if not self._from_cache(key, found):
                        units = [[None, key.split(), m, None]]
                        found += units
                        pending.append((key, units))
        return n_words, found, pending

    def _from_cache(self, key: Any, found: list[Unit]) -> bool:
        """Append the cached, already scored units of ``key`` to ``found``; False: not cached."""
        assert self.cache is not None
        hit = self.cache.get(key)
        if hit is None:
            return False
        found += [[None, None, labels, toxic] for labels, toxic in hit]
        return True

    def _raw_sentences(self, raw: str) -> list[tuple[str | None, list[bytes]]]:
        """A long line to clean (pure-Python path): its raw sentences (cleaned one by one later)
        with their words."""
        sentences = _SENTENCE_END.split(raw)
        # One byte pass over the line's sentences (a sentence has no line break, and the
        # pass works byte by byte, so each piece is exactly that sentence's own pass).
        prepared = _prepared("\n".join(sentences)).split(b"\n")
        return [(s, p.split()) for s, p in zip(sentences, prepared, strict=True)]

    def _raw_sentences_compiled(self, raw: str, prepared: bytes, start: int, end: int) -> list[Unit]:
        """:meth:`_raw_sentences` through the compiled pass, which also gives each sentence's
        mentions: only the sentences with a mention, with their words. ``raw`` is the line whose
        prepared bytes are ``prepared[start:end]``; it is cut in C (``raw_sentences_str``: the
        same pieces as the regex, without splitting, joining and preparing them all), or by the
        regex when its bytes do not add up there (a safeguard: they always should)."""
        assert self.compiled is not None
        keys = self.bytes_lexicon.keys
        spans = self.compiled.raw_sentences_str(
            raw, _SPACED, prepared, start, end, self.filter, keys, self.terms
        )
        if spans is not None:
            return [[raw[i:j], prepared[a:b].split(), m, None] for i, j, a, b, m in spans if m]
        sentences = _SENTENCE_END.split(raw)
        joined = _prepared("\n".join(sentences))
        _, hits = self.compiled.scan_mentions(joined, joined, self.filter, keys, self.terms, len(joined))
        return [[sentences[i], joined[a:b].split(), m, None] for i, a, b, _, m in hits if m]

    def _collect(
        self,
        units: list[tuple[str | None, list[bytes]]],
        found: list[Unit],
    ) -> None:
        """Append each unit holding a mention, with the categories of its mentions, to ``found``."""
        keys, match = self.bytes_lexicon.keys, self.bytes_lexicon.match
        for unit_raw, unit in units:
            if keys.isdisjoint(unit):
                continue
            cats = match(unit)
            if cats:
                found.append([unit_raw, unit, cats, None])

    def tag_many(self, texts: Sequence[str]) -> list[BiasSignals]:
        per_doc = [self._units(t) for t in texts]
        if self.model is not None:
            todo = [u for _, found, _ in per_doc for u in found if u[3] is None]
            for u, flag in zip(todo, self._toxic_flags([(u[0], u[1]) for u in todo]), strict=True):
                u[3] = flag
            if self.cache is not None:
                for _, _, pending in per_doc:
                    for key, units in pending:
                        self.cache.put(key, tuple((u[2], u[3]) for u in units))
        out: list[BiasSignals] = []
        for n_words, found, _ in per_doc:
            # One Counter per document over all its labels (a Counter.update per unit cost an ABC
            # instance check each).
            labels: list[Any] = []
            in_toxic: list[Any] = []
            for u in found:
                labels += u[2]
                if u[3]:
                    in_toxic += u[2]
            out.append(self._signals(n_words, labels, in_toxic))
        return out

    def _signals(self, n_words: int, labels: list[Any], in_toxic: list[Any]) -> BiasSignals:
        """The document's signals from the labels of its mentions and of its toxic mentions."""
        names = self.label_names
        mentions = {names[c]: n for c, n in Counter(labels).items()} if labels else {}
        toxic = {names[c]: n for c, n in Counter(in_toxic).items()} if in_toxic else {}
        return BiasSignals(
            words=n_words,
            female=mentions.pop(FEMALE, 0),
            male=mentions.pop(MALE, 0),
            mentions=dict(sorted(mentions.items())),
            toxic_mentions=dict(sorted(toxic.items())),
        )


def signal_counts(signals: Iterable[BiasSignals], prefix: str = "") -> Counter[str]:
    """The stage's counters for tagged documents (``prefix`` distinguishes rejected records)."""
    totals: Counter[str] = Counter()
    for s in signals:
        totals[prefix + "docs"] += 1
        totals[prefix + "words"] += s.words
        for name, n in ((FEMALE, s.female), (MALE, s.male), *s.mentions.items()):
            if n:
                totals[f"{prefix}mentions:{name}"] += n
        for name, n in s.toxic_mentions.items():
            totals[f"{prefix}toxic_mentions:{name}"] += n
    return totals


# One tagger per worker process and settings in the process's registry (transforms/shared_setup.py),
# shared by the stage and the rejected-record count (see _TaggerHolder), with the lock its tag_many
# runs under.
TAGGER_KIND = "bias.tagger"


def _file_state(path: str | None) -> tuple[Any, ...]:
    """What tells a changed file apart within one process: its size and modification time."""
    if path is None:
        return ()
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_size, st.st_mtime_ns)


class _TaggerHolder:
    """Builds the tagger once per worker (lexicon and classifier), never pickled with the graph.

    Holders with the same settings share one tagger per process: the stage and
    :class:`CountBiasOfRejected` then share its set-up and its cache of scored lines, so a line
    of boilerplate or a duplicate's line scored in one is not scored again in the other (the
    signals do not depend on the cache, see ``cache.py``). Its ``tag_many`` runs under a lock:
    Beam may run both on threads of one process, and the cache is not thread-safe.
    """

    def __init__(
        self,
        lexicon_path: str | None,
        model_path: str | None,
        toxic_lines: bool,
        threshold: float,
        max_segment_words: int,
        clean_text: bool,
        score_cache: int = 0,
    ) -> None:
        self.lexicon_path = lexicon_path
        self.model_path = model_path
        self.toxic_lines = toxic_lines
        self.threshold = threshold
        self.max_segment_words = max_segment_words
        self.clean_text = clean_text
        self.score_cache = score_cache
        self._tagger: BiasTagger | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tagger"] = None
        state.pop("_lock", None)
        return state

    def _key(self) -> str:
        """The registry key: every setting the tagger is built from, the files' states, and whether
        the compiled pass is in (it is chosen when a tagger is built; tests switch it off)."""
        settings = (
            self.toxic_lines,
            self.threshold,
            self.max_segment_words,
            self.clean_text,
            self.score_cache,
        )
        files = (_file_state(self.lexicon_path), _file_state(self.model_path))
        return json.dumps([*settings, *files, _bias_match is not None], default=str)

    @property
    def tagger(self) -> BiasTagger:
        if self._tagger is None:
            # its cache changes under the lock only, and changes no signal (the registry's one
            # exception to "never changed", see shared_setup.py)
            self._tagger, self._lock = shared_setup.shared(
                TAGGER_KIND, self._key(), lambda: (self._build(), threading.Lock())
            )
        return self._tagger

    def _build(self) -> BiasTagger:
        model = LinearToxicityModel.load(self.model_path) if self.toxic_lines else None
        return BiasTagger(
            Lexicon.load(self.lexicon_path),
            model,
            self.threshold,
            self.max_segment_words,
            self.clean_text,
            self.score_cache,
        )

    def tag_many(self, texts: Sequence[str]) -> list[BiasSignals]:
        """The shared tagger's :meth:`BiasTagger.tag_many`, one thread at a time."""
        tagger = self.tagger
        with self._lock:
            return tagger.tag_many(texts)


class TagBias(DocumentStage):
    """Sets ``bias`` on every document; never rejects."""

    name = STAGE

    def __init__(self, holder: _TaggerHolder, batch_size: int = 256) -> None:
        self.holder = holder
        self.batch_size = batch_size

    def setup(self) -> None:
        _ = self.holder.tagger

    def process(self, doc: Document) -> Document:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | RejectedDocument]:
        signals = self.holder.tag_many([d.text or "" for d in docs])
        if self.counters is not None:
            for name, n in signal_counts(signals).items():
                self.counters.inc(name, n)
        return [replace(d, bias=s) for d, s in zip(docs, signals, strict=True)]


class _CountRejectedFn(beam.DoFn):
    def __init__(self, holder: _TaggerHolder) -> None:
        self.holder = holder

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)
        _ = self.holder.tagger

    def process(self, batch: list[RejectedDocument]) -> Iterable[None]:
        signals = self.holder.tag_many([r.doc.text or "" for r in batch])
        for name, n in signal_counts(signals, REJECTED_PREFIX).items():
            self.counters.inc(name, n)
        return ()


class CountBiasOfRejected(beam.PTransform):
    """Count the bias signals of rejected records (counters only; the records are not changed), so
    that stats.json can report the corpus before filtering: tagged documents plus these."""

    def __init__(self, holder: _TaggerHolder, batch_size: int = 256) -> None:
        super().__init__()
        self.holder = holder
        self.batch_size = batch_size

    def expand(self, rejected: beam.PCollection) -> beam.PCollection:
        return (
            rejected
            | "Batch"
            >> beam.BatchElements(min_batch_size=max(1, self.batch_size // 4), max_batch_size=self.batch_size)
            | "Count" >> beam.ParDo(_CountRejectedFn(self.holder))
        )


def _holder(c: BiasConfig, toxicity: ToxicityConfig) -> _TaggerHolder:
    return _TaggerHolder(
        c.lexicon,
        toxicity.model_path,
        c.toxic_lines,
        toxicity.threshold,
        c.max_segment_words,
        toxicity.clean_text,
        c.score_cache,
    )


class TagBiasSignals(ApplyStage):
    """Stage ``bias`` from its section (``cfg.bias``) plus the classifier settings of ``toxicity``:
    documents -> ``(kept, [])``, every document tagged. A bad lexicon fails here, at start-up,
    naming the file and line."""

    def __init__(self, cfg: BiasConfig, toxicity: ToxicityConfig) -> None:
        try:
            Lexicon.load(cfg.lexicon)
        except LexiconError as exc:
            raise ConfigError(f"bias.lexicon: {exc}") from None
        super().__init__(TagBias(_holder(cfg, toxicity), cfg.batch_size))
        self.cfg = cfg


def count_rejected(cfg) -> CountBiasOfRejected | None:
    """The before-filtering counts over rejected records, or None when the stage is disabled."""
    if not cfg.bias.enabled:
        return None
    return CountBiasOfRejected(_holder(cfg.bias, cfg.toxicity), cfg.bias.batch_size)
