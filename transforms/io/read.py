"""Reading documents: JSONL (plain, gzip, zstd) and Parquet from any Beam filesystem.

Files are matched on the driver (metadata only: paths and sizes), then planned into read tasks
inside the pipeline: byte ranges of ``input.split_mb`` for uncompressed JSONL, one task per row
group for Parquet. A gzip or zstd stream cannot be split by byte range, so a compressed JSONL file
is read in *stripes* (``input.compressed_split_mb``): every stripe decompresses the whole stream
but keeps only its share of the lines (line number mod stripes), so that the reading, validation
and every stage fused after them use more than one worker. The tasks are reshuffled so that workers
read in parallel; no record passes through the driver.

Every raw record carries its input path and its position (byte offset of the line in the
decompressed stream, or row index in a Parquet file), so ids derived from it are stable whatever the
splitting, and "first occurrence" has a meaning.
"""

from __future__ import annotations

import gzip
import io
import logging
import posixpath
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.io.paths import is_remote_folder
from corpusforge.transforms.io.spill import StripeSpill, delete_spill, open_spill, spilled_records

LOG = logging.getLogger(__name__)

# Stripes of a compressed file: each one decompresses the whole stream, so their number is bounded
# (decompression costs n times; gzip inflates ~0.1-0.3 s per 100 MB, far less than the stages
# fused after the read). At least 2, so that a small file still feeds two local workers.
MIN_STRIPES = 2
MAX_STRIPES = 8

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSION_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
KNOWN_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES + tuple(COMPRESSION_SUFFIXES)
UNREADABLE_TAG = "unreadable"
STAGE = "read"
# Records the reader took from one file, counted per file as "records:<path>": stats.json checks
# them against validate's input, so a reader (or split plan) that loses lines cannot go unnoticed.
FILE_RECORDS_PREFIX = "records:"


class InputError(RuntimeError):
    """An input that cannot be read; the message always names the file or pattern."""


@dataclass(frozen=True)
class InputFile:
    path: str
    size: int
    format: str  # "jsonl" or "parquet"
    compression: str  # "none", "gzip" or "zstd"


@dataclass(frozen=True)
class ReadTask:
    file: InputFile
    start: int = 0  # byte range [start, end) for plain JSONL; row group index for Parquet
    end: int = -1
    # compressed JSONL: this task keeps the lines whose number (from 0) is stripe mod stripes
    stripe: int = 0
    stripes: int = 1


@dataclass(frozen=True)
class Unreadable:
    path: str
    error: str
    # records of this read task taken before the error (kept as read): >0 means the file was
    # partly read, e.g. a truncated .gz whose first records decompressed
    records_read: int = 0


def detect_format(path: str, configured: str = "auto") -> tuple[str, str]:
    """(format, compression) of ``path``: compression from the last suffix, format from the rest."""
    lower = path.lower()
    compression = "none"
    for suffix, kind in COMPRESSION_SUFFIXES.items():
        if lower.endswith(suffix):
            compression = kind
            lower = lower[: -len(suffix)]
            break
    if configured != "auto":
        return configured, compression
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet", compression
    return "jsonl", compression


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _is_directory(path: str) -> bool:
    if path.endswith("/"):
        return True
    if "://" not in path:
        import os

        return os.path.isdir(path)
    # an object store has no folders: s3://bucket/corpus is one when objects lie under its prefix
    return is_remote_folder(path)


def _file_key(path: str) -> str:
    """One key per file however it is spelled (relative, ./, absolute) on the local filesystem."""
    if "://" in path:
        return path
    import os

    return os.path.normpath(os.path.abspath(path))


