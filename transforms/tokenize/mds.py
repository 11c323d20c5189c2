"""``tokenize.formats: [mds]``: MosaicML Streaming (MDS) shards, written by every worker in parallel.

``mosaicml-streaming``'s own ``MDSWriter`` is single-process; its documented way to scale is one
writer per partition folder and one merged ``index.json`` (``streaming.base.util.merge_index``).
Here each shard of :class:`~corpusforge.transforms.tokenize.order.GroupShards` is such a partition,
``sequences_mds/shard-NNNNN/``, written by the worker that holds it; the merged index at
``sequences_mds/index.json`` makes the folder one dataset for ``StreamingDataset(local=...)``.

Each sample carries its provenance as fields (``doc_ids``, ``doc_starts``, ``chunk_indices``,
as in the Parquet rows), so a sample leads back to ``documents/`` without a sidecar.

The package is an optional extra (``pip install 'corpusforge[mds]'``): it pulls PyTorch and pins
numpy below 2.2, so it is imported only by the workers of a run that asks for ``mds``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.tokenize.order import TrainRow
from corpusforge.transforms.tokenize.spill_sort import DEFAULT_BUFFER_BYTES, sorted_rows

FOLDER = "sequences_mds"


def columns(dtype: np.dtype) -> dict[str, str]:
    """The MDS column encodings: ids as a typed ndarray, provenance as JSON lists."""
    return {
        "input_ids": f"ndarray:{np.dtype(dtype).name}",
        "doc_ids": "json",
        "doc_starts": "json",
        "chunk_indices": "json",
    }


def sample(row: TrainRow) -> dict[str, Any]:
    return {
        "input_ids": row.ids,
        "doc_ids": list(row.doc_ids),
        "doc_starts": list(row.doc_starts),
        "chunk_indices": list(row.chunk_indices),
    }


def write_partition(
    out: str, rows: Iterable[TrainRow], dtype: np.dtype, size_limit: int = 1 << 26
) -> tuple[int, int]:
    """Write ``rows`` in order as one MDS partition at ``out``; ``(samples, tokens)`` written."""
    from streaming import MDSWriter  # optional dependency: see the module docstring

    n = tokens = 0
    with MDSWriter(out=out, columns=columns(dtype), compression=None, size_limit=size_limit) as writer:
        for row in rows:
            writer.write(sample(row))
            n += 1
            tokens += row.length
    return n, tokens


def merge_partitions(folder: str, partitions: Iterable[str]) -> None:
    """The merged ``index.json`` of ``folder`` from its partitions' (``partitions`` sorted first,
    so the dataset's sample order is the shards' order)."""
    from streaming.base.util import merge_index

    merge_index([f"{folder}/{p}/index.json" for p in sorted(partitions)], folder, keep_local=True)


# the entries of an MDS shard description that name a file (relative to the dataset's root)
_FILE_KEYS = ("raw_data", "zip_data", "raw_meta", "zip_meta")


def parts_index(parts: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The ``index.json`` of an incremental run's ``sequences_mds/``: every part's merged index
    (``(part folder name, its index.json)``, in part order) as one, each shard's files named from
    the top folder, so ``StreamingDataset(local=sequences_mds)`` reads every part.

    Done here on the JSON rather than by ``merge_index``, which prefixes a partition's shards with
    one folder level only (``shard-00000/``) and would lose ``part=NNNNN/``.
    """
    shards = []
    for name, doc in parts:
        for shard in doc["shards"]:
            shard = dict(shard)
            for key in _FILE_KEYS:
                if shard.get(key):
                    shard[key] = dict(shard[key], basename=f"{name}/{shard[key]['basename']}")
            shards.append(shard)
    return {"version": 2, "shards": shards}


class _WritePartitionFn(beam.DoFn):
    """One shard's rows, streamed in training order (bounded memory), as one MDS partition."""

    def __init__(self, folder: str, dtype: np.dtype, sort_buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.folder, self.dtype, self.sort_buffer_bytes = folder, np.dtype(dtype), sort_buffer_bytes

    def setup(self) -> None:
        self.counters = StageCounters("mds")

    def process(self, element: tuple[int, Iterable[TrainRow]]) -> Iterable[str]:
        shard, rows = element
        name = f"shard-{shard:05d}"
        ordered = sorted_rows(rows, self.sort_buffer_bytes)
        n, tokens = write_partition(f"{self.folder}/{name}", ordered, self.dtype)
        self.counters.inc("shards")
        self.counters.inc("rows", n)
        self.counters.inc("tokens", tokens)
        yield name


class WriteMds(beam.PTransform):
    """Shards from :class:`GroupShards` to ``<output>/sequences_mds/shard-NNNNN/`` and one merged
    ``index.json`` (written once every partition is done)."""

    def __init__(
        self, output_dir: str, dtype: np.dtype, sort_buffer_bytes: int = DEFAULT_BUFFER_BYTES
    ) -> None:
        super().__init__()
        self.folder = f"{output_dir.rstrip('/')}/{FOLDER}"
        self.dtype, self.sort_buffer_bytes = np.dtype(dtype), sort_buffer_bytes

    def expand(self, shards: beam.PCollection) -> beam.pvalue.PDone:
        folder = self.folder
        _ = (
            shards
            | "WritePartition" >> beam.ParDo(_WritePartitionFn(folder, self.dtype, self.sort_buffer_bytes))
            | "Partitions" >> beam.combiners.ToList()
            | "MergeIndex" >> beam.Map(lambda names: merge_partitions(folder, names) if names else None)
        )
        return beam.pvalue.PDone(shards.pipeline)
