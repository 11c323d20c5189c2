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


def sidecar_table(rows: Sequence[TrainRow]) -> pa.Table:
    """The provenance table of one shard's samples (``rows`` in sample order)."""
    return pa.table(
        {
            "sample": list(range(len(rows))),
            "length": [r.length for r in rows],
            "doc_ids": [list(r.doc_ids) for r in rows],
            "doc_starts": [list(r.doc_starts) for r in rows],
            "chunk_indices": [list(r.chunk_indices) for r in rows],
        },
        schema=SIDECAR_SCHEMA,
    )
