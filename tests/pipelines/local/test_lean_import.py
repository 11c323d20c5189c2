"""Lean Beam imports (pipelines/local/lean_import.py): a local run's driver and warm workers import
Beam without pandas and the Google Cloud clients it never uses, which stay importable afterwards,
and without the object-store filesystems, which are imported on the first gs:// or s3:// path
(transforms/io/lazy_filesystems.py); another runner imports Beam as usual; a failing lean import
falls back to the ordinary one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from corpusforge.pipelines.local import lean_import, warm
from tests.helpers import REPO

# what a local run leaves out, where the dev environment has it installed
LEFT_OUT = (
    "pandas",
    "google.cloud.dataflow",
    "google.cloud.bigquery",
    "google.cloud.pubsub",
    "google.cloud.storage",  # gs://, until a gs:// path is used
    "boto3",  # s3://, until an s3:// path is used
)

# the command line's module imported as the console script does it (warm workers off: no processes)
CLI = """
import json, os, sys
os.environ["CORPUSFORGE_WARM_WORKERS"] = "0"
sys.argv = ["corpusforge", *json.loads(sys.argv[1])]
import corpusforge.pipelines.cli
loaded = [m for m in {left_out!r} if m in sys.modules]
from apache_beam.io.filesystems import FileSystems
# every filesystem is found by its paths (imported then, where it was left out); s3:// with the
# shared boto3 client (transforms/io/s3_clients.py)
def served(path):
    try:
        return type(FileSystems.get_filesystem(path)).__name__
    except Exception as exc:  # a filesystem whose library is missing (hdfs, azure)
        return type(exc).__name__
found = [served(p) for p in ("s3://b/k", "gs://b/k", "/tmp/x", "hdfs://h/k", "azfs://a/c/k")]
from apache_beam.io.aws.clients.s3 import boto3_client
found.append(boto3_client.Client.__name__)
import pandas  # a later import of a left-out module works as usual
print(json.dumps([loaded, found]))
"""


def _installed() -> list[str]:
    import importlib.util

    return [m for m in LEFT_OUT if importlib.util.find_spec(m) is not None]


def _loaded_by_cli(argv: list[str]) -> tuple[list[str], list[str]]:
    """The left-out modules the command line's import loaded; then the filesystem (or the error)
    that serves an s3://, gs://, local, hdfs:// and azfs:// path, and the S3 client class."""
    proc = subprocess.run(
        [sys.executable, "-c", CLI.format(left_out=LEFT_OUT), json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    loaded, found = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded, found


needs_optional = pytest.mark.skipif(
    "pandas" not in _installed(), reason="pandas is not installed: nothing to leave out"
)


# an interpreter that imports Beam (~2 s of CPU): the full suite only
@pytest.mark.slow
@needs_optional
def test_a_local_runs_driver_imports_beam_without_cloud_clients_yet_finds_every_filesystem():
    loaded, found = _loaded_by_cli(["run", "--input", "x", "--output", "y"])
    _, usual = _loaded_by_cli(["run", "--input", "x", "--runner", "DataflowRunner"])
    assert loaded == []  # not even google.cloud.storage or boto3 before a remote path is used
    assert found == usual  # every path served as by the usual import (or failing as it fails)
    assert found[:3] == ["S3FileSystem", "GCSFileSystem", "LocalFileSystem"]
    assert found[-1] == "SharedS3Client"


# an interpreter that imports Beam (~2 s of CPU): the full suite only
@pytest.mark.slow
@needs_optional
def test_another_runner_imports_beam_as_usual():
    loaded, _ = _loaded_by_cli(["run", "--input", "x", "--output", "y", "--runner", "DataflowRunner"])
    assert loaded == _installed()


# an interpreter that imports Beam (~2 s of CPU): the full suite only
@pytest.mark.slow
@needs_optional
def test_a_warm_workers_imports_leave_them_out_too():
    script = (
        "import json, sys\n"
        "from corpusforge.pipelines.local import lean_import, warm\n"
        "assert lean_import.import_lean(warm.PRELOAD)\n"
        "from apache_beam.runners.worker import sdk_worker_main\n"
        f"loaded = [m for m in {LEFT_OUT!r} if m in sys.modules]\n"
        "from apache_beam.io.filesystems import FileSystems\n"  # a worker reading s3:// still can
        "print(json.dumps([loaded, type(FileSystems.get_filesystem('s3://b/k')).__name__]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [[], "S3FileSystem"]


def test_a_failing_lean_import_is_undone(tmp_path, monkeypatch):
    # a module that imports a left-out one without guarding it: the lean import fails, leaves no trace
    (tmp_path / "lean_dep.py").write_text("VALUE = 1\n")
    (tmp_path / "needs_lean_dep.py").write_text("from lean_dep import VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not lean_import.import_lean(["needs_lean_dep"], names=["lean_dep"])
    assert "needs_lean_dep" not in sys.modules and "lean_dep" not in sys.modules
    assert not any(isinstance(f, lean_import._LeftOut) for f in sys.meta_path)
    import needs_lean_dep  # the ordinary import now works

    assert needs_lean_dep.VALUE == 1
    for name in ("needs_lean_dep", "lean_dep"):
        sys.modules.pop(name, None)


def test_left_out_names_and_their_submodules_only(tmp_path, monkeypatch):
    package = tmp_path / "lean_pkg"
    (package / "gone").mkdir(parents=True)
    for init in (package / "__init__.py", package / "gone" / "__init__.py", package / "kept.py"):
        init.write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with lean_import.left_out(["lean_pkg.gone"]):
            with pytest.raises(ModuleNotFoundError):
                __import__("lean_pkg.gone.sub")
            __import__("lean_pkg.kept")  # a sibling is not left out
        __import__("lean_pkg.gone")  # and nothing is once the block is over
    finally:
        for name in [m for m in sys.modules if m.startswith("lean_pkg")]:
            del sys.modules[name]


@pytest.mark.parametrize(
    ("argv", "local"),
    [
        (["run", "--input", "x"], True),
        (["run", "--input", "x", "--runner=DirectRunner"], True),
        (["run", "--input", "x", "--incremental"], True),
        (["run", "--input", "x", "--runner", "FlinkRunner"], False),
        (["report", "out"], False),
        ([], False),
    ],
)
def test_local_run(argv, local):
    assert warm.local_run(argv) is local
