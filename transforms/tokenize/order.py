"""Which shard a training row lands in, and where in it: the deterministic global shuffle.

Trainers read shards in order (Megatron's blended index, MDS's sample ids); if a shard held one
source or one stretch of the input, a training step would too. Every row therefore gets a sort key,
a stable hash of ``tokenize.shuffle_seed`` and the row's identity (its first document id and that
piece's chunk index, unique per row); the key picks the shard (``key mod shards``) and orders the
rows inside it. The key depends on nothing but the row, so the same rows come out in the same order
on any runner and any worker count, and a new seed gives a new order of the same rows.

Without a seed (``null``) the key is the same hash unseeded: still spread and reproducible, just not
re-drawable. The pure logic lives here (:func:`row_key`, :class:`TrainRow`, :func:`sort_key`);
:class:`GroupShards` is the Beam step that gathers each shard's rows for the format writers, which
put them in order with :func:`~corpusforge.transforms.tokenize.spill_sort.sorted_rows` (bounded
memory: a shard never has to fit in a worker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from corpusforge.schemas.records import PackedRow, SequenceRow


@dataclass(frozen=True)
class TrainRow:
    """A row on its way to a trainer format: ids as a compact array (2-4 bytes a token instead of
    a Python int's ~36, which matters while a shard's rows wait to be sorted), and its provenance.

    ``doc_ids[i]`` starts at token ``doc_starts[i]``; ``chunk_indices[i]`` is that piece's place in
    its document. A row of ``tokenize.pack: false`` has one piece.
    """

    key: bytes
    bucket: int
    ids: np.ndarray
    doc_ids: tuple[str, ...]
    doc_starts: tuple[int, ...]
    chunk_indices: tuple[int, ...]

    @property
    def length(self) -> int:
        return int(self.ids.shape[0])


def row_key(seed: int | None, doc_id: str, chunk_index: int) -> bytes:
    """A stable 16-byte sort key (never Python's salted ``hash()``); ``seed`` None: unseeded."""
    h = hashlib.blake2b(digest_size=16, person=b"cf-shuffle")
    if seed is not None:
        h.update(seed.to_bytes(8, "big", signed=False))
    h.update(chunk_index.to_bytes(4, "big", signed=False))
    h.update(doc_id.encode("utf-8"))
    return h.digest()


def shard_of(key: bytes, shards: int) -> int:
    return int.from_bytes(key[:8], "big") % shards


def train_row(seed: int | None, bucket: int, row: SequenceRow | PackedRow, dtype: np.dtype) -> TrainRow:
    """The :class:`TrainRow` of one ``sequences/`` row (either layout), ids cast to ``dtype``.

    The cast is exact: the dtype was checked against the vocabulary size at start-up.
    """
    if isinstance(row, PackedRow):
        doc_ids, starts, chunks = tuple(row.doc_ids), tuple(row.doc_starts), tuple(row.chunk_indices)
    else:
        doc_ids, starts, chunks = (row.doc_id,), (0,), (row.chunk_index,)
    ids = np.asarray(row.input_ids, dtype=dtype)
    return TrainRow(row_key(seed, doc_ids[0], chunks[0]), bucket, ids, doc_ids, starts, chunks)


def sort_key(row: TrainRow) -> tuple[bytes, str, int]:
    """The training order: the key, then the row's identity (explicit tie-breaking, a total order)."""
    return row.key, row.doc_ids[0], row.chunk_indices[0]


def sort_rows(rows: Iterable[TrainRow]) -> list[TrainRow]:
    """A shard's rows in their training order, in memory (small inputs and tests)."""
    return sorted(rows, key=sort_key)


class GroupShards(beam.PTransform):
    """``(bucket, row)`` pairs in; ``(shard, iterable of its TrainRows)`` out, in no order: each
    writer streams them through :func:`~corpusforge.transforms.tokenize.spill_sort.sorted_rows`
    (a sorted list here would have to hold the whole shard, and be encoded whole between stages).

    ``per_bucket`` keeps buckets apart (the Parquet hive layout: the shard key is then
    ``(bucket, shard)``); the trainer formats mix all lengths in one shard sequence.
    """

    def __init__(self, seed: int | None, shards: int, dtype: np.dtype, per_bucket: bool = False) -> None:
        super().__init__()
        self.seed, self.shards, self.dtype, self.per_bucket = (
            seed,
            max(1, shards),
            np.dtype(dtype),
            per_bucket,
        )

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        seed, shards, dtype, per_bucket = self.seed, self.shards, self.dtype, self.per_bucket

        def keyed(kv: tuple[int, SequenceRow | PackedRow]) -> tuple[object, TrainRow]:
            r = train_row(seed, kv[0], kv[1], dtype)
            shard = shard_of(r.key, shards)
            return ((r.bucket, shard) if per_bucket else shard), r

        return rows | "Key" >> beam.Map(keyed) | "GroupShard" >> beam.GroupByKey()
