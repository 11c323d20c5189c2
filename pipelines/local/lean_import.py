"""Import Beam for a local run without the optional modules a local run never uses.

Why: ``import apache_beam`` imports whatever optional library happens to be installed beside it,
each inside a ``try: ... except ImportError``: pandas (for pandas batch types in
``apache_beam.typehints``), the Dataflow API client (``apache_beam.runners.dataflow``), BigQuery
and Pub/Sub (``apache_beam.io``). Where the ``gcp`` extra or pandas is installed (the dev
environment has both) that is ~600 more modules and 0.4-0.8 s of CPU in the driver and again in
every local SDK worker, all before the first stage runs, on a machine whose cores the driver and
the workers share. A local corpusforge run uses none of them (no pandas batch types, no Dataflow
job, no BigQuery or Pub/Sub I/O).

How: while the given modules are imported, a finder first in ``sys.meta_path`` answers
``ModuleNotFoundError`` for :data:`OPTIONAL` (and their submodules), which is exactly what Beam sees
when they are not installed: it takes its own ``except ImportError`` branch. The finder is removed
right after, so a later ``import pandas`` (a user's code, a test) works as usual. The object-store
filesystems (:data:`FILESYSTEMS`: ``gs://``, ``s3://``...) are left out too but stay usable: a local
run may read and write object stores, so each is imported on the first path of its scheme
(``transforms/io/lazy_filesystems.py``, installed by :func:`import_lean`). Should an
import fail with the modules left out (a Beam release that no longer guards one of them), what it
imported is dropped and the same modules are imported again as usual: only start-up time is at stake.

Only the command line's local runs (``pipelines/cli.py``) and the local warm workers
(``pipelines/local/warm.py``) import this way; standard library only (it runs before Beam).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

# Imported by Beam only inside ``try/except ImportError``, and used by no local corpusforge run.
OPTIONAL = (
    "pandas",  # apache_beam.typehints: pandas batch-type conversions
    "google.cloud.dataflow",  # apache_beam.runners.dataflow: the Dataflow job API client
    "apache_beam.io.gcp.bigquery",  # apache_beam.io: BigQuery I/O (and, in the same try, Pub/Sub)
    "apache_beam.io.gcp.pubsub",
)
# Beam's object-store filesystems (gs://, s3://, hdfs://, azfs://): left out at start and imported on
# the first path of their scheme (transforms/io/lazy_filesystems.py, whose MODULES this repeats: this
# module runs before Beam and cannot import it; a test holds the two equal). GCS alone pulls in
# google.cloud.storage and oauth, S3 boto3: ~0.4 s of a local run's start on local files.
FILESYSTEMS = (
    "apache_beam.io.gcp.gcsfilesystem",
    "apache_beam.io.aws.s3filesystem",
    "apache_beam.io.hadoopfilesystem",
    "apache_beam.io.azure.blobstoragefilesystem",
)
LAZY_HOOK = "corpusforge.transforms.io.lazy_filesystems"


class _LeftOut(importlib.abc.MetaPathFinder):
    """Answers "not installed" for ``names`` and their submodules."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        for name in self.names:
            if fullname == name or fullname.startswith(name + "."):
                raise ModuleNotFoundError(
                    f"No module named {fullname!r} (left out: lean_import)", name=fullname
                )
        return None


@contextmanager
def left_out(names: Iterable[str] = OPTIONAL + FILESYSTEMS) -> Iterator[None]:
    """While the block runs, importing any of ``names`` fails as if it were not installed."""
    finder = _LeftOut(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_lean(modules: Sequence[str], names: Iterable[str] = OPTIONAL + FILESYSTEMS) -> bool:
    """Import ``modules`` with ``names`` left out; True if that worked. Otherwise the modules it
    imported are dropped from ``sys.modules``, the finder is gone, and the caller's own imports run
    as usual (False). When filesystems were left out, the hook that imports them on their first
    path is installed before this returns, so no ``FileSystems`` call can miss them."""
    names = tuple(names)
    before = set(sys.modules)
    try:
        with left_out(names):
            for module in modules:
                importlib.import_module(module)
        if "apache_beam.io.filesystems" in sys.modules and any(n in FILESYSTEMS for n in names):
            importlib.import_module(LAZY_HOOK).install()
        return True
    except Exception:  # noqa: BLE001 - any failure: fall back to the ordinary import
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return False
