"""Decontamination: remove (or cut) every document that contains a benchmark test item.

A model that saw a benchmark's test items in training reports scores that mean nothing. The pure
logic (:class:`Decontaminator`) finds a document's word n-grams (default 13, as GPT-3 and Dolma) in a
:class:`~corpusforge.transforms.decontam.index.BenchmarkIndex`, plus whole short items, and decides:

* ``action: reject``: the document is rejected as ``contamination:<benchmark>`` (the benchmark with
  most matches), ``detail`` names the matching item and quotes it;
* ``action: cut``: the matching spans, widened by ``cut_margin`` words on each side, are removed and
  the rest is kept when at least ``cut_min_keep_frac`` of the words remain (else rejected as above).

Either way ``Document.contamination`` lists the matched benchmarks, and the stage counts
``hits:<benchmark>`` (documents matching each benchmark), ``cut`` and the index's own numbers
(``index:*``, once per run). :class:`Decontaminate` is the thin Beam wrapper.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from corpusforge.schemas.config import ConfigError, DecontaminationConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms import shared_setup
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters, WorkerState
from corpusforge.transforms.decontam import text as text_module
from corpusforge.transforms.decontam.index import BenchmarkIndex, resolve_sources
from corpusforge.transforms.decontam.index_cache import cached_index
from corpusforge.transforms.decontam.text import (
    benchmark_matching_form,
    word_hashes,
    word_hashes_docs,
    word_hashes_many,
)

STAGE = "decontamination"
REASON = "contamination"
BATCH_SIZE = 64  # documents hashed and looked up in one numpy pass (see Decontaminator.check_batch)
_TOKEN = re.compile(r"\S+")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class Verdict:
    """What the stage decided for one document."""

    doc: Document  # annotated (and, after a cut, shortened) document
    rejection: RejectReason | None
    hits: dict[str, int]  # benchmark -> matched n-grams / whole items
    cut: bool = False


class Decontaminator(WorkerState):
    """Pure per-document logic; the index is built in :meth:`setup`, once per worker.

    Only the benchmark specs and thresholds are pickled with the pipeline, never the index.
    """

    name = STAGE
    per_worker = ("index",)
    index: BenchmarkIndex | None = None

    def __init__(self, cfg: DecontaminationConfig | None = None) -> None:
        """Benchmarks and thresholds come from ``cfg`` (the defaults of :class:`DecontaminationConfig`)."""
        cfg = cfg or DecontaminationConfig()
        self.benchmarks = [b if isinstance(b, str) else b.model_dump() for b in cfg.benchmarks]
        self.ngram = cfg.ngram
        self.min_words = min(cfg.min_words, cfg.ngram)
        self.max_item_frequency = cfg.max_item_frequency
        self.min_matches = cfg.min_matches
        self.action = cfg.action
        self.cut_margin = cfg.cut_margin
        self.cut_min_keep_frac = cfg.cut_min_keep_frac
        self.detail_chars = cfg.detail_chars

    def setup(self) -> None:
        if self.benchmarks:
            self.index = _shared_index(self.benchmarks, self.ngram, self.min_words, self.max_item_frequency)

    def check(self, doc: Document) -> Verdict:
        index = self.index
        if index is None or not index.items:
            return Verdict(doc, None, {})
        words = word_hashes(doc.text)
        return self._decide(doc, words.size, *index.lookup(words))

    def _decide(
        self, doc: Document, n_words: int, starts: np.ndarray, lengths: np.ndarray, items: np.ndarray
    ) -> Verdict:
        """The verdict from a document's matches (start word, length, item per hit)."""
        index = self.index
        assert index is not None
        if starts.size == 0:
            return Verdict(doc, None, {})
        benches = index.item_benchmark[items]
        counts = np.bincount(benches, minlength=len(index.benchmarks))
        hits = {index.benchmarks[b]: int(c) for b, c in enumerate(counts) if c >= self.min_matches}
        if not hits:
            return Verdict(doc, None, {})
        names = sorted(hits, key=lambda b: (-hits[b], b))
        annotated = replace(doc, contamination=",".join(names))
        if self.action == "cut":
            flagged = np.isin(benches, [index.benchmarks.index(b) for b in names])
            cut_text = self.cut(doc.text, n_words, starts[flagged], lengths[flagged])
            if cut_text is not None:
                return Verdict(replace(annotated, text=cut_text), None, hits, cut=True)
        return Verdict(annotated, self._rejection(names[0], benches, items), hits)

    def check_batch(self, docs: Sequence[Document]) -> list[Verdict]:
        """:meth:`check` for many documents. Where ``_grams`` was built, each document's words are
        hashed and looked up in one compiled loop (:func:`word_hashes_docs`,
        :meth:`BenchmarkIndex.lookup_docs`: the same hashes and hits as :meth:`check`'s numpy path,
        ~3x its throughput) and the verdict comes from those hits. Otherwise the words of the batch
        are hashed and looked up in one numpy pass, and the rare documents with a match are checked
        again on their own; every path decides exactly as :meth:`check`."""
        index = self.index
        if index is None or not index.items or not docs:
            return [Verdict(d, None, {}) for d in docs]
        if text_module._grams is not None:
            return self._check_batch_compiled(docs)
        batch = word_hashes_many([d.text for d in docs])
        starts, lengths, _ = index.lookup(batch.hashes)
        if starts.size == 0:
            return [Verdict(d, None, {}) for d in docs]
        owner = batch.text_of_word
        inside = owner[starts] == owner[starts + lengths - 1]  # not across two documents
        flagged = set(owner[starts[inside]].tolist())
        return [self.check(d) if i in flagged else Verdict(d, None, {}) for i, d in enumerate(docs)]

    def _check_batch_compiled(self, docs: Sequence[Document]) -> list[Verdict]:
        assert self.index is not None
        words, n_words = word_hashes_docs([d.text for d in docs])
        doc_of, starts, lengths, items = self.index.lookup_docs(words, n_words)
        verdicts = [Verdict(d, None, {}) for d in docs]
        if doc_of.size:
            bounds = np.flatnonzero(np.diff(doc_of, prepend=-1))  # hits come grouped by document
            ends = np.append(bounds[1:], doc_of.size)
            for lo, hi in zip(bounds.tolist(), ends.tolist(), strict=True):
                i = int(doc_of[lo])
                verdicts[i] = self._decide(
                    docs[i], int(n_words[i]), starts[lo:hi], lengths[lo:hi], items[lo:hi]
                )
        return verdicts

    def _rejection(self, bench: str, benches: np.ndarray, items: np.ndarray) -> RejectReason:
        assert self.index is not None
        b = self.index.benchmarks.index(bench)
        mine = items[benches == b]
        values, counts = np.unique(mine, return_counts=True)
        item = self.index.items[int(values[np.argmax(counts)])]  # most matches; ties: first item
        quote = benchmark_matching_form(item.text)
        if len(quote) > self.detail_chars:
            quote = quote[: self.detail_chars].rsplit(" ", 1)[0] + " ..."
        return RejectReason(
            reason=f"{REASON}:{bench}".lower(), stage=STAGE, detail=f"{item.benchmark}[{item.index}]: {quote}"
        )

    def cut(self, text: str, n_words: int, starts: np.ndarray, lengths: np.ndarray) -> str | None:
        """``text`` without the matched word runs (widened by the margin), or None when too little
        remains (or when the text's words cannot be located, which the caller treats as a reject)."""
        spans = _word_spans(text)
        if len(spans) != n_words:
            return None
        removed = np.zeros(n_words + 1, dtype=np.int32)
        lo = np.maximum(starts - self.cut_margin, 0)
        hi = np.minimum(starts + lengths + self.cut_margin, n_words)
        np.add.at(removed, lo, 1)
        np.add.at(removed, hi, -1)
        gone = np.cumsum(removed[:-1]) > 0
        kept_words = int(n_words - gone.sum())
        if kept_words == 0 or kept_words < self.cut_min_keep_frac * n_words:
            return None
        pieces, pos, w = [], 0, 0
        while w < n_words:
            if not gone[w]:
                w += 1
                continue
            end = w
            while end < n_words and gone[end]:
                end += 1
            pieces.append(text[pos : spans[w][0]].rstrip(" \t"))
            pos = spans[end - 1][1]
            w = end
        pieces.append(text[pos:].lstrip(" \t"))
        return "\n".join(p for p in pieces if p.strip()).strip()


