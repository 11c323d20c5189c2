"""Dedup against earlier releases (stage ``dedup_previous``): reject copies of indexed documents.

Runs before the in-run dedup stages, so a document that duplicates an indexed one is rejected as
``dedup:exact_previous`` / ``dedup:near_previous`` even when it also duplicates another new document;
``duplicate_of`` is ``<release>:<id>``. Indexed documents are never changed (they are not here).

Distributed like the in-run stages: the index is read by the workers (its shard files are listed on
the driver, nothing more), and meets the new documents by joins (CoGroupByKey), never as a side
input held in memory or on one worker.

1. ``Exact``: new documents and index rows keyed by exact-text hash, joined; a new document whose
   hash is indexed is rejected as a copy of the earliest indexed one.
2. ``Near``: the survivors' band keys (:class:`MinHasher`, as in ``dedup_near``) joined with the
   index's stored band keys. In each shared bucket every new member is verified against every
   indexed member by estimated Jaccard over the 16-bit signature fingerprints, the same test and
   ``verify_threshold`` the in-run stage links with. The index stores the full signature for this
   (see :class:`~corpusforge.schemas.records.IndexRow`); with ``exact_verify`` the in-run stage
   also compares texts, which the index does not hold, so against earlier releases the estimate is
   the test. Indexed members of a bucket are distinct kept documents of earlier runs (they were
   deduplicated there), so all of them are compared, as one vectorised comparison per new member.
3. The best match per document (the earliest release, then the smallest index key) is joined back
   to the documents: matched ones are rejected, the rest go on to the in-run stages.

"Earliest" is the order of ``dedup.previous`` (then an incremental index's part order): the first
entry is the oldest release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.parquetio import ReadAllFromParquet

from corpusforge.schemas.config import ConfigError, DedupConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.dedup.exact import node_key
from corpusforge.transforms.dedup.index import (
    DedupIndexError,
    IndexParams,
    IndexSource,
    NearParams,
    resolve_previous,
    signature_of,
)
from corpusforge.transforms.dedup.minhash import MinHasher, band_keys, exact_hash
from corpusforge.transforms.dedup.near import verification_fingerprint

STAGE = "dedup_previous"
EXACT_REASON = "dedup:exact_previous"
NEAR_REASON = "dedup:near_previous"
DOC_TAG = "doc"
# (source position, release, id): the smaller wins, so the earliest release is named
Match = tuple[int, str, str]


def reference(match: Match) -> str:
    """The ``duplicate_of`` of a rejection: ``<release>:<id>``."""
    return f"{match[1]}:{match[2]}"


def previous_rejection(reason: str, match: Match) -> RejectReason:
    kind = "same normalized text as" if reason == EXACT_REASON else "near duplicate of"
    return RejectReason(
        reason=reason,
        stage=STAGE,
        detail=f"{kind} {match[2]} of release {match[1]}",
        duplicate_of=reference(match),
    )


def best_matches(
    new: Iterable[tuple[bytes, bytes]], old: list[tuple[Match, bytes]], verify_threshold: float
) -> tuple[list[tuple[bytes, Match]], int]:
    """The verified earliest indexed match of each new bucket member, and the comparisons made.

    ``new`` holds ``(node key, fingerprint)``, ``old`` ``(match, fingerprint)``; fingerprints are
    :func:`verification_fingerprint` bytes. A member matching no indexed document yields nothing.
    """
    if not old:
        return [], 0
    old = sorted(old)
    matrix = np.stack([np.frombuffer(fp, dtype=np.uint16) for _, fp in old])
    need = int(np.ceil(verify_threshold * matrix.shape[1] - 1e-9))
    out, comparisons = [], 0
    for node, fp in new:
        agree = np.count_nonzero(matrix == np.frombuffer(fp, dtype=np.uint16), axis=1)
        comparisons += len(old)
        hits = np.flatnonzero(agree >= need)
        if hits.size:
            out.append((node, old[int(hits[0])][0]))  # old is sorted: the first hit is the earliest
    return out, comparisons


class _IndexRows(beam.DoFn):
    """``(filename, row)`` -> ``(match, row)``: the row's rank comes from the source its file is in."""

    def __init__(self, positions: dict[str, int]) -> None:
        self.positions = positions

    def process(self, element: tuple[str, dict[str, Any]]) -> Iterable[tuple[Match, dict[str, Any]]]:
        path, row = element
        yield (self.positions[path], row["release"], row["id"]), row


class _RejectExact(beam.DoFn):
    """Per exact hash: if any indexed document has it, every new document with it is a copy."""

    def __init__(self, counts_kept: bool) -> None:
        self.counts_kept = counts_kept

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, dict[str, Iterable[Any]]]) -> Iterable[Any]:
        _, joined = element
        best = min(joined["old"], default=None)
        for doc in joined["new"]:
            self.counters.saw(doc)
            if best is None:
                if self.counts_kept:
                    self.counters.kept(doc)
                yield doc
            else:
                rejection = previous_rejection(EXACT_REASON, best)
                self.counters.rejected(rejection)
                yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


