"""Beam's object-store filesystems imported on first use of their scheme, not at ``import apache_beam``.

Why: ``apache_beam.io.filesystems`` imports every filesystem whose libraries are installed, so a
run on local files pays for ``gs://`` and ``s3://`` anyway: ``google.cloud.storage``, the Google API
client and oauth for GCS, boto3 and botocore for S3, ~0.4 s of CPU idle (0.8 s on a loaded
2-core machine) in the driver before its first log line, and again in the local workers' zygote.

How: a local run imports Beam with those modules left out (``pipelines/local/lean_import.py``:
Beam takes its own "not installed" branch, the filesystem is not registered), and :func:`install`
wraps ``FileSystems.get_filesystem``, the one place every ``FileSystems`` call (match, open,
create, exists, rename, delete...) asks which filesystem serves a path: for a path whose scheme is
in :data:`LAZY` and whose module was not imported yet, it imports the module first, which registers
the filesystem (Beam finds them as subclasses of ``FileSystem``), then answers as Beam does. A
missing library makes Beam's own error ("Unable to get filesystem from specified path"), as if the
module had been imported at start. :func:`on_load` runs set-up that needs the filesystem's module
(the shared S3 client, ``s3_clients.py``) when it is loaded, at once if it is loaded already.
Processes that import Beam as usual (other runners, tests) have every filesystem from the start;
the wrapper then only looks the scheme up.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)

# scheme -> the Beam module that defines its filesystem (imported by apache_beam.io.filesystems
# inside ``try/except ImportError`` when its libraries are installed)
LAZY = {
    "gs": "apache_beam.io.gcp.gcsfilesystem",
    "s3": "apache_beam.io.aws.s3filesystem",
    "hdfs": "apache_beam.io.hadoopfilesystem",
    "azfs": "apache_beam.io.azure.blobstoragefilesystem",
}
MODULES = tuple(LAZY.values())  # what a local run's lean import leaves out
_MARK = "_corpusforge_lazy_filesystems"
_LOCK = threading.RLock()
_CALLBACKS: dict[str, list[Callable[[], object]]] = {}
_TRIED: set[str] = set()  # schemes whose import was attempted here (a failed one is not retried)


def _loaded(scheme: str) -> bool:
    return LAZY[scheme] in sys.modules


def load(scheme: str) -> bool:
    """Import the filesystem of ``scheme`` (once) and run its :func:`on_load` callbacks; True when
    its module is imported. A failed import is logged as Beam logs it and not retried."""
    if scheme not in LAZY:
        return False
    with _LOCK:
        if not _loaded(scheme) and scheme not in _TRIED:
            _TRIED.add(scheme)
            try:
                importlib.import_module(LAZY[scheme])
            except ModuleNotFoundError:
                pass  # its libraries are not installed: Beam reports the path it cannot serve
            except ImportError as exc:
                LOG.warning("Failed to import the %s:// filesystem (%s): %s", scheme, LAZY[scheme], exc)
        if not _loaded(scheme):
            return False
        for callback in _CALLBACKS.pop(scheme, []):
            callback()
        return True


def on_load(scheme: str, callback: Callable[[], object]) -> None:
    """Run ``callback`` once the filesystem of ``scheme`` is imported (now, if it is)."""
    with _LOCK:
        if _loaded(scheme):
            callback()
        else:
            _CALLBACKS.setdefault(scheme, []).append(callback)


def install() -> None:
    """Make ``FileSystems`` import a left-out filesystem on the first path of its scheme (idempotent)."""
    from apache_beam.io.filesystems import FileSystems

    with _LOCK:
        current = FileSystems.get_filesystem
        if getattr(current, _MARK, False):
            return

        def get_filesystem(path: str) -> object:
            scheme = FileSystems.get_scheme(path)
            if scheme in LAZY and (not _loaded(scheme) or scheme in _CALLBACKS):
                load(scheme)
            return current(path)

        setattr(get_filesystem, _MARK, True)
        get_filesystem.__doc__ = current.__doc__
        FileSystems.get_filesystem = staticmethod(get_filesystem)