INDEX_KIND = "decontamination.index"  # its entries in the process's registry (shared_setup.py)


def index_key(benchmarks: list[Any], n: int, min_words: int, max_item_frequency: int) -> str:
    """The registry key of an index: every setting it is built from."""
    return json.dumps([benchmarks, n, min_words, max_item_frequency], sort_keys=True, default=str)


def _shared_index(benchmarks: list[Any], n: int, min_words: int, max_item_frequency: int) -> BenchmarkIndex:
    """One index per worker process and settings (``transforms/shared_setup.py``: built once even
    when several DoFn instances ask on threads at once), shared by every DoFn instance and by the
    index-statistics step; read from the disk cache when this machine built it before
    (``index_cache.py``). Only read once built: never changed in place."""
    return shared_setup.shared(
        INDEX_KIND,
        index_key(benchmarks, n, min_words, max_item_frequency),
        lambda: cached_index(resolve_sources(benchmarks), n, min_words, max_item_frequency),
    )


def preload(section: dict[str, Any]) -> None:
    """Build the index of the ``decontamination`` section ``section`` (its JSON form) into this
    process's indexes: the local runner's zygote, once for every worker it forks (~0.15 CPU s each
    with the eight dev benchmarks, read from the disk cache; ``pipelines/local/warm.py``). A worker
    whose settings differ misses it and builds its own; the index is only read after it is built."""
    Decontaminator(DecontaminationConfig.model_validate(section)).ready()


