"""Read and validate in one pass, with duplicate ids rejected in place: no document is shuffled.

Grouping whole documents by id would send every document through a shuffle before any stage runs
(on the local runner that shuffle lives in the driver's memory: 3.4 GB at 100k documents). Instead
the input is read twice:

1. ``ScanIds`` reads every task and parses each record without counting it, keeping only
   ``(id, (path, position, task key))`` for the records that become documents. A compressed file
   read in stripes is scanned whole by its stripe 0's task (one inflation of the stream instead of
   one per stripe; each record keyed by the stripe that will read it), and the scan decides only
   validity and the id (:meth:`~corpusforge.transforms.io.validate.RecordParser.document_id`),
   never building the document. As it inflates a compressed file it writes each stripe's records
   to a spill file of its own (:mod:`~corpusforge.transforms.io.spill`, in the run's work folder)
   and, once it reached the end of the stream, hands the files on (the ``spills`` side input);
2. ``GroupIds`` shuffles those small tuples and ``Losers`` keeps, for each id seen more than once,
   every occurrence but the first by (input path, position), with where the first one is. Duplicate
   ids are rare, so this side input is small; it is keyed by read task, so a worker fetches the
   losers of the task it reads and never the whole list.
3. ``ReadValidate`` reads each task again (a stripe from its spill file when there is one, the
   stream otherwise: the same records), parses each record, counts it (reader and validate
   counters, as :class:`~corpusforge.transforms.io.read.ReadRawRecords` and ``Validate`` do) and
   rejects a loser as ``invalid:duplicate_id`` where it stands, so the documents come out of the
   same fused stage as the read and flow straight into the stages.

Reading gzip JSONL again costs far less than shuffling the parsed documents. The semantics are
those of :class:`~corpusforge.transforms.io.validate.Validate`: the first occurrence by path and
position wins, the others carry ``duplicate_of`` and where the first was seen. Both reads see the
same bytes (a file is read the same way twice), so a file that fails part-way fails at the same
record in both. (An error that is not in the stream's bytes, a failing filesystem read, ends the
scan of the whole file where it happens, not of one stripe: with ``input.on_unreadable: skip`` the
ids after it are not compared, as those of the failing stripe were not before.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.schemas.records import RejectedDocument
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.io.read import (
    STAGE as READ_STAGE,
)
from corpusforge.transforms.io.read import (
    UNREADABLE_TAG,
    ReadTask,
    TaskReader,
    _unreadable,
    task_failed,
)
from corpusforge.transforms.io.spill import StripeSpill
from corpusforge.transforms.io.validate import STAGE, RecordParser, duplicate_rejection, parse_counted

SPILLS_TAG = "spills"  # the scan's (task key, spill file) of each stripe of a compressed file

# (path, position) of a record, and the read task it belongs to (path, start of the range, stripe:
# the stripes of a compressed file all start at 0)
Position = tuple[str, int]
TaskKey = tuple[str, int, int]


def task_key(task: ReadTask) -> TaskKey:
    return task.file.path, task.start, task.stripe


def spills_inflation(task: ReadTask) -> bool:
    """Whether the scan of ``task`` keeps the lines it inflates for the reads (see :mod:`.spill`):
    a compressed JSONL file, whose every read would inflate the whole stream again."""
    return task.file.format == "jsonl" and task.file.compression != "none" and task.stripe == 0


class _ScanIdsFn(beam.DoFn):
    """First read: ``(id, (path, position, task key))`` for each record that parses to a document;
    with ``spill_dir``, also ``(task key, spill file)`` for each stripe of a compressed file, on the
    ``spills`` output, once its whole stream was scanned."""

    def __init__(self, parser: RecordParser, skip_unreadable: bool, spill_dir: str | None = None) -> None:
        self.parser = parser
        self.skip_unreadable = skip_unreadable
        self.spill_dir = spill_dir

    def setup(self) -> None:
        self.reader = TaskReader()  # no counters: the second read counts

    def process(self, task: ReadTask) -> Iterator[Any]:
        if task.stripe:  # stripe 0 scans the whole stream, for every stripe of the file
            return
        file, start = task.file.path, task.start
        spill = (
            StripeSpill(self.spill_dir, task.stripes)
            if self.spill_dir is not None and spills_inflation(task)
            else None
        )
        try:
            for path, position, payload, stripe in self.reader.all_stripes(task, spill):
                record_id = self.parser.document_id(path, position, payload)
                if record_id is not None:
                    yield record_id, (path, position, (file, start, stripe))
        except Exception as exc:
            if spill is not None:
                spill.abort()  # the stripes read the stream and stop where it stops
            if not self.skip_unreadable:
                # the same error the second read would raise, naming the file
                list(_unreadable(task.file.path, exc, False))
            # skipped: the second read stops at the same record and reports the file
            return
        if spill is not None:
            for stripe, spilled in enumerate(spill.finish()):
                yield pvalue.TaggedOutput(SPILLS_TAG, ((file, start, stripe), spilled))


def losers_of(element: tuple[str, Iterable[tuple[str, int, TaskKey]]]) -> Iterator[tuple[TaskKey, Any]]:
    """For an id seen more than once: ``(task key, (position, first path, first position))`` of every
    occurrence but the first by (path, position)."""
    record_id, occurrences = element
    ordered = sorted(occurrences)
    if len(ordered) < 2:
        return
    first_path, first_position, _ = ordered[0]
    for _, position, key in ordered[1:]:
        yield key, (position, first_path, first_position)


class _ReadValidateFn(beam.DoFn):
    """Second read: every record parsed, counted, and kept or rejected (duplicate ids included)."""

    def __init__(self, parser: RecordParser, skip_unreadable: bool) -> None:
        self.parser = parser
        self.skip_unreadable = skip_unreadable

    def setup(self) -> None:
        self.read_counters = StageCounters(READ_STAGE)
        self.counters = StageCounters(STAGE)
        self.reader = TaskReader(self.read_counters)

    def process(self, task: ReadTask, losers: Any, spills: Any = None) -> Iterator[Any]:
        self.read_counters.inc("tasks")
        key = task_key(task)
        firsts = {position: (path, first) for position, path, first in losers[key]}
        spill = spills.get(key) if spills is not None else None
        read = 0
        try:
            for path, position, payload in self.reader.records(task, spill):
                read += 1
                yield self._validate(path, position, payload, firsts)
        except Exception as exc:  # as ReadRawRecords: the records before the error stay read
            yield from task_failed(task, exc, self.skip_unreadable, read, self.reader, self.read_counters)

    def _validate(self, path: str, position: int, payload: Any, firsts: dict[int, Position]) -> Any:
        outcome = parse_counted(self.parser, self.counters, path, position, payload)
        if isinstance(outcome, RejectedDocument):
            return pvalue.TaggedOutput(REJECTED_TAG, outcome)
        first = firsts.get(position)  # its length was observed: every parsed document counts
        if first is not None:
            rejection = duplicate_rejection(outcome.id, *first)
            self.counters.rejected(rejection)
            return pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(outcome, rejection))
        self.counters.kept(outcome)
        return outcome


class ReadValidated(beam.PTransform):
    """Read tasks in (from :class:`~corpusforge.transforms.io.read.PlanReads`); ``(documents,
    rejected, unreadable files)`` out, each document with a unique id."""

    def __init__(
        self, parser: RecordParser, skip_unreadable: bool = False, spill_dir: str | None = None
    ) -> None:
        super().__init__()
        self.parser = parser
        self.skip_unreadable = skip_unreadable
        # where the scan keeps the inflated lines of compressed files for the reads (None: the
        # reads inflate again); a folder every worker can read, the run's work folder
        self.spill_dir = spill_dir

    def expand(self, tasks: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection, beam.PCollection]:
        scanned = tasks | "ScanIds" >> beam.ParDo(
            _ScanIdsFn(self.parser, self.skip_unreadable, self.spill_dir)
        ).with_outputs(SPILLS_TAG, main="ids")
        losers = scanned["ids"] | "GroupIds" >> beam.GroupByKey() | "Losers" >> beam.FlatMap(losers_of)
        out = tasks | "ReadValidate" >> beam.ParDo(
            _ReadValidateFn(self.parser, self.skip_unreadable),
            losers=beam.pvalue.AsMultiMap(losers),
            spills=beam.pvalue.AsDict(scanned[SPILLS_TAG]),
        ).with_outputs(REJECTED_TAG, UNREADABLE_TAG, main=KEPT_TAG)
        return out[KEPT_TAG], out[REJECTED_TAG], out[UNREADABLE_TAG]