def discover_inputs(
    patterns: Iterable[str], fmt: str = "auto", exclude: str | None = None
) -> tuple[list[InputFile], list[Unreadable]]:
    """Expand files, folders and globs into input files, sorted by path (deterministic order).

    A folder is read recursively, taking files with a known suffix. A pattern that matches nothing
    is returned as unreadable; the caller decides whether that stops the run. Files under
    ``exclude`` (the run's output folder) are never inputs: an earlier run's output inside an input
    folder must not be read back in. A file named twice (``a.jsonl`` and ``./a.jsonl``) is read once.
    """
    files: dict[str, InputFile] = {}
    excluded = _file_key(exclude.rstrip("/")) + "/" if exclude else None
    missing: list[Unreadable] = []
    for pattern in patterns:
        try:  # on an object store, asking whether it is a folder already lists the bucket
            folder = not _is_glob(pattern) and _is_directory(pattern)
            query = pattern.rstrip("/") + "/**" if folder else pattern
            result = FileSystems.match([query])[0]
            metadata = list(result.metadata_list)
        except Exception as exc:  # Beam raises BeamIOError for missing literal paths
            missing.append(Unreadable(pattern, f"no such file or pattern matched nothing ({exc})"))
            continue
        if folder:
            metadata = [m for m in metadata if m.path.lower().endswith(KNOWN_SUFFIXES)]
            metadata = [m for m in metadata if not posixpath.basename(m.path).startswith((".", "_"))]
        if not metadata:
            missing.append(Unreadable(pattern, "no input files matched"))
            continue
        for m in metadata:
            key = _file_key(m.path)
            if key in files or (excluded and key.startswith(excluded)):
                continue
            form, compression = detect_format(m.path, fmt)
            files[key] = InputFile(m.path, int(m.size_in_bytes), form, compression)
    return sorted(files.values(), key=lambda f: f.path), missing


def open_stream(file: InputFile) -> IO[bytes]:
    """A binary stream of the file's decompressed bytes, through Beam's FileSystems."""
    raw = FileSystems.open(file.path, compression_type=CompressionTypes.UNCOMPRESSED)
    if file.compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if file.compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return raw


def iter_lines(stream: IO[bytes], start: int = 0, end: int = -1) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line) for lines that *start* in [start, end) (end < 0: to the end).

    Standard split semantics: a range that does not begin at 0 skips the line in progress, which
    belongs to the previous range; a line that starts before ``end`` is read whole.
    """
    pos = 0
    if start > 0:
        stream.seek(start - 1)
        pos = start - 1
        pos += len(stream.readline())  # the rest of the previous range's last line (or its "\n")
    while end < 0 or pos < end:
        line = stream.readline()
        if not line:
            return
        yield pos, line
        pos += len(line)


def iter_stream_lines(stream: IO[bytes], chunk: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for every line of a whole decompressed stream, the line *without* its
    ``\n`` (a last line without one as it is): :func:`iter_lines` over a whole stream, in blocks.

    Why: ``GzipFile.readline`` costs ~25 us a line in Python-level buffer calls (~1 CPU s for the
    40k scale corpus's 267 MB, beside ~2 s of zlib itself); splitting blocks of
    ``read1`` is one C call per block. ``read1`` makes at most one read of the underlying stream, so
    a stream that fails (a truncated gzip) fails after exactly the complete lines ``readline`` would
    have returned: a failing read returns no part of its block, and the line in progress is lost in
    both."""
    pos = 0
    carry = b""
    read1 = stream.read1  # type: ignore[attr-defined]
    while True:
        block = read1(chunk)
        if not block:
            break
        if carry:
            block = carry + block
        lines = block.split(b"\n")
        carry = lines.pop()
        for line in lines:
            yield pos, line
            pos += len(line) + 1
    if carry:
        yield pos, carry


def is_blank(line: bytes) -> bool:
    """Whether a line of :func:`iter_stream_lines` (no ``\n``) is blank, as ``line.isspace()`` decides
    for the same line with its ``\n``."""
    return not line or line.isspace()


def task_lines(
    stream: IO[bytes], task: ReadTask
) -> tuple[Iterator[tuple[int, bytes]], Callable[[bytes], bool]]:
    """``(offset, line)`` of a JSONL task's range of ``stream`` and the test of a blank line for
    them: a compressed file (always read whole) in blocks, lines without their ``\n``
    (:func:`iter_stream_lines`, :func:`is_blank`); a plain file's byte range by ``readline``."""
    if task.file.compression != "none":
        return iter_stream_lines(stream), is_blank
    return iter_lines(stream, task.start, task.end), bytes.isspace


