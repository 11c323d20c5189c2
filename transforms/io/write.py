"""Writing outputs: kept documents and rejected records as sharded, compressed Parquet.

The pyarrow schemas come from :mod:`corpusforge.schemas.arrow`, never written here. With fixed
sharding the shard count comes from the input size (``output.shard_target_mb``), so shards have a
bounded size at the cost of one shuffle of every row; with runner sharding (``num_shards=0``, the local
runner's default, where every shuffle passes through one process) each bundle writes its own file.
Beam writes to temporary files and renames them when the run succeeds.
"""

from __future__ import annotations

import math

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquet

from corpusforge.schemas import arrow
from corpusforge.schemas.records import document_row, rejected_row

# Parquet with zstd compresses web text about as well as gzip does; input bytes are a fair estimate.
MIN_SHARDS = 1
MAX_SHARDS = 10_000


def shard_count(input_bytes: int, target_mb: int) -> int:
    return max(MIN_SHARDS, min(MAX_SHARDS, math.ceil(input_bytes / (target_mb << 20))))


class WriteParquet(beam.PTransform):
    """Dict rows in, ``<folder>/part-SSSSS-of-NNNNN.parquet`` out."""

    def __init__(self, folder: str, schema: pa.Schema, num_shards: int, codec: str = "zstd") -> None:
        super().__init__()
        self.folder = folder.rstrip("/")
        self.schema = schema
        self.num_shards = num_shards
        self.codec = codec

    def expand(self, rows: beam.PCollection) -> beam.pvalue.PDone:
        return rows | "Parquet" >> WriteToParquet(
            f"{self.folder}/part",
            schema=self.schema,
            codec=self.codec,
            num_shards=self.num_shards,
            file_name_suffix=".parquet",
            record_batch_size=500,
            row_group_buffer_size=64 << 20,
        )


class WriteDocuments(beam.PTransform):
    def __init__(self, output_dir: str, num_shards: int, codec: str = "zstd") -> None:
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.codec = codec

    def expand(self, docs: beam.PCollection) -> beam.pvalue.PDone:
        return (
            docs
            | "ToRow" >> beam.Map(document_row)
            | "Write"
            >> WriteParquet(
                f"{self.output_dir}/documents", arrow.document_schema(), self.num_shards, self.codec
            )
        )


class WriteRejected(beam.PTransform):
    def __init__(
        self, output_dir: str, num_shards: int, include_text: bool = True, codec: str = "zstd"
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.include_text = include_text
        self.codec = codec

    def expand(self, rejected: beam.PCollection) -> beam.pvalue.PDone:
        include_text = self.include_text
        return (
            rejected
            | "ToRow" >> beam.Map(lambda r: rejected_row(r, include_text))
            | "Write"
            >> WriteParquet(
                f"{self.output_dir}/rejected", arrow.rejected_schema(), self.num_shards, self.codec
            )
        )
