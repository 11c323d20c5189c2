"""The inflated lines of a compressed JSONL file, kept by the duplicate-id scan for the reads after it.

A gzip or zstd file is read twice (the id scan, then the documents: see
:mod:`corpusforge.transforms.io.unique_ids`), and every read stripe inflates the whole stream,
since neither codec can be resumed mid-stream from Python: a 2-stripe file was inflated three
times per run (~0.5 CPU s each for the 8k benchmark corpus's 24.7 MB gzip, of which ~0.2 s is
``GzipFile.readline``, not ``zlib``). The scan already inflates it whole, once, so it writes each
stripe's records to a file of its own as it goes; each stripe then reads its records back from
there (no inflation, and no pass over the other stripes' lines) and deletes the file.

A spill file holds exactly what the stripe's own read of the stream would take: ``(offset, line)``
of each record in order (the line without its line break) and the number of blank lines, so the
reader counts and yields the same. It is complete or absent: written under a temporary name and
renamed when the scan reached the end of the stream; a scan that fails (a truncated stream) leaves
none, and the stripes then read the stream themselves and fail where they always did. A reader
that does not find its file (another machine, a retried bundle after the file was deleted) reads
the stream too: the spill only saves work, it never decides what is read.

Format: one ``<QI`` header (offset, length) then the line's bytes, per record; then the footer, a
header whose offset is ``END`` and whose length is the number of blank lines, and ``<Q`` the number
of records (checked on reading, so a damaged file is an error, never fewer records).
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import struct
import uuid
from collections.abc import Iterator
from typing import IO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

LOG = logging.getLogger(__name__)

_HEADER = struct.Struct("<QI")
_COUNT = struct.Struct("<Q")
END = (1 << 64) - 1
SUFFIX = ".spill"


class SpillError(RuntimeError):
    """A spill file that does not end as it was written; the message names it."""


# The disk a spill may not eat into: the scan of every input file ends before the first read begins
# (the reads wait for the whole duplicate-id list), so a local run of a large compressed corpus would
# otherwise hold all of it inflated at once. Below this much free space (checked every
# CHECK_EVERY_BYTES written) the spill is dropped and the reads inflate the stream as before.
RESERVE_BYTES = 2 << 30
RESERVE_SHARE = 0.10  # ... or below this share of the disk, whichever is larger
CHECK_EVERY_BYTES = 64 << 20


def disk_room(folder: str) -> int:
    """Bytes a spill may still write under ``folder`` (a local path) before the reserve."""
    usage = shutil.disk_usage(folder)
    return usage.free - max(RESERVE_BYTES, int(usage.total * RESERVE_SHARE))


class StripeSpill:
    """Writes the records of every stripe of one file, each stripe to its own file under ``folder``
    (a local folder: the run's work folder when the output is local).

    A failing write (a full disk), or the disk's free space falling to its reserve
    (:func:`disk_room`), does not fail the scan: the spill is dropped, with a warning, and the
    stripes read the stream themselves."""

    def __init__(self, folder: str, stripes: int) -> None:
        token = uuid.uuid4().hex
        self.paths = [posixpath.join(folder, f"{token}-{k}{SUFFIX}") for k in range(stripes)]
        self._files: list[IO[bytes]] | None = []
        self._records = [0] * stripes
        self._blank = [0] * stripes
        self._folder = folder
        self._unchecked = 0  # bytes written since the last look at the disk's free space
        try:
            os.makedirs(folder, exist_ok=True)
            if disk_room(folder) < CHECK_EVERY_BYTES:
                raise OSError(f"less than the reserve free on the disk of {folder}")
            for path in self.paths:
                self._files.append(FileSystems.create(path + ".tmp", compression_type=_PLAIN))
        except OSError as exc:
            self._drop(exc)

    def record(self, stripe: int, offset: int, line: bytes) -> None:
        if self._files is None:
            return
        try:
            f = self._files[stripe]
            f.write(_HEADER.pack(offset, len(line)))
            f.write(line)
            self._unchecked += _HEADER.size + len(line)
            if self._unchecked >= CHECK_EVERY_BYTES:
                self._unchecked = 0
                if disk_room(self._folder) < CHECK_EVERY_BYTES:
                    raise OSError(f"the disk of {self._folder} is down to its reserve of free space")
        except OSError as exc:
            self._drop(exc)
            return
        self._records[stripe] += 1

    def blank(self, stripe: int) -> None:
        self._blank[stripe] += 1

    def finish(self) -> list[str]:
        """The stripes' files (index: stripe), complete; empty when the spill was dropped."""
        if self._files is None:
            return []
        try:
            for f, records, blank in zip(self._files, self._records, self._blank, strict=True):
                f.write(_HEADER.pack(END, blank))
                f.write(_COUNT.pack(records))
                f.close()
            self._files = None
            FileSystems.rename([p + ".tmp" for p in self.paths], self.paths)
        except OSError as exc:
            self._drop(exc)
            return []
        return self.paths

    def abort(self) -> None:
        """The scan stopped before the end of the stream: no spill."""
        self._drop(None)

    def _drop(self, exc: BaseException | None) -> None:
        if exc is not None:
            LOG.warning("not keeping the inflated input in %s (the reads inflate it): %s", self.paths[0], exc)
        for f in self._files or ():
            try:
                f.close()
            except OSError:
                pass
        self._files = None
        leftovers = [p + ".tmp" for p in self.paths] + self.paths
        try:
            FileSystems.delete([p for p in leftovers if FileSystems.exists(p)])
        except Exception:  # a leftover lies in the run's work folder, removed with it at the end
            pass


_PLAIN = CompressionTypes.UNCOMPRESSED


def open_spill(path: str) -> IO[bytes] | None:
    """The spill file at ``path``, or None when it is not there (the caller reads the stream)."""
    try:
        return FileSystems.open(path, compression_type=_PLAIN)
    except Exception as exc:  # Beam wraps a missing local file in BeamIOError, or raises OSError
        LOG.info("no spill %s (reading the stream instead): %s", path, exc)
        return None


def spilled_records(f: IO[bytes], path: str, blank: list[int]) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of each record in spill file ``f`` (at ``path``); ``blank[0]`` is set to
    its blank lines at the end. Raises :class:`SpillError` when the file ends before its footer or
    its record count does not match."""
    count = 0
    read, size = f.read, _HEADER.size
    while True:
        header = read(size)
        if len(header) != size:
            raise SpillError(f"spill file {path} ends after {count} record(s), before its footer")
        offset, length = _HEADER.unpack(header)
        if offset == END:
            tail = read(_COUNT.size)
            if len(tail) != _COUNT.size:
                raise SpillError(f"spill file {path} ends inside its footer")
            (written,) = _COUNT.unpack(tail)
            if written != count:
                raise SpillError(f"spill file {path} holds {count} record(s), its footer says {written}")
            blank[0] = length
            return
        line = read(length)
        if len(line) != length:
            raise SpillError(f"spill file {path} ends inside record {count}")
        count += 1
        yield offset, line


def delete_spill(path: str) -> None:
    """Remove a stripe's spill once read (what is left is removed with the run's work folder)."""
    try:
        FileSystems.delete([path])
    except Exception as exc:
        LOG.info("spill %s not deleted (removed with the work folder): %s", path, exc)