def stripe_count(compressed_size: int, stripe_bytes: int | None, workers: int | None = None) -> int:
    """Stripes for a compressed JSONL file of ``compressed_size`` bytes: one per ``stripe_bytes``,
    within [MIN_STRIPES, MAX_STRIPES]; ``None`` keeps the whole file in one task.

    ``workers`` (known on the local runner) caps the count: every stripe inflates the whole stream,
    so stripes beyond the workers that can run them at once only repeat the decompression (a
    122 MB .gz in 8 stripes cost a 2-worker run 8 inflations per read instead of 2; one worker
    needs no stripes at all). A cluster runner's worker count is unknown here: the size rules."""
    if stripe_bytes is None:
        return 1
    low, high = MIN_STRIPES, MAX_STRIPES
    if workers is not None:
        high = max(1, min(high, workers))
        low = min(low, high)
    return max(low, min(high, -(-compressed_size // stripe_bytes)))


class PlanReadTasks(beam.DoFn):
    """Split each input file into read tasks (byte ranges, stripes or Parquet row groups)."""

    def __init__(
        self,
        split_bytes: int,
        skip_unreadable: bool,
        stripe_bytes: int | None = None,
        workers: int | None = None,
    ) -> None:
        self.split_bytes = split_bytes
        self.skip_unreadable = skip_unreadable
        self.stripe_bytes = stripe_bytes
        self.workers = workers

    def process(self, file: InputFile) -> Iterator[Any]:
        if file.format == "parquet":
            try:
                import pyarrow.parquet as pq

                with FileSystems.open(file.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    groups = pq.ParquetFile(f).metadata.num_row_groups
            except Exception as exc:
                yield from _unreadable(file.path, exc, self.skip_unreadable)
                return
            for group in range(groups):
                yield ReadTask(file, group, group + 1)
        elif file.compression == "none" and file.size > self.split_bytes:
            for start in range(0, file.size, self.split_bytes):
                yield ReadTask(file, start, min(file.size, start + self.split_bytes))
        elif file.compression != "none":
            stripes = stripe_count(file.size, self.stripe_bytes, self.workers)
            for stripe in range(stripes):
                yield ReadTask(file, 0, -1, stripe, stripes)
        else:
            yield ReadTask(file, 0, -1)


def _unreadable(path: str, exc: BaseException, skip: bool, records_read: int = 0) -> Iterator[Any]:
    message = f"cannot read input file {path}: {type(exc).__name__}: {exc}"
    if records_read:
        message += f" (after {records_read} record(s) of this read task, which are kept)"
    if not skip:
        raise InputError(message) from exc
    LOG.warning("%s (skipped: input.on_unreadable=skip)", message)
    yield pvalue.TaggedOutput(UNREADABLE_TAG, Unreadable(path, f"{type(exc).__name__}: {exc}", records_read))


def stream_fault_types() -> tuple[type[BaseException], ...]:
    """Errors raised by a fault in a compressed stream's bytes, the same for every reader of them."""
    faults: list[type[BaseException]] = [EOFError, gzip.BadGzipFile, zlib.error]
    try:
        import zstandard
    except ImportError:  # zstd input then fails at open, not here
        return tuple(faults)
    return (*faults, zstandard.ZstdError)


def task_failed(
    task: ReadTask, exc: BaseException, skip: bool, read: int, reader: TaskReader, counters: StageCounters
) -> Iterator[Any]:
    """A read task that raised after ``read`` records: the file reported once, not once per stripe.

    Every stripe of a compressed file decompresses the same bytes, so a fault in those bytes (a
    truncated or corrupt stream) stops all of them at the same line: stripe 0 reports the file, with
    the records all stripes took before the error (it saw their lines), and the others only stop (or
    stop the run, when unreadable files are not skipped). Any other error (a failing read from the
    filesystem, say) may hit one stripe alone, so that stripe reports it itself, with its own records:
    stripe 0 may have finished, and staying silent would lose the rest of this stripe's lines.
    """
    if task.stripe and skip and isinstance(exc, stream_fault_types()):
        return iter(())
    if task.stripe:
        counters.inc("unreadable_files")
        return _unreadable(task.file.path, exc, skip, read)
    counters.inc("unreadable_files")
    return _unreadable(task.file.path, exc, skip, read + reader.other_stripes_records)


def rows_of(table: Any) -> list[dict]:
    """A Parquet row group as dicts. Parquet writers do not check UTF-8, so a string cell may hold
    bytes that do not decode: then those cells (only those) come out as ``bytes``, which validation
    rejects as ``invalid:bad_utf8`` when it is the text, instead of the row group being lost."""
    try:
        return table.to_pylist()
    except UnicodeDecodeError:
        import pyarrow as pa

        strings = [
            f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        for name in strings:
            i = table.schema.get_field_index(name)
            table = table.set_column(
                i,
                name,
                table.column(i).cast(
                    pa.binary() if pa.types.is_string(table.schema.field(i).type) else pa.large_binary()
                ),
            )
        rows = table.to_pylist()
        for row in rows:
            for name in strings:
                value = row[name]
                if value is not None:
                    try:
                        row[name] = value.decode("utf-8")
                    except UnicodeDecodeError:
                        pass  # stays bytes: the parser decides (bad_utf8 for text, replaced elsewhere)
        return rows


class TaskReader:
    """The records of one read task, ``(path, position, payload)`` with payload the raw line bytes
    (JSONL) or the row as a dict (Parquet); pure, no Beam.

    With ``counters`` it counts what it read (``in``, ``kept``, ``blank_lines`` and the per-file
    ``records:<path>`` that conservation checks); without, it only reads: the duplicate-id scan
    reads each task a first time and must not count its records twice.
    """

    def __init__(self, counters: StageCounters | None = None) -> None:
        self.counters = counters
        # records of the other stripes that the last striped task passed over (see task_failed)
        self.other_stripes_records = 0

    def records(self, task: ReadTask, spill: str | None = None) -> Iterator[tuple[str, int, Any]]:
        """Raises what the file raises (OSError, EOFError, zlib.error, ArrowInvalid...) after the
        records before the error; the caller decides whether that stops the run.

        ``spill``: the task's records as the id scan kept them (:mod:`.spill`), read instead of
        inflating the stream when the file is there; the same records and counts either way."""
        if task.file.format == "parquet":
            return self._parquet(task)
        if spill is not None:
            f = open_spill(spill)
            if f is not None:
                return self._spilled(task, spill, f)
        return self._jsonl(task)

    def _spilled(self, task: ReadTask, spill: str, f: IO[bytes]) -> Iterator[tuple[str, int, bytes]]:
        """The records of a task from its spill file, counted as :meth:`_jsonl` counts them; the
        file is deleted once read whole. A failing spill read is an error of this task alone (as a
        failing filesystem read is), so no other stripe's records are left to report."""
        path = task.file.path
        self.other_stripes_records = 0
        records = 0
        blank = [0]
        try:
            with f:
                for offset, line in spilled_records(f, spill, blank):
                    records += 1
                    yield path, offset, line
        finally:
            self._count(path, records, blank[0])
        delete_spill(spill)

    def _jsonl(self, task: ReadTask) -> Iterator[tuple[str, int, bytes]]:
        path = task.file.path
        blank = records = 0
        self.other_stripes_records = 0
        stripe, stripes = task.stripe, task.stripes
        try:
            with open_stream(task.file) as stream:
                lines, blank_line = task_lines(stream, task)
                for number, (offset, line) in enumerate(lines):
                    if stripes > 1 and number % stripes != stripe:
                        if not blank_line(line):
                            self.other_stripes_records += 1
                        continue
                    if blank_line(line):
                        blank += 1
                        continue
                    records += 1
                    yield path, offset, line.rstrip(b"\r\n")
        finally:
            self._count(path, records, blank)

    def all_stripes(
        self, task: ReadTask, spill: StripeSpill | None = None
    ) -> Iterator[tuple[str, int, bytes, int]]:
        """Every record of a striped file in one pass, ``(path, position, line, stripe)``, stripe
        being the task that will read it (line number mod stripes, as :meth:`records` decides).

        For the duplicate-id scan: it needs every record's id and the task it belongs to, and one
        inflation of the stream gives them all, where a scan per stripe inflates it once each.
        Nothing is counted; the stream raises where each stripe's own read raises (the same bytes).
        With ``spill`` each record (and blank line) is also written to its stripe's spill file, for
        the stripes' reads (:mod:`.spill`); the caller finishes or aborts it.
        """
        if task.file.format == "parquet" or (task.stripes <= 1 and spill is None):
            for path, position, payload in self.records(task):
                yield path, position, payload, task.stripe
            return
        path, stripes = task.file.path, task.stripes
        with open_stream(task.file) as stream:
            lines, blank_line = task_lines(stream, task)
            for number, (offset, line) in enumerate(lines):
                stripe = number % stripes
                if blank_line(line):
                    if spill is not None:
                        spill.blank(stripe)
                    continue
                line = line.rstrip(b"\r\n")
                if spill is not None:
                    spill.record(stripe, offset, line)
                yield path, offset, line, stripe

    def _count(self, path: str, records: int, blank: int = 0) -> None:
        if self.counters is None:
            return
        if records:
            self.counters.inc("in", records)
            self.counters.inc("kept", records)
            self.counters.inc(FILE_RECORDS_PREFIX + path, records)
        if blank:
            self.counters.inc("blank_lines", blank)

    def _parquet(self, task: ReadTask) -> Iterator[tuple[str, int, dict]]:
        import pyarrow.parquet as pq

        with FileSystems.open(task.file.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            parquet = pq.ParquetFile(f)
            first_row = sum(parquet.metadata.row_group(i).num_rows for i in range(task.start))
            rows = rows_of(parquet.read_row_group(task.start))
        self._count(task.file.path, len(rows))
        for i, row in enumerate(rows):
            yield task.file.path, first_row + i, row


class ReadRawRecords(beam.DoFn):
    """Execute a read task: yield ``(path, position, payload)`` (see :class:`TaskReader`); an
    unreadable file goes to the ``unreadable`` output, or stops the run."""

    def __init__(self, skip_unreadable: bool) -> None:
        self.skip_unreadable = skip_unreadable

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)
        self.reader = TaskReader(self.counters)

    def process(self, task: ReadTask) -> Iterator[Any]:
        self.counters.inc("tasks")
        read = 0
        try:
            for record in self.reader.records(task):
                read += 1
                yield record
        except Exception as exc:  # OSError, EOFError, zlib.error, zstandard.ZstdError, ArrowInvalid...
            # Records already yielded from this file stay read; the rest of it is reported.
            yield from task_failed(task, exc, self.skip_unreadable, read, self.reader, self.counters)


class PlanReads(beam.PTransform):
    """Input files in, ``(read tasks, unreadable files)`` out: the tasks spread over the workers.

    The tasks are small (a path and a byte range), so they can be consumed twice: once to find the
    duplicate ids, once to read the documents (see :mod:`corpusforge.transforms.io.unique_ids`).
    """

    def __init__(
        self,
        files: list[InputFile],
        split_mb: int = 64,
        skip_unreadable: bool = False,
        compressed_split_mb: float | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__()
        self.files = files
        self.split_bytes = split_mb << 20
        self.skip_unreadable = skip_unreadable
        # None: one task per compressed file; the run passes input.compressed_split_mb
        self.stripe_bytes = (
            None if compressed_split_mb is None else max(1, int(compressed_split_mb * (1 << 20)))
        )
        self.workers = workers  # the local runner's worker processes: at most this many stripes

    def expand(self, pbegin: beam.pvalue.PBegin) -> tuple[beam.PCollection, beam.PCollection]:
        planned = (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Plan"
            >> beam.ParDo(
                PlanReadTasks(self.split_bytes, self.skip_unreadable, self.stripe_bytes, self.workers)
            ).with_outputs(UNREADABLE_TAG, main="tasks")
        )
        return planned["tasks"] | "Spread" >> beam.Reshuffle(), planned[UNREADABLE_TAG]


class ReadDocuments(beam.PTransform):
    """Input files in, ``(raw records, unreadable files)`` out; raw records are parsed by Validate.

    The tasks are :class:`PlanReads`' own (``plan``: its split sizes are the ones used)."""

    def __init__(
        self,
        files: list[InputFile],
        split_mb: int = 64,
        skip_unreadable: bool = False,
        compressed_split_mb: float | None = None,
    ) -> None:
        super().__init__()
        self.plan = PlanReads(files, split_mb, skip_unreadable, compressed_split_mb)

    def expand(self, pbegin: beam.pvalue.PBegin) -> tuple[beam.PCollection, beam.PCollection]:
        tasks, not_planned = pbegin | self.plan
        read = tasks | "Read" >> beam.ParDo(ReadRawRecords(self.plan.skip_unreadable)).with_outputs(
            UNREADABLE_TAG, main="records"
        )
        unreadable = (not_planned, read[UNREADABLE_TAG]) | "Unreadable" >> beam.Flatten()
        return read["records"], unreadable
