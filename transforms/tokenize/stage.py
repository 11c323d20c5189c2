"""Stage ``tokenize``: kept documents into token ids (then grouped into training rows by ``bucket``).

The family's modules, one job each: the tokenizer logic (:mod:`.tokenizer`, no Beam), tokenizer
loading (:mod:`.loading`), the word cache (:mod:`.word_cache`), the ``bucket`` stage
(:mod:`.bucket_stage`, over the pure splitting and packing of :mod:`.bucket`), the sequences Parquet
sink (:mod:`.sequences_sink`) and the stats.json summary (:mod:`.summary`).
:class:`Tokenize` is the composite transform the pipeline uses after the last filtering stage:

    docs, tokens = docs | "tokenize" >> Tokenize(cfg.tokenize)
    sequences = tokens | "bucket" >> Bucket(cfg.tokenize)

``docs`` are the same documents with ``n_tokens`` set (the tokens of the document's rows, BOS/EOS
included, so that the sum over kept documents equals the tokens in ``sequences/``); ``sequences``
are ``(bucket, SequenceRow | PackedRow)`` pairs for :class:`WriteSequences`.

In the pipeline the two stages are applied one after the other (``Tokenize`` then ``Bucket``, so
each is a named step of the graph); :class:`TokenizeAndBucket` chains them for tests and tools.

The tokenizer is inspected once on the driver (the output schema depends on the vocabulary size, and
a missing EOS should fail before any worker starts), then loaded again once per worker in ``setup``;
it is never pickled with the graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.tokenize.bucket_stage import Bucket
from corpusforge.transforms.tokenize.control import (
    COUNTER_PREFIX,
    ControlTokens,
    SeenValues,
    build_control,
    write_resolved_tokenizer,
)
from corpusforge.transforms.tokenize.loading import TokenizerInfo, inspect_tokenizer
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer

TOKENS_TAG = "tokens"


class _TokenizeFn(beam.DoFn):
    def __init__(self, logic: DocumentTokenizer, control: ControlTokens | None = None) -> None:
        self.logic = logic
        self.control = control  # control tokens go right after BOS (transforms/tokenize/control.py)

    def setup(self) -> None:
        self.logic.ready()
        if self.control is not None:
            self.control.setup()
        self.counters = StageCounters(self.logic.name)
        self._resolved: ControlTokens | None = None

    def teardown(self) -> None:
        self.logic.flush()  # the words this worker learned, for the next (transforms/word_store.py)

    def _control(self, seen: dict[str, list[str]] | None) -> ControlTokens | None:
        """The control tokens with the values seen (the side input), resolved once per worker."""
        if self.control is None or not self.control.seen_rules:
            return self.control
        if self._resolved is None:
            self._resolved = self.control.resolve(seen or {})
        return self._resolved

    def process(self, batch: Sequence[Document], seen: dict[str, list[str]] | None = None) -> Iterable[Any]:
        control = self._control(seen)
        before = self.logic.library_docs
        all_ids = self.logic.encode([d.text for d in batch])
        counters = self.counters
        if self.logic.library_docs > before:  # documents the word cache could not take
            counters.inc("word_cache_fallback", self.logic.library_docs - before)
        total = 0
        for doc, ids in zip(batch, all_ids, strict=True):
            counters.saw(doc)
            if control is not None:
                ids, tokens = control.insert(doc, ids, len(self.logic.prefix))
                for token in tokens:
                    counters.inc(COUNTER_PREFIX + token)
            out = dataclasses.replace(doc, n_tokens=len(ids))
            counters.kept(out)
            total += len(ids)
            yield out
            yield pvalue.TaggedOutput(TOKENS_TAG, (doc.id, ids))
        counters.inc("tokens", total)


class Tokenize(beam.PTransform):
    """Stage ``tokenize``: documents in; ``(documents with n_tokens, (doc_id, token ids))`` out."""

    def __init__(
        self, cfg: TokenizeConfig, info: TokenizerInfo | None = None, output_dir: str | None = None
    ) -> None:
        """``output_dir``: where ``tokenizer.json`` goes when a control rule takes the values seen
        (the graph writes it once they are known); None writes nothing."""
        super().__init__(label="tokenize")
        self.cfg = cfg
        self.output_dir = output_dir
        self.info = info or inspect_tokenizer(cfg.tokenizer, cfg.add_bos, cfg.bos, cfg.add_eos, cfg.eos)
        self.control = build_control(cfg)
        if self.control is not None:  # the added tokens widen the vocabulary the schema must hold
            self.info = dataclasses.replace(
                self.info, vocab_size=max(self.info.vocab_size, self.control.vocab_size)
            )

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        logic = DocumentTokenizer(
            cfg.tokenizer, self.info.bos_id, self.info.eos_id, word_cache=cfg.word_cache
        )
        side: dict[str, Any] = {}
        if self.control is not None and self.control.seen_rules:
            # the values seen, before any document is tokenized: one small dict, a side input
            seen = docs | "ControlValuesSeen" >> beam.CombineGlobally(SeenValues(self.control.seen_rules))
            side["seen"] = pvalue.AsSingleton(seen)
            if self.output_dir is not None:
                _ = seen | "WriteTokenizer" >> beam.Map(
                    write_resolved_tokenizer, self.output_dir, self.control
                )
        results = (
            docs
            | "Batch"
            >> beam.BatchElements(min_batch_size=max(1, cfg.batch_size // 4), max_batch_size=cfg.batch_size)
            | "Encode"
            >> beam.ParDo(_TokenizeFn(logic, self.control), **side).with_outputs(TOKENS_TAG, main="docs")
        )
        return results["docs"], results[TOKENS_TAG]


class TokenizeAndBucket(beam.PTransform):
    """Both stages in one: documents in; ``(documents with n_tokens, (bucket, row) pairs)`` out."""

    def __init__(self, cfg: TokenizeConfig, info: TokenizerInfo | None = None) -> None:
        super().__init__()
        self.tokenize = Tokenize(cfg, info)
        self.bucket = Bucket(cfg)

    @property
    def info(self) -> TokenizerInfo:
        return self.tokenize.info

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        docs, tokens = docs | "tokenize" >> self.tokenize
        return docs, tokens | "bucket" >> self.bucket