def _word_spans(text: str) -> list[tuple[int, int]]:
    """Character span of each matching word, in order (a token may hold none, e.g. ``--``)."""
    spans = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token.isascii():  # the common case: one word if anything survives punctuation removal
            count = 1 if _ASCII_ALNUM.search(token) else 0
        else:
            count = len(benchmark_matching_form(token).split())
        spans.extend([(m.start(), m.end())] * count)
    return spans


class _DecontaminateFn(beam.DoFn):
    def __init__(self, logic: Decontaminator) -> None:
        self.logic = logic

    def setup(self) -> None:
        self.logic.ready()
        self.counters = StageCounters(STAGE)

    def process(self, docs: list[Document]) -> Iterable[Any]:
        for doc in docs:
            self.counters.saw(doc)
        for verdict in self.logic.check_batch(docs):
            yield from self._route(verdict)

    def _route(self, verdict: Verdict) -> Iterable[Any]:
        for bench in verdict.hits:
            self.counters.inc(f"hits:{bench}")
        if verdict.rejection is not None:
            self.counters.rejected(verdict.rejection)
            yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(verdict.doc, verdict.rejection))
            return
        if verdict.cut:
            self.counters.inc("cut")
        self.counters.kept(verdict.doc)
        yield verdict.doc


class _IndexStatsFn(beam.DoFn):
    """Counts the index's numbers (items, short texts matched whole or ignored, boilerplate) once."""

    def __init__(self, logic: Decontaminator) -> None:
        self.logic = logic

    def process(self, _: Any) -> Iterable[None]:
        self.logic.ready()
        counters = StageCounters(STAGE)
        if self.logic.index is None:
            return ()
        for name, value in self.logic.index.stats.counters().items():
            counters.inc(name, value)
        counters.inc("index:bytes", self.logic.index.nbytes)
        return ()


class Decontaminate(beam.PTransform):
    """Stage ``decontamination`` from its section (``cfg.decontamination``): documents in;
    ``(kept, rejected)`` out. With no benchmarks every document passes through.

    The benchmark globs are resolved here, when the pipeline is built, so that a missing file fails
    at start-up naming the key rather than on a worker after the run has begun.
    """

    def __init__(self, cfg: DecontaminationConfig, batch_size: int = BATCH_SIZE) -> None:
        super().__init__(label=STAGE)
        try:
            resolve_sources(cfg.benchmarks)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"decontamination.benchmarks: {exc}") from None
        self.cfg = cfg
        self.logic = Decontaminator(cfg)
        self.batch_size = batch_size

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        if self.logic.benchmarks:
            _ = (
                docs.pipeline
                | "IndexSeed" >> beam.Create([None])
                | "IndexStats" >> beam.ParDo(_IndexStatsFn(self.logic))
            )
        batches = docs | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=self.batch_size)
        results = batches | "Apply" >> beam.ParDo(_DecontaminateFn(self.logic)).with_outputs(
            REJECTED_TAG, main=KEPT_TAG
        )
        return results[KEPT_TAG], results[REJECTED_TAG]
