"""Several sets of Parquet files written where their rows are made, and finalized in one step.

Why: Beam's file sinks (``WriteToParquet``) each add four fused stages to the graph (an
``Impulse`` that initializes the write, a ``GroupByKey`` of the files each bundle wrote, a
pre-finalize and a finalize), and the local runner runs every fused stage one after the other, each
costing a round trip to the workers. The rejected records come from thirteen stages: thirteen sinks,
52 stages, 20-50 ms each, most of them after the last document stage, on the run's critical path.

:class:`WriteParquetParts` keeps what made the per-stage sinks worth having (each part's rows are
written by the bundle that made them, fused into its stage, so the local runner's driver never holds
them) and shares the rest: every bundle writes its rows to one temporary file and passes on only
the file's name; one finalize step, fed by a Flatten of those names (a few bytes per bundle), renames
each part's files to ``<folder>/<prefix>-SSSSS-of-NNNNN.parquet``, the names Beam's sinks give
(``-SSSSS-of-NNNNN`` is Beam's default shard template). A part with no rows gets no file, unless it
is ``required``: then one empty file, so that the folder always holds a readable file.

Parts need not share a folder or a schema (:class:`PartTarget`): on the local runner the kept
documents (``documents/``) and the dedup index (``dedup_index/``) are parts of the same step as the
rejected records, so their Beam sinks' eight fused stages are not run either. Nothing is renamed
before every part's bundles are written, and ``_SUCCESS`` comes after the finalize, so a partial
output is never mistaken for a finished one, as with Beam's sinks.

The input is Arrow tables (``write.RowsToTables`` makes them from rows, as for
:class:`~corpusforge.transforms.io.write.WriteParquet`), written with the writer options of Beam's
Parquet sink, so the files are laid out as that sink lays them out. Which bundle's file gets which shard number is not fixed, as with Beam's sinks
(the rows are the same whatever the order). Any Beam filesystem works: files are created and
renamed through ``FileSystems``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

MIME_TYPE = "application/x-parquet"  # what Beam's Parquet sink creates its files with


def shard_name(folder: str, prefix: str, shard: int, shards: int, suffix: str = ".parquet") -> str:
    """``<folder>/<prefix>-SSSSS-of-NNNNN.parquet``: the name Beam's file sinks give shard ``shard``."""
    return f"{folder}/{prefix}-{shard:05d}-of-{shards:05d}{suffix}"


@dataclass(frozen=True)
class PartTarget:
    """Where one part's files go: ``<folder>/<prefix>-SSSSS-of-NNNNN.parquet``, of ``schema``;
    ``required``: one empty file when the part has no rows."""

    folder: str
    prefix: str
    schema: pa.Schema | None  # None for a text part (``suffix``)
    required: bool = False
    # The part's files are written elsewhere (one per bundle, by a writer of its own) and come as
    # ``(part, path)``, not as Arrow tables: only their names are finalized here.
    written: bool = False
    suffix: str = ".parquet"  # another (``.jsonl``: :class:`WriteLines`) for files written elsewhere


def _open_writer(path: str, schema: pa.Schema, codec: str) -> tuple[object, pq.ParquetWriter]:
    """A file handle at ``path`` (any Beam filesystem) and a Parquet writer on it, with the writer
    options Beam's Parquet sink uses."""
    handle = FileSystems.create(path, mime_type=MIME_TYPE)
    writer = pq.ParquetWriter(
        handle,
        schema,
        compression=codec,
        use_deprecated_int96_timestamps=False,
        use_compliant_nested_type=False,
    )
    return handle, writer


def write_table_file(path: str, schema: pa.Schema, codec: str, tables: Iterable[pa.Table]) -> None:
    """``tables`` into one Parquet file at ``path``, each table its own row group(s)."""
    handle, writer = _open_writer(path, schema, codec)
    for table in tables:
        writer.write_table(table)
    writer.close()
    handle.close()


class _WriteBundleFile(beam.DoFn):
    """Arrow tables of one part -> one temporary file per bundle (opened at the bundle's first table,
    each table written as it comes); emits ``(part, temporary path)``."""

    def __init__(self, temp_dir: str, part: str, schema: pa.Schema, codec: str) -> None:
        self.temp_dir = temp_dir
        self.part = part
        self.schema = schema
        self.codec = codec

    def start_bundle(self) -> None:
        self._path: str | None = None
        self._open: tuple[object, pq.ParquetWriter] | None = None

    def process(self, table: pa.Table) -> Iterator[tuple[str, str]]:
        if self._open is None:
            self._path = f"{self.temp_dir}/{self.part}-{uuid.uuid4().hex}.parquet"
            self._open = _open_writer(self._path, self.schema, self.codec)
        self._open[1].write_table(table)
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._open is None:
            return
        handle, writer = self._open
        writer.close()
        handle.close()  # type: ignore[attr-defined]
        self._open = None
        yield GlobalWindows.windowed_value_at_end_of_window((self.part, self._path))


