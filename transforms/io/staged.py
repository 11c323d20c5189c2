"""Files that appear under their final name only once complete: written to a temporary name, renamed.

A worker killed half-way through a shard must not leave a ``shard-00003.idx`` that a trainer takes
for a finished one (Beam's own file sinks, such as the Parquet ``sequences/`` writer, work the same
way). :class:`StagedFiles` writes each file beside its destination under a unique temporary name
(``<name>.tmp-<hex>``, which no reader's pattern matches) and :meth:`StagedFiles.publish` renames
them in the order given, so the file that marks a unit as readable (an index) can go last. On any
Beam filesystem: a rename there is a copy and a delete, still never a partial file under the name.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import BinaryIO

from apache_beam.io.filesystems import FileSystems

TEMP_INFIX = ".tmp-"


def temp_name(path: str) -> str:
    """A unique sibling of ``path`` (two attempts at the same shard never share one)."""
    return f"{path}{TEMP_INFIX}{uuid.uuid4().hex}"


class StagedFiles:
    """A context manager: ``create(path)`` opens a temporary file for ``path``; leaving the block
    without an error publishes them all (in creation order), with one removes the temporaries."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []

    def create(self, path: str) -> BinaryIO:
        tmp = temp_name(path)
        self._pending.append((tmp, path))
        return FileSystems.create(tmp)

    def publish(self) -> None:
        for tmp, path in self._pending:
            FileSystems.rename([tmp], [path])
        self._pending = []

    def discard(self) -> None:
        for tmp, _ in self._pending:
            try:
                FileSystems.delete([tmp])
            except Exception:  # best effort: the run is failing already; leftovers are never read
                pass
        self._pending = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()


def write_staged(path: str, data: bytes) -> None:
    """``data`` to ``path``, never visible there half-written."""
    with StagedFiles() as staged, staged.create(path) as f:
        f.write(data)