class _NewBands(beam.DoFn):
    """Band keys and fingerprint of each new document; the document keyed by node to a side output."""

    def __init__(self, params: NearParams, counts_in: bool) -> None:
        self.params = params
        self.counts_in = counts_in  # near only: nothing before this step counted what came in

    def setup(self) -> None:
        p = self.params
        self.hasher = MinHasher(p.num_perm, p.ngram, p.seed)
        self.counters = StageCounters(STAGE)

    def process(self, doc: Document) -> Iterable[Any]:
        if self.counts_in:
            self.counters.saw(doc)
        node = node_key(doc.id)
        sig = self.hasher.signature(doc.text)
        yield pvalue.TaggedOutput(DOC_TAG, (node, doc))
        fingerprint = verification_fingerprint(sig)
        for key in band_keys(sig, self.params.bands, self.params.rows):
            yield key, (node, fingerprint)


def _old_bands(element: tuple[Match, dict[str, Any]]) -> Iterable[tuple[bytes, tuple[Match, bytes]]]:
    match, row = element
    fingerprint = verification_fingerprint(signature_of(row["signature"]))
    for key in row["band_keys"]:
        yield key, (match, fingerprint)


class _MatchBuckets(beam.DoFn):
    def __init__(self, verify_threshold: float) -> None:
        self.verify_threshold = verify_threshold

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, dict[str, Iterable[Any]]]) -> Iterable[tuple[bytes, Match]]:
        _, joined = element
        old = list(joined["old"])
        if not old:
            return
        matches, comparisons = best_matches(joined["new"], old, self.verify_threshold)
        if comparisons:
            self.counters.inc("previous_candidate_comparisons", comparisons)
        yield from matches


class _DecideNear(beam.DoFn):
    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, dict[str, list[Any]]]) -> Iterable[Any]:
        _, joined = element
        match = min(joined["match"], default=None)
        for doc in joined["doc"]:
            if match is None:
                self.counters.kept(doc)
                yield doc
            else:
                rejection = previous_rejection(NEAR_REASON, match)
                self.counters.rejected(rejection)
                yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


class DeduplicatePrevious(beam.PTransform):
    """Documents -> ``(kept, rejected)``; rejected ones are copies of documents of earlier releases."""

    def __init__(
        self,
        sources: list[IndexSource],
        params: NearParams,
        exact: bool = True,
        near: bool = True,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        if not (exact or near):
            raise ValueError("dedup_previous needs exact or near deduplication enabled")
        self.sources = sources
        self.params = params
        self.exact = exact
        self.near = near

    @staticmethod
    def wanted(dedup: DedupConfig) -> bool:
        """Runs when earlier releases are named and exact or near deduplication is on."""
        return bool(dedup.previous) and (dedup.exact.enabled or dedup.near.enabled)

    @classmethod
    def from_section(cls, dedup: DedupConfig) -> DeduplicatePrevious:
        """The stage from the ``dedup`` section; a missing index, or one built with other
        parameters, fails here, at start-up, before anything runs or is deleted."""
        params = NearParams.of(dedup.near)
        try:
            sources = resolve_previous(
                dedup.previous, IndexParams.of(params), exact_only=not dedup.near.enabled
            )
        except DedupIndexError as exc:
            raise ConfigError(str(exc)) from None
        return cls(sources, params, exact=dedup.exact.enabled, near=dedup.near.enabled)

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        positions = {path: i for i, s in enumerate(self.sources) for path in s.files}
        index = (
            docs.pipeline
            | "IndexFiles" >> beam.Create(sorted(positions))
            | "ReadIndex"
            >> ReadAllFromParquet(
                columns=["id", "release", "exact_hash", "band_keys", "signature"], with_filename=True
            )
            | "RankRows" >> beam.ParDo(_IndexRows(positions))
        )
        rejected_parts = []
        if self.exact:
            old = index | "ByExactHash" >> beam.Map(lambda mr: (mr[1]["exact_hash"], mr[0]))
            new = docs | "KeyByTextHash" >> beam.Map(lambda d: (exact_hash(d.text), d))
            exact = (
                {"new": new, "old": old}
                | "JoinExact" >> beam.CoGroupByKey()
                | "RejectExact"
                >> beam.ParDo(_RejectExact(counts_kept=not self.near)).with_outputs(
                    REJECTED_TAG, main=KEPT_TAG
                )
            )
            docs = exact[KEPT_TAG]
            rejected_parts.append(exact[REJECTED_TAG])
        if self.near:
            new = docs | "NewBands" >> beam.ParDo(
                _NewBands(self.params, counts_in=not self.exact)
            ).with_outputs(DOC_TAG, main="bands")
            old = index | "OldBands" >> beam.FlatMap(_old_bands)
            matches = (
                {"new": new["bands"], "old": old}
                | "JoinBands" >> beam.CoGroupByKey()
                | "MatchBuckets" >> beam.ParDo(_MatchBuckets(self.params.verify_threshold))
                | "EarliestMatch" >> beam.CombinePerKey(min)
            )
            near = (
                {"doc": new[DOC_TAG], "match": matches}
                | "JoinMatches" >> beam.CoGroupByKey()
                | "DecideNear" >> beam.ParDo(_DecideNear()).with_outputs(REJECTED_TAG, main=KEPT_TAG)
            )
            docs = near[KEPT_TAG]
            rejected_parts.append(near[REJECTED_TAG])
        rejected = tuple(rejected_parts) | "AllRejected" >> beam.Flatten()
        return docs, rejected