class WriteLines(beam.DoFn):
    """Text lines of one part -> one temporary UTF-8 file per bundle, a line each (as Beam's
    ``WriteToText`` writes them); emits ``(part, temporary path)`` at the bundle's end, for a
    ``written`` :class:`PartTarget` with its suffix."""

    def __init__(self, temp_dir: str, part: str, suffix: str) -> None:
        self.temp_dir = temp_dir.rstrip("/")
        self.part = part
        self.suffix = suffix

    def start_bundle(self) -> None:
        self._path: str | None = None
        self._file: object | None = None

    def process(self, line: str) -> Iterator[tuple[str, str]]:
        if self._file is None:
            self._path = f"{self.temp_dir}/{self.part}-{uuid.uuid4().hex}{self.suffix}"
            self._file = FileSystems.create(self._path, mime_type="text/plain")
        self._file.write(line.encode("utf-8") + b"\n")  # type: ignore[attr-defined]
        return iter(())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self._file is None:
            return
        self._file.close()  # type: ignore[attr-defined]
        self._file = None
        yield GlobalWindows.windowed_value_at_end_of_window((self.part, self._path))


class _FinalizeParts(beam.DoFn):
    """Once, after every part was written: each part's temporary files renamed to their shard names;
    an empty file for a required part that has none."""

    def __init__(self, targets: Mapping[str, PartTarget], codec: str) -> None:
        self.targets = dict(targets)
        self.codec = codec

    def process(self, _: bytes, written: list[tuple[str, str]]) -> Iterator[str]:
        by_part: dict[str, list[str]] = {part: [] for part in self.targets}
        for part, path in written:
            by_part[part].append(path)
        sources: list[str] = []
        targets: list[str] = []
        folders: list[str] = []
        for part, paths in by_part.items():
            target = self.targets[part]
            if not paths:
                if target.required:
                    path = shard_name(target.folder, target.prefix, 0, 1)
                    if not FileSystems.exists(target.folder):
                        FileSystems.mkdirs(target.folder)
                    write_table_file(path, target.schema, self.codec, [])  # no row group, as Beam
                    yield path
                continue
            if target.folder not in folders:
                folders.append(target.folder)
            for shard, path in enumerate(sorted(paths)):
                sources.append(path)
                targets.append(shard_name(target.folder, target.prefix, shard, len(paths), target.suffix))
        if sources:
            for folder in folders:
                if not FileSystems.exists(folder):  # local folders must exist (object stores: a no-op)
                    FileSystems.mkdirs(folder)
            FileSystems.rename(sources, targets)
        yield from targets


class WriteParquetParts(beam.PTransform):
    """``{part: Arrow tables}`` -> ``<folder>/<prefix of part>-SSSSS-of-NNNNN.parquet`` for each part.

    ``temp_dir``: where bundles write before the finalize renames their files (a folder the run
    removes at its end; it must not be under ``folder``). ``prefixes``: each part's file prefix.
    ``required``: the parts that get one empty file when they have no rows. ``others``: parts with
    a folder and schema of their own (:class:`PartTarget`), finalized by the same step; one with
    ``written`` is given as the ``(part, path)`` of its files, written already (parts may share
    one such collection). The output
    is the final paths (one element per file), for tests and tools.
    """

    def __init__(
        self,
        folder: str,
        schema: pa.Schema,
        temp_dir: str,
        prefixes: Mapping[str, str],
        required: Iterable[str] = (),
        codec: str = "zstd",
        others: Mapping[str, PartTarget] | None = None,
    ) -> None:
        super().__init__()
        folder = folder.rstrip("/")
        self.temp_dir = temp_dir.rstrip("/")
        required = frozenset(required)
        self.targets = {
            part: PartTarget(folder, prefix, schema, part in required) for part, prefix in prefixes.items()
        }
        for part, target in (others or {}).items():
            if part in self.targets:
                raise ValueError(f"part {part!r} is named twice")
            self.targets[part] = replace(target, folder=target.folder.rstrip("/"))
        self.codec = codec
        for part, target in self.targets.items():
            if target.suffix != ".parquet" and (target.required or not target.written):
                raise ValueError(f"part {part!r}: only Parquet parts are written or made required here")
            # Parquet folders are read whole (datasets, hive layouts); a text part by its prefix only
            if target.suffix == ".parquet" and f"{self.temp_dir}/".startswith(f"{target.folder}/"):
                raise ValueError(f"temp_dir {temp_dir} must not be inside {target.folder}: readers glob it")

    def expand(self, parts: Mapping[str, beam.PCollection]) -> beam.PCollection:
        if set(parts) != set(self.targets):
            raise ValueError(f"parts {sorted(parts)} do not match the prefixes {sorted(self.targets)}")
        written: list[beam.PCollection] = []
        for part, tables in parts.items():
            if not self.targets[part].written:
                schema = self.targets[part].schema
                written.append(
                    tables
                    | f"{part}/WriteFiles"
                    >> beam.ParDo(_WriteBundleFile(self.temp_dir, part, schema, self.codec))
                )
            elif not any(
                tables is w for w in written
            ):  # names of files written already, maybe shared by parts
                written.append(tables)
        names = tuple(written) | "Written" >> beam.Flatten()
        pipeline = next(iter(parts.values())).pipeline
        return (
            pipeline
            | "Once" >> beam.Impulse()
            | "Finalize" >> beam.ParDo(_FinalizeParts(self.targets, self.codec), beam.pvalue.AsList(names))
        )
