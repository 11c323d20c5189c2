"""Exact deduplication (stage ``dedup_exact``): one document per normalized-text hash survives.

Documents are keyed by a stable 128-bit digest of their comparison form (NFKC, case-folded,
whitespace collapsed; see :func:`corpusforge.transforms.dedup.minhash.exact_hash`) and grouped with one
shuffle. In each group the document with the smallest :func:`node_key` (a stable hash of its id,
then the id) is kept, whatever order the runner delivers the group in, so 1 and N workers keep the
same documents. The group is read twice, never held as a list: a key shared by millions of
boilerplate pages costs memory for one document, not for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.schemas.config import DedupExactConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.dedup.minhash import exact_hash
from corpusforge.transforms.hashing import ID_DIGEST_BYTES, id_digest

STAGE = "dedup_exact"
REASON = "dedup:exact"


def node_key(doc_id: str) -> bytes:
    """The document's sort and join key: 8 bytes of a stable hash of its id, then the id itself.

    Ordering by it is "smallest id hash first" (ties, which need equal hashes, by id), and the id
    can be read back from it (:func:`id_of`) without another join.
    """
    return id_digest(doc_id) + doc_id.encode("utf-8")


def id_of(node: bytes) -> str:
    return node[ID_DIGEST_BYTES:].decode("utf-8")


def exact_rejection(kept_id: str, stage: str = STAGE) -> RejectReason:
    return RejectReason(
        reason=REASON, stage=stage, detail=f"same normalized text as {kept_id}", duplicate_of=kept_id
    )


class _KeepSmallest(beam.DoFn):
    """Per hash group: keep the smallest node key, reject the rest as copies of it."""

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[Document]]) -> Iterable[Any]:
        _, docs = element
        best: bytes | None = None
        size = 0
        for doc in docs:
            key = node_key(doc.id)
            size += 1
            if best is None or key < best:
                best = key
        assert best is not None
        kept_id = id_of(best)
        if size > 1:
            self.counters.inc("duplicate_groups")
        kept_once = False
        for doc in docs:
            self.counters.saw(doc)
            if not kept_once and doc.id == kept_id:
                kept_once = True
                kept = replace(doc, duplicate_count=(doc.duplicate_count or 0) + size - 1)
                self.counters.kept(kept)
                yield kept
            else:
                rejection = exact_rejection(kept_id)
                self.counters.rejected(rejection)
                yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


class DeduplicateExact(beam.PTransform):
    """Stage ``dedup_exact`` from its section (``cfg.dedup.exact``, which has no setting beyond
    ``enabled`` yet): documents -> ``(kept, rejected)``; rejected ones carry ``dedup:exact`` and
    ``duplicate_of``."""

    def __init__(self, cfg: DedupExactConfig | None = None, label: str | None = None) -> None:
        super().__init__(label)
        self.cfg = cfg or DedupExactConfig()

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        results = (
            docs
            | "KeyByTextHash" >> beam.Map(lambda d: (exact_hash(d.text), d))
            | "GroupByTextHash" >> beam.GroupByKey()
            | "KeepSmallestId" >> beam.ParDo(_KeepSmallest()).with_outputs(REJECTED_TAG, main=KEPT_TAG)
        )
        return results[KEPT_TAG], results[REJECTED_TAG]
