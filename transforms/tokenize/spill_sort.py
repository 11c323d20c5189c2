"""A shard's rows in training order within a bounded amount of memory (an external merge sort).

A shard of the global shuffle can be far larger than a worker's memory: on a runner that pages a
group's values in (Dataflow, or any runner with state-backed iterables) only the sort itself would
hold them all. Rows are therefore taken in runs of at most ``buffer_bytes`` (their ids' bytes plus
a per-row allowance), each run sorted and spilled to a local temporary file, and the runs merged
lazily (``heapq.merge``): the writer sees one row at a time, in the same order an in-memory sort
gives. A shard that fits in one run is sorted in memory and never touches the disk.

The order is :func:`~corpusforge.transforms.tokenize.order.sort_key`'s, a total order on rows (the
key, then the row's identity), so the result does not depend on how the rows arrived or were split
into runs: the same bytes on any worker count.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator

from corpusforge.transforms.tokenize.order import TrainRow, sort_key

# What a row costs in memory besides its ids: the dataclass, its tuples and id strings (measured
# at ~300-500 bytes for rows of one to a few documents; generous so that the bound holds).
ROW_OVERHEAD_BYTES = 512
DEFAULT_BUFFER_BYTES = 256 << 20


def row_bytes(row: TrainRow) -> int:
    return int(row.ids.nbytes) + ROW_OVERHEAD_BYTES + sum(len(d) for d in row.doc_ids)


def _spill(run: list[TrainRow], folder: str) -> str:
    run.sort(key=sort_key)
    fd, path = tempfile.mkstemp(prefix="run-", suffix=".pkl", dir=folder)
    with os.fdopen(fd, "wb", buffering=1 << 20) as f:
        for row in run:
            pickle.dump(row, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read(path: str) -> Iterator[TrainRow]:
    with open(path, "rb", buffering=1 << 20) as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


class SortedRows:
    """Iterates ``rows`` in training order holding at most ~``buffer_bytes`` of them at a time.

    ``spills`` says how many runs went to disk (0: sorted in memory). Spill files live in a
    temporary folder removed when the iteration ends (or the object is garbage-collected).
    """

    def __init__(self, rows: Iterable[TrainRow], buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.rows, self.buffer_bytes = rows, max(1, int(buffer_bytes))
        self.spills = 0

    def __iter__(self) -> Iterator[TrainRow]:
        run: list[TrainRow] = []
        held = 0
        tmp: tempfile.TemporaryDirectory[str] | None = None
        paths: list[str] = []
        try:
            for row in self.rows:
                run.append(row)
                held += row_bytes(row)
                if held >= self.buffer_bytes:
                    if tmp is None:
                        tmp = tempfile.TemporaryDirectory(prefix="corpusforge-sort-")
                    paths.append(_spill(run, tmp.name))
                    run, held = [], 0
            run.sort(key=sort_key)
            if not paths:
                yield from run
                return
            self.spills = len(paths)
            yield from heapq.merge(*(_read(p) for p in paths), iter(run), key=sort_key)
        finally:
            if tmp is not None:
                tmp.cleanup()


def sorted_rows(rows: Iterable[TrainRow], buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> Iterator[TrainRow]:
    """``rows`` in training order, in bounded memory (see :class:`SortedRows`)."""
    return iter(SortedRows(rows, buffer_bytes))
