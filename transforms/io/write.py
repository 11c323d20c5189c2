"""Writing outputs: kept documents and rejected records as sharded, compressed Parquet.

The pyarrow schemas come from :mod:`corpusforge.schemas.arrow`, never written here. With fixed
sharding the shard count comes from the input size (``output.shard_target_mb``), so shards have a
bounded size at the cost of one shuffle of every row; with runner sharding (``num_shards=0``, the local
runner's default, where every shuffle passes through one process) each bundle writes its own file.
Beam writes to temporary files and renames them when the run succeeds.

Rejected records come from every stage. Flattening them into one write makes the local runner hold
every rejected record (most of a crawl, with its text) in the driver's memory until the last stage
has run: a multi-input Flatten is executed by the runner, not fused. With runner sharding
:class:`WriteRejectedParts` therefore writes each stage's rejected records where that stage runs
(``rejected/part-<stage>-*.parquet``), all parts finalized by one step
(:mod:`.part_files`: one Beam sink per stage was four fused stages each), and flattens only for
fixed sharding, which shuffles anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquetBatched
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from corpusforge.schemas import arrow
from corpusforge.schemas.records import document_row, rejected_row
from corpusforge.transforms.io.part_files import PartTarget, WriteParquetParts

# Parquet with zstd compresses web text about as well as gzip does; input bytes are a fair estimate.
MIN_SHARDS = 1
MAX_SHARDS = 10_000


def shard_count(input_bytes: int, target_mb: int) -> int:
    return max(MIN_SHARDS, min(MAX_SHARDS, math.ceil(input_bytes / (target_mb << 20))))


# Rows per Arrow record batch, and Arrow bytes per table handed to the sink (one or more row groups):
# the values Beam's WriteToParquet was given here before, so the files are laid out as they were.
BATCH_ROWS = 500
TABLE_BYTES = 64 << 20


class RowsToTables(beam.DoFn):
    """Dict rows -> pyarrow Tables of about ``table_bytes`` (record batches of ``batch_rows``).

    What Beam's ``WriteToParquet`` does before its sink, built column by column: Beam appends each
    value of each row to its column in Python, calling ``schema.field(i)`` per value, which made the
    conversion ~8 % of a pass-through run; a list comprehension per column and batch is a fraction
    of that. A nullable field missing from a row is null; a required one missing raises, as in Beam.
    Bounded input only (every corpusforge pipeline is a batch job).
    """

    def __init__(
        self, schema: pa.Schema, batch_rows: int = BATCH_ROWS, table_bytes: int = TABLE_BYTES
    ) -> None:
        self.schema = schema
        self.batch_rows = batch_rows
        self.table_bytes = table_bytes

    def start_bundle(self) -> None:
        self._rows: list[dict] = []
        self._batches: list[pa.RecordBatch] = []
        self._bytes = 0

    def process(self, row: dict) -> Iterator[pa.Table]:
        self._rows.append(row)
        if len(self._rows) >= self.batch_rows:
            self._flush_rows()
            if self._bytes >= self.table_bytes:
                yield self._table()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._rows:
            self._flush_rows()
        if self._batches:
            yield GlobalWindows.windowed_value_at_end_of_window(self._table())

    def _flush_rows(self) -> None:
        rows, self._rows = self._rows, []
        columns = []
        for field in self.schema:
            name = field.name
            values = [r.get(name) for r in rows] if field.nullable else [r[name] for r in rows]
            columns.append(pa.array(values, type=field.type))
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        self._batches.append(batch)
        self._bytes += batch.nbytes

    def _table(self) -> pa.Table:
        table = pa.Table.from_batches(self._batches, schema=self.schema)
        self._batches, self._bytes = [], 0
        return table


class WriteParquet(beam.PTransform):
    """Dict rows in, ``<folder>/<prefix>-SSSSS-of-NNNNN.parquet`` out.

    ``skip_if_empty``: no rows, no file (by default an empty input still writes one empty shard).
    """

    def __init__(
        self,
        folder: str,
        schema: pa.Schema,
        num_shards: int,
        codec: str = "zstd",
        prefix: str = "part",
        skip_if_empty: bool = False,
    ) -> None:
        super().__init__()
        self.folder = folder.rstrip("/")
        self.schema = schema
        self.num_shards = num_shards
        self.codec = codec
        self.prefix = prefix
        self.skip_if_empty = skip_if_empty

    def expand(self, rows: beam.PCollection) -> beam.pvalue.PDone:
        write = WriteToParquetBatched(
            f"{self.folder}/{self.prefix}",
            schema=self.schema,
            codec=self.codec,
            num_shards=self.num_shards,
            file_name_suffix=".parquet",
        )
        sink = getattr(write, "_sink", None)  # WriteToParquetBatched does not pass skip_if_empty on
        if self.skip_if_empty and sink is not None and hasattr(sink, "skip_if_empty"):
            sink.skip_if_empty = True
        return rows | "ToArrow" >> beam.ParDo(RowsToTables(self.schema)) | "Parquet" >> write


class WriteDocuments(beam.PTransform):
    """Kept documents -> ``documents/``. With ``tables_only`` the output is the Arrow tables, for a
    shared finalize to write (:func:`documents_target`; :class:`WriteRejectedParts` ``others``)."""

    def __init__(
        self, output_dir: str, num_shards: int, codec: str = "zstd", tables_only: bool = False
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.codec = codec
        self.tables_only = tables_only

    def expand(self, docs: beam.PCollection) -> beam.pvalue.PDone | beam.PCollection:
        rows = docs | "ToRow" >> beam.Map(document_row)
        if self.tables_only:
            return rows | "ToArrow" >> beam.ParDo(RowsToTables(arrow.document_schema()))
        return rows | "Write" >> WriteParquet(
            f"{self.output_dir}/documents", arrow.document_schema(), self.num_shards, self.codec
        )


def documents_target(output_dir: str) -> PartTarget:
    """``documents/part-SSSSS-of-NNNNN.parquet``; one empty file when nothing is kept, as Beam's sink."""
    return PartTarget(f"{output_dir.rstrip('/')}/documents", "part", arrow.document_schema(), required=True)


