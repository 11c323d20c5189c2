"""The sequences sink: ``(bucket, row)`` pairs to ``<output>/sequences/bucket=N/part-*.parquet``.

:class:`WriteSequences` is one Beam ``WriteToFiles`` per bucket (three fused stages each); on the
local runner (runner sharding) :class:`SequenceFiles` writes the same per-bundle files where the
rows are made and leaves their naming to the outputs' shared finalize (``transforms/io/part_files.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.value_provider import StaticValueProvider
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from corpusforge.schemas import arrow
from corpusforge.schemas.records import sequence_row
from corpusforge.transforms.io.part_files import PartTarget


class ParquetRowSink(fileio.FileSink):
    """A ``fileio`` sink writing dict rows as one Parquet file (row groups of ~``row_group_tokens``).

    ``fileio.WriteToFiles`` only creates files that receive rows, unlike ``WriteToParquet`` with a
    fixed shard count: an empty Parquet file (no row group) breaks ``datasets.load_dataset``.
    """

    def __init__(self, schema: pa.Schema, codec: str = "zstd", row_group_tokens: int = 1 << 20) -> None:
        self.schema = schema
        self.codec = codec
        # Buffered rows are Python lists of ints (~36 bytes a token): bound the buffer by tokens,
        # not rows, or a writer per bucket holding 8192-token rows grows to hundreds of MB.
        self.row_group_tokens = row_group_tokens

    def create_metadata(self, destination: str, full_file_name: str) -> fileio.FileMetadata:
        return fileio.FileMetadata(
            mime_type="application/vnd.apache.parquet", compression_type=CompressionTypes.UNCOMPRESSED
        )

    def open(self, fh: Any) -> None:
        self._writer = pq.ParquetWriter(fh, self.schema, compression=self.codec)
        self._rows: list[dict[str, Any]] = []
        self._tokens = 0

    def write(self, record: dict[str, Any]) -> None:
        self._rows.append(record)
        self._tokens += record["length"]
        if self._tokens >= self.row_group_tokens:
            self._write_rows()

    def _write_rows(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows, self._tokens = [], 0

    def flush(self) -> None:
        # fileio calls flush right before closing the file: write the footer here
        self._write_rows()
        self._writer.close()


# Beam's temporary folders of WriteSequences, under the output; the CLI removes them after the run
# (WriteToFiles moves the files out but leaves the folders)
SEQUENCES_TEMP_PREFIX = "_run/tmp-sequences-"


class _SequenceBuckets(beam.PTransform):
    """What both ways of writing sequences/ share: the output folder, the bucket bounds, the rows'
    Arrow schema and the Parquet codec (``"none"`` -> uncompressed)."""

    def __init__(
        self, output_dir: str, bounds: Sequence[int], vocab_size: int, packed: bool, codec: str
    ) -> None:
        super().__init__()
        self.output_dir = output_dir.rstrip("/")
        self.bounds = list(bounds)
        self.schema = arrow.sequence_schema(vocab_size, packed)
        self.codec = None if codec == "none" else codec


class WriteSequences(_SequenceBuckets):
    """``(bucket, row)`` pairs to ``<output>/sequences/bucket=N/part-*.parquet`` (hive layout).

    One ``WriteToFiles`` per bucket, so a bucket without rows gets no folder and no empty file.
    """

    def __init__(
        self,
        output_dir: str,
        bounds: Sequence[int],
        vocab_size: int,
        packed: bool,
        num_shards: int,
        codec: str = "zstd",
    ) -> None:
        super().__init__(output_dir, bounds, vocab_size, packed, codec)
        self.num_shards = num_shards

    def expand(self, rows: beam.PCollection) -> beam.pvalue.PDone:
        index = {b: i for i, b in enumerate(self.bounds)}
        parts = rows | "ByBucket" >> beam.Partition(lambda kv, n: index[kv[0]], len(self.bounds))
        schema, codec = self.schema, self.codec
        for bucket, part in zip(self.bounds, parts, strict=True):
            _ = (
                part
                | f"ToRow{bucket}" >> beam.Map(lambda kv: sequence_row(kv[1]))
                | f"Write{bucket}"
                >> fileio.WriteToFiles(
                    f"{self.output_dir}/sequences/bucket={bucket}",
                    file_naming=fileio.default_file_naming("part", ".parquet"),
                    sink=lambda _dest: ParquetRowSink(schema, codec),
                    shards=self.num_shards,
                    # keep Beam's temporary folders out of the hive tree that loaders scan
                    # (a ValueProvider: WriteToFiles does not wrap a plain string itself)
                    temp_directory=StaticValueProvider(
                        str, f"{self.output_dir}/{SEQUENCES_TEMP_PREFIX}{bucket}"
                    ),
                )
            )
        return beam.pvalue.PDone(rows.pipeline)


def sequence_part(bucket: int) -> str:
    """The shared finalize's name for one bucket's files."""
    return f"sequences-{bucket}"


class _WriteBucketFiles(beam.DoFn):
    """``(bucket, row)`` -> one Parquet file per bucket per bundle under ``temp_dir``, written by
    :class:`ParquetRowSink` as ``WriteToFiles`` writes each bundle's file; emits ``(part, path)``
    at the bundle's end. One open writer per bucket that has rows in the bundle (Beam's sink
    keeps up to 20 per bundle before it shuffles the rest; a run has a few buckets)."""

    def __init__(self, temp_dir: str, schema: pa.Schema, codec: str | None) -> None:
        self.temp_dir = temp_dir
        self.schema = schema
        self.codec = codec

    def start_bundle(self) -> None:
        self._open: dict[int, tuple[str, Any, ParquetRowSink]] = {}

    def process(self, element: tuple[int, Any]) -> Iterator[Any]:
        bucket, row = element
        if bucket not in self._open:
            path = f"{self.temp_dir}/{sequence_part(bucket)}-{uuid.uuid4().hex}.parquet"
            handle = FileSystems.create(
                path,
                mime_type="application/vnd.apache.parquet",
                compression_type=CompressionTypes.UNCOMPRESSED,
            )
            sink = ParquetRowSink(self.schema, self.codec)
            sink.open(handle)
            self._open[bucket] = (path, handle, sink)
        self._open[bucket][2].write(sequence_row(row))
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for bucket in sorted(self._open):
            path, handle, sink = self._open[bucket]
            sink.flush()
            handle.close()
            yield GlobalWindows.windowed_value_at_end_of_window((sequence_part(bucket), path))
        self._open = {}


class SequenceFiles(_SequenceBuckets):
    """``(bucket, row)`` pairs -> the ``(part, path)`` of the files written, one collection for every
    bucket's part (:meth:`targets`), for the shared finalize
    (:class:`~corpusforge.transforms.io.part_files.WriteParquetParts`): the files
    :class:`WriteSequences` writes on the local runner (one per bucket per bundle, named
    ``sequences/bucket=N/part-SSSSS-of-NNNNN.parquet`` by their count), written in the stage
    that makes the rows, without a sink per bucket (five sinks were 15 fused stages). A bucket
    without rows gets no folder."""

    def __init__(
        self,
        output_dir: str,
        bounds: Sequence[int],
        vocab_size: int,
        packed: bool,
        temp_dir: str,
        codec: str = "zstd",
    ) -> None:
        super().__init__(output_dir, bounds, vocab_size, packed, codec)
        self.temp_dir = temp_dir.rstrip("/")

    def targets(self) -> dict[str, PartTarget]:
        return {
            sequence_part(b): PartTarget(
                f"{self.output_dir}/sequences/bucket={b}", "part", self.schema, written=True
            )
            for b in self.bounds
        }

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return rows | "WriteFiles" >> beam.ParDo(_WriteBucketFiles(self.temp_dir, self.schema, self.codec))
