"""A disk cache of derived, expensive set-up data, keyed by the content it was derived from.

Why: every SDK worker of every run rebuilds the same read-only tables from the same installed files
before its first document (the language profiles' log-probability table: ~1 s of CPU per worker,
parsing 55 JSON profiles), and on the shared 2-core machine that set-up competes with the driver
for the cores the run's start-up waits on. Loading the finished table from disk takes a few
milliseconds.

Never stale: an entry's key is a SHA-256 over everything the data is derived from, as bytes: the
input files' content (not their dates), the source of the code that derives it, and the versions
of the libraries whose arithmetic it holds (numpy, Python, the machine's architecture). Any change
gives a new key, so an old entry is never read for new inputs; it is only pruned (each kind keeps its
:data:`KEEP_PER_KIND` most recently used entries, or the ``keep`` its caller gives: a kind keyed by
a run's settings, such as the benchmark index, sees more keys in use side by side).

Safe to share: an entry is written to a temporary file and renamed into place, so a reader sees a
whole entry or none, and workers racing to fill the same key write identical bytes. A missing,
unreadable or corrupt entry is rebuilt; an unwritable cache folder only means no caching.

Where: ``$CORPUSFORGE_CACHE_DIR`` if set (empty, ``0`` or ``off``: no cache), else
``$XDG_CACHE_HOME/corpusforge``, else ``~/.cache/corpusforge``. The cache is an optimisation of
the machine a worker runs on, not part of a run's configuration: it never changes an output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

LOG = logging.getLogger(__name__)
ENV = "CORPUSFORGE_CACHE_DIR"
KEEP_PER_KIND = 3  # entries kept per kind: a few code versions (branches) side by side
STALE_TMP_S = 3600.0  # a temporary file this old was left by a writer that died
_OFF = ("", "0", "off", "false", "no")

T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache folder (not created here), or None when caching is off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "corpusforge"


def runtime_fingerprint() -> str:
    """What floating-point results may depend on besides the inputs: numpy's and Python's versions
    and the machine's architecture (numpy's vectorised ``log`` differs between builds)."""
    import numpy as np

    return f"numpy {np.__version__}; python {sys.version.split()[0]}; {platform.machine()}"


def content_key(kind: str, parts: Iterable[str | bytes | Path]) -> str:
    """SHA-256 (hex) over ``kind`` and ``parts``: a ``Path`` counts by its name and content, ``str``
    and ``bytes`` as given; each part is length-prefixed, so no two part lists hash alike."""
    digest = hashlib.sha256()

    def add(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    add(kind.encode())
    for part in parts:
        if isinstance(part, Path):
            add(part.name.encode())
            add(part.read_bytes())
        elif isinstance(part, str):
            add(part.encode())
        else:
            add(part)
    return digest.hexdigest()


def entry_path(kind: str, key: str, suffix: str) -> Path | None:
    """Where the entry ``kind``/``key`` lives (None when caching is off)."""
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{key}{suffix}"


def load_or_build(
    kind: str,
    key: str,
    suffix: str,
    build: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
    keep: int = KEEP_PER_KIND,
) -> T:
    """The entry ``kind``/``key``: ``load(path)`` when it is cached, else ``build()``, saved with
    ``save(value, temporary_path)`` and renamed into place, the kind then pruned to its ``keep`` most
    recently used entries. ``load`` raising means a bad entry: it is rebuilt and replaced."""
    path = entry_path(kind, key, suffix)
    if path is None:
        return build()
    if path.exists():
        try:
            value = load(path)
        except Exception:  # truncated or corrupt (a disk full, a foreign file): rebuild it
            LOG.warning("cache entry %s is unreadable; rebuilding it", path, exc_info=True)
        else:
            _touch(path)
            return value
    value = build()
    _store(value, path, save, keep)
    return value


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # most recently used: pruned last
    except OSError:
        pass


def _store(value: T, path: Path, save: Callable[[T, Path], None], keep: int = KEEP_PER_KIND) -> None:
    """Write ``value`` to ``path`` atomically (temporary file, then rename), then prune its kind to
    ``keep`` entries;
    any failure leaves the cache as it was (the value was built; caching is only an optimisation)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.close(fd)
        tmp = Path(name)
        save(value, tmp)
        os.replace(tmp, path)
        tmp = None
        _prune(path.parent, path, keep)
    except OSError as exc:
        LOG.debug("not caching %s: %s", path, exc)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _prune(folder: Path, newest: Path, keep: int = KEEP_PER_KIND) -> None:
    """Keep the ``keep`` most recently used entries of a kind (``newest`` among them)."""
    entries = []
    now = time.time()
    for p in folder.iterdir():
        if p == newest:
            continue
        try:
            mtime = p.stat().st_mtime
        except OSError:
            continue
        if not p.name.startswith(".tmp-"):
            entries.append((mtime, p))
        elif now - mtime > STALE_TMP_S:
            p.unlink(missing_ok=True)
    entries.sort(reverse=True)
    for _, old in entries[max(0, keep - 1) :]:
        old.unlink(missing_ok=True)


def load_entry(kind: str, key: str, suffix: str, load: Callable[[Path], T]) -> T | None:
    """The entry ``kind``/``key`` read with ``load``, or None: caching off, no entry, or a bad entry
    (``load`` raised; warned and left to be replaced). For entries that grow over runs, where
    :func:`load_or_build`'s build-once does not fit."""
    path = entry_path(kind, key, suffix)
    if path is None or not path.exists():
        return None
    try:
        value = load(path)
    except Exception:  # truncated or corrupt (a disk full, a foreign file): the caller starts afresh
        LOG.warning("cache entry %s is unreadable; rebuilding it", path, exc_info=True)
        return None
    _touch(path)
    return value


def store_entry(kind: str, key: str, suffix: str, value: T, save: Callable[[T, Path], None]) -> None:
    """Write ``value`` as the entry ``kind``/``key`` (atomically; a no-op with caching off)."""
    path = entry_path(kind, key, suffix)
    if path is not None:
        _store(value, path, save)