class WriteRejected(beam.PTransform):
    """Rejected records -> ``rejected/``; with ``part`` (a stage name), as ``part-<part>-*.parquet``
    files written only when the stage rejected something."""

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        include_text: bool = True,
        codec: str = "zstd",
        part: str | None = None,
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.include_text = include_text
        self.codec = codec
        self.part = part

    def expand(self, rejected: beam.PCollection) -> beam.pvalue.PDone:
        include_text = self.include_text
        return (
            rejected
            | "ToRow" >> beam.Map(lambda r: rejected_row(r, include_text))
            | "Write"
            >> WriteParquet(
                f"{self.output_dir}/rejected",
                arrow.rejected_schema(),
                self.num_shards,
                self.codec,
                prefix="part" if self.part is None else f"part-{self.part}",
                skip_if_empty=self.part is not None,
            )
        )


# Builds a transform for one part of the rejected records, or None: a factory, so each part gets
# its own instance.
PartStep = Callable[[], "beam.PTransform | None"]


def _none() -> None:
    return None


class WriteRejectedParts(beam.PTransform):
    """``{stage: rejected}`` (in stage order) -> ``rejected/``.

    ``observe()`` is applied to every record beside the write (counters only: its output is
    dropped); ``prepare()`` between the records and the write (scrubbing). With runner sharding
    (``num_shards=0``) each stage's records are written where the stage that rejected them runs
    (fused into it), so they never wait in the local runner's driver, as ``part-<stage>-*`` files
    that one step finalizes for every stage (:class:`~corpusforge.transforms.io.part_files.WriteParquetParts`,
    temporary files under ``temp_dir``, default ``<output_dir>/_rejected_temp``); the first part
    (validation, which always exists) is ``part-*`` and gets an empty shard when it has no rows, so
    ``rejected/`` always holds a readable file. ``others``: ``{name: (target, Arrow tables)}`` of
    other outputs finalized by the same step (the kept documents, the dedup index: each Beam sink
    was four fused stages more). With fixed sharding the parts are flattened into one write of
    ``num_shards`` files, as before.
    """

    def __init__(
        self,
        output_dir: str,
        num_shards: int,
        include_text: bool = True,
        codec: str = "zstd",
        observe: PartStep = _none,
        prepare: PartStep = _none,
        temp_dir: str | None = None,
        others: Mapping[str, tuple[PartTarget, beam.PCollection]] | None = None,
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.num_shards = num_shards
        self.include_text = include_text
        self.codec = codec
        self.observe = observe
        self.prepare = prepare
        self.temp_dir = temp_dir or f"{output_dir.rstrip('/')}/_rejected_temp"
        self.others = dict(others or {})

    def _prepared(self, label: str, rejected: beam.PCollection) -> beam.PCollection:
        observe, prepare = self.observe(), self.prepare()
        if observe is not None:
            _ = rejected | f"{label}Observe" >> observe
        if prepare is not None:
            rejected = rejected | f"{label}Prepare" >> prepare
        return rejected

    def expand(self, parts: Mapping[str, beam.PCollection]) -> beam.pvalue.PDone:
        if self.num_shards:
            if self.others:
                raise ValueError("other outputs share the finalize of runner-sharded parts only")
            everything = tuple(parts.values()) | "All" >> beam.Flatten()
            _ = self._prepared("", everything) | "Write" >> WriteRejected(
                self.output_dir, self.num_shards, self.include_text, self.codec
            )
            return beam.pvalue.PDone(everything.pipeline)
        include_text, schema = self.include_text, arrow.rejected_schema()
        tables = {
            stage: self._prepared(f"{stage}/", rejected)
            | f"{stage}/Write" >> beam.Map(lambda r: rejected_row(r, include_text))
            | f"{stage}/ToArrow" >> beam.ParDo(RowsToTables(schema))
            for stage, rejected in parts.items()
        }
        first = next(iter(parts))
        for name, (_, other) in self.others.items():
            tables[name] = other
        _ = tables | "Files" >> WriteParquetParts(
            f"{self.output_dir.rstrip('/')}/rejected",
            schema,
            self.temp_dir,
            {stage: "part" if stage == first else f"part-{stage}" for stage in parts},
            required=[first],
            codec=self.codec,
            others={name: target for name, (target, _) in self.others.items()},
        )
        return beam.pvalue.PDone(next(iter(parts.values())).pipeline)
