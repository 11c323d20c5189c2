"""The training outputs beyond today's Parquet: which writers ``tokenize.formats`` and
``tokenize.shuffle_seed`` add to the graph, fed from one grouping of the rows.

- ``parquet`` without a seed: :class:`~corpusforge.transforms.tokenize.stage.WriteSequences`, as
  before (the build step applies it; nothing here).
- ``parquet`` with a seed: the same hive layout, but each file holds the rows of one shard of the
  global shuffle (:mod:`order`), in shuffled order, so a reader streaming files sees no source runs.
- ``megatron`` and ``mds``: one :class:`~corpusforge.transforms.tokenize.order.GroupShards` feeds
  both, so they hold the same rows in the same order in same-numbered shards.

Every writer holds exactly the rows (and so the tokens) of ``sequences/``; each counts its rows and
tokens, and :func:`format_summary` checks them against the ``bucket`` stage's counts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.schemas import arrow
from corpusforge.schemas.config import ConfigError, TokenizeConfig
from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.io.staged import StagedFiles
from corpusforge.transforms.tokenize.megatron import WriteMegatron, token_dtype
from corpusforge.transforms.tokenize.order import GroupShards, TrainRow
from corpusforge.transforms.tokenize.spill_sort import DEFAULT_BUFFER_BYTES, sorted_rows

TRAINER_FORMATS = ("megatron", "mds")


def parquet_rows(rows: Iterable[TrainRow], packed: bool) -> list[dict[str, Any]]:
    """``sequences/`` rows (either layout) back from :class:`TrainRow`."""
    out = []
    for r in rows:
        ids = r.ids.tolist()
        if packed:
            out.append(
                {
                    "input_ids": ids,
                    "length": r.length,
                    "doc_ids": list(r.doc_ids),
                    "doc_starts": list(r.doc_starts),
                    "chunk_indices": list(r.chunk_indices),
                }
            )
        else:
            out.append(
                {
                    "input_ids": ids,
                    "length": r.length,
                    "doc_id": r.doc_ids[0],
                    "chunk_index": r.chunk_indices[0],
                }
            )
    return out


class _WriteShuffledParquetFn(beam.DoFn):
    """One ``(bucket, shard)`` group to ``sequences/bucket=B/part-SSSSS.parquet``, rows in order.

    Rows stream in training order (bounded memory) into row groups of ~``row_group_tokens``; the
    file is staged and renamed into place once its footer is written.
    """

    def __init__(
        self,
        output_dir: str,
        schema: pa.Schema,
        packed: bool,
        codec: str | None,
        sort_buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        row_group_tokens: int = 1 << 20,
    ) -> None:
        self.output_dir, self.schema, self.packed, self.codec = output_dir, schema, packed, codec
        self.sort_buffer_bytes, self.row_group_tokens = sort_buffer_bytes, row_group_tokens

    def setup(self) -> None:
        self.counters = StageCounters("parquet")

    def process(self, element: tuple[tuple[int, int], Iterable[TrainRow]]) -> None:
        (bucket, shard), rows = element
        path = f"{self.output_dir}/sequences/bucket={bucket}/part-{shard:05d}.parquet"
        n = tokens = 0
        with StagedFiles() as staged, staged.create(path) as f:
            writer = pq.ParquetWriter(f, self.schema, compression=self.codec or "none")
            group: list[TrainRow] = []
            held = 0
            for r in sorted_rows(rows, self.sort_buffer_bytes):
                group.append(r)
                held += r.length
                n, tokens = n + 1, tokens + r.length
                if held >= self.row_group_tokens:
                    writer.write_table(self._table(group))
                    group, held = [], 0
            if group:
                writer.write_table(self._table(group))
            writer.close()
        self.counters.inc("rows", n)
        self.counters.inc("tokens", tokens)

    def _table(self, rows: list[TrainRow]) -> pa.Table:
        return pa.Table.from_pylist(parquet_rows(rows, self.packed), schema=self.schema)


class WriteTrainerFormats(beam.PTransform):
    """``(bucket, row)`` pairs to the outputs ``tokenize.formats`` names, except unshuffled Parquet.

    The token dtype is checked here, on the driver, so that a vocabulary too large for
    ``tokenize.token_dtype`` fails at start-up naming the key instead of wrapping ids on a worker.
    """

    def __init__(
        self, cfg: TokenizeConfig, output_dir: str, vocab_size: int, shards: int, codec: str | None = "zstd"
    ) -> None:
        super().__init__()
        self.cfg, self.output_dir, self.vocab_size = cfg, output_dir.rstrip("/"), vocab_size
        self.shards, self.codec = max(1, shards), (None if codec == "none" else codec)
        self.sort_bytes = cfg.sort_buffer_mb << 20
        try:
            self.dtype = token_dtype(vocab_size, cfg.token_dtype)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if "mds" in cfg.formats and importlib.util.find_spec("streaming") is None:
            raise ConfigError(
                "tokenize.formats: mds needs mosaicml-streaming (pip install 'corpusforge[mds]')"
            )

    @staticmethod
    def needed(cfg: TokenizeConfig) -> bool:
        """Whether this transform writes anything for ``cfg`` (else the graph stays as it was)."""
        return any(f in TRAINER_FORMATS for f in cfg.formats) or (
            "parquet" in cfg.formats and cfg.shuffle_seed is not None
        )

    def expand(self, rows: beam.PCollection) -> beam.pvalue.PDone:
        cfg = self.cfg
        if "parquet" in cfg.formats and cfg.shuffle_seed is not None:
            schema = arrow.sequence_schema(self.vocab_size, cfg.pack)
            pq_dtype = np.dtype(schema.field("input_ids").type.value_type.to_pandas_dtype())
            _ = (
                rows
                | "ParquetShards" >> GroupShards(cfg.shuffle_seed, self.shards, pq_dtype, per_bucket=True)
                | "WriteShuffledParquet"
                >> beam.ParDo(
                    _WriteShuffledParquetFn(self.output_dir, schema, cfg.pack, self.codec, self.sort_bytes)
                )
            )
        trainer = [f for f in cfg.formats if f in TRAINER_FORMATS]
        if trainer:
            shards = rows | "TrainerShards" >> GroupShards(cfg.shuffle_seed, self.shards, self.dtype)
            if "megatron" in trainer:
                _ = shards | "WriteMegatron" >> WriteMegatron(
                    self.output_dir, self.vocab_size, self.dtype, self.sort_bytes
                )
            if "mds" in trainer:
                from corpusforge.transforms.tokenize.mds import WriteMds

                _ = shards | "WriteMds" >> WriteMds(self.output_dir, self.dtype, self.sort_bytes)
        return beam.pvalue.PDone(rows.pipeline)


def format_summary(counters: dict[str, dict[str, int]], formats: Iterable[str]) -> dict[str, Any] | None:
    """The ``formats`` section of stats.json: rows and tokens per trainer format, and whether each
    holds exactly the tokens of ``sequences/`` (the ``bucket`` stage's per-bucket counts)."""
    bucket = counters.get("bucket") or {}
    expected = sum(v for k, v in bucket.items() if k.startswith("tokens:bucket="))
    out = {}
    for name in formats:
        if name not in TRAINER_FORMATS:
            continue
        c = counters.get(name, {})
        out[name] = {
            "shards": c.get("shards", 0),
            "rows": c.get("rows", 0),
            "tokens": c.get("tokens", 0),
            "tokens_conserved": c.get("tokens", 0) == expected,
        }
    return out or None
