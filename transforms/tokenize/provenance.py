"""Provenance of trainer-format samples: which documents (and which piece of each) a sample holds.

Megatron's ``.bin``/``.idx`` and MDS shards carry only token ids; a loss spike at training step N
leads to a sample index and no further. Each shard therefore gets the doc ids of its samples in
order (a Parquet sidecar for Megatron, fields of each sample for MDS). With ``documents/``, which
holds ``input_path`` and ``input_offset``, a sample index leads to its place in the raw crawl.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from corpusforge.transforms.tokenize.order import TrainRow

SIDECAR_SUFFIX = ".docs.parquet"

# One row per sample, in sample order; doc_ids[i] starts at token doc_starts[i] of the sample.
SIDECAR_SCHEMA = pa.schema(
    [
        pa.field("sample", pa.int64(), nullable=False),
        pa.field("length", pa.int32(), nullable=False),
        pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
        pa.field("doc_starts", pa.list_(pa.int32()), nullable=False),
        pa.field("chunk_indices", pa.list_(pa.int32()), nullable=False),
    ]
)


class Provenance:
    """The sidecar's columns, gathered row by row while the ids stream to disk (a few bytes a row:
    the ids themselves are never held)."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.doc_ids: list[list[str]] = []
        self.doc_starts: list[list[int]] = []
        self.chunk_indices: list[list[int]] = []

    def add(self, row: TrainRow) -> None:
        self.lengths.append(row.length)
        self.doc_ids.append(list(row.doc_ids))
        self.doc_starts.append(list(row.doc_starts))
        self.chunk_indices.append(list(row.chunk_indices))

    def table(self) -> pa.Table:
        return pa.table(
            {
                "sample": list(range(len(self.lengths))),
                "length": self.lengths,
                "doc_ids": self.doc_ids,
                "doc_starts": self.doc_starts,
                "chunk_indices": self.chunk_indices,
            },
            schema=SIDECAR_SCHEMA,
        )


def sidecar_table(rows: Sequence[TrainRow]) -> pa.Table:
    """The provenance table of one shard's samples (``rows`` in sample order)."""
    prov = Provenance()
    for r in rows:
        prov.add(r)
    return prov.table()
