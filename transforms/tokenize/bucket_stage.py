"""Stage ``bucket``: ``(doc_id, token ids)`` into ``(bucket, SequenceRow | PackedRow)`` training rows.

The Beam side of :mod:`~corpusforge.transforms.tokenize.bucket` (the pure splitting and packing): one
row per document piece, or, with ``pack``, documents packed in groups chosen by a stable id digest, in
a fixed order, so the rows are the same on any runner and worker count. Per-bucket rows, tokens and
padding are counted for stats.json (:mod:`~corpusforge.transforms.tokenize.summary`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apache_beam as beam

from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import PackedRow, SequenceRow
from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.hashing import id_digest
from corpusforge.transforms.tokenize.bucket import Packer, bucket_for, padding, split_document


class _BucketCounters(StageCounters):
    """Per-bucket rows, tokens and the padding a fixed-length batch of that bucket would waste."""

    def row(self, bucket: int, length: int) -> None:
        self.inc(f"rows:bucket={bucket}")
        self.inc(f"tokens:bucket={bucket}", length)
        self.inc(f"padding:bucket={bucket}", padding(bucket, length))


class _SplitFn(beam.DoFn):
    def __init__(self, bounds: Sequence[int]) -> None:
        self.bounds = list(bounds)

    def setup(self) -> None:
        self.counters = _BucketCounters("bucket")

    def process(self, element: tuple[str, list[int]]) -> Iterable[tuple[int, SequenceRow]]:
        doc_id, ids = element
        rows = split_document(doc_id, ids, self.bounds)
        self.counters.inc("in")
        self.counters.inc("kept")
        if len(rows) > 1:
            self.counters.inc("docs_split")
        for bucket, row in rows:
            self.counters.row(bucket, row.length)
        yield from rows


# Documents of roughly this much input text are packed together in one group (one worker).
PACK_GROUP_MB = 32


def pack_group(doc_id: str, groups: int) -> int:
    """The pack group of a document, from its stable :func:`~corpusforge.transforms.hashing.id_digest`."""
    return int.from_bytes(id_digest(doc_id), "big") % groups


class _PackGroupFn(beam.DoFn):
    """Packs the documents of one group in a fixed order (stable hash of the id, then the id), so
    the rows, and the group's one shorter tail row, are the same on any runner and worker count."""

    def __init__(self, bounds: Sequence[int]) -> None:
        self.bounds = list(bounds)

    def setup(self) -> None:
        self.counters = _BucketCounters("bucket")

    def _keyed(self, row: PackedRow) -> tuple[int, PackedRow]:
        bucket = bucket_for(row.length, self.bounds)
        self.counters.row(bucket, row.length)
        return bucket, row

    def process(
        self, element: tuple[int, Iterable[tuple[str, list[int]]]]
    ) -> Iterable[tuple[int, PackedRow]]:
        _, members = element
        ordered = sorted(members, key=lambda kv: (id_digest(kv[0]), kv[0]))
        packer = Packer(self.bounds[-1])
        for doc_id, ids in ordered:
            self.counters.inc("in")
            self.counters.inc("kept")
            for row in packer.add(doc_id, ids):
                yield self._keyed(row)
        for row in packer.flush():
            yield self._keyed(row)


class Bucket(beam.PTransform):
    """Stage ``bucket``: ``(doc_id, token ids)`` in; ``(bucket, SequenceRow | PackedRow)`` out."""

    def __init__(self, cfg: TokenizeConfig, pack_groups: int = 1) -> None:
        super().__init__(label="bucket")
        self.cfg = cfg
        self.pack_groups = max(1, pack_groups)  # pack mode: documents are packed in this many groups

    def expand(self, tokens: beam.PCollection) -> beam.PCollection:
        if not self.cfg.pack:
            return tokens | "Split" >> beam.ParDo(_SplitFn(self.cfg.buckets))
        groups = self.pack_groups
        return (
            tokens
            | "PackGroup" >> beam.Map(lambda kv: (pack_group(kv[0], groups), kv))
            | "GroupForPacking" >> beam.GroupByKey()
            | "Pack" >> beam.ParDo(_PackGroupFn(self.cfg.buckets))
        )
