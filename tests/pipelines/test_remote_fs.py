"""Inputs and outputs on s3://, against moto's S3 server on loopback through Beam's S3 filesystem.

One server for the module; the sample is uploaded once. The pipeline runs twice (a larger earlier
run, then an --overwrite run with fewer shards over it); everything else fails before a pipeline runs.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import IN_PROCESS, REPO, SAMPLE_DIR, stages_off

boto3 = pytest.importorskip("boto3", reason="boto3 (apache-beam[aws]) is needed for s3:// paths")
pytest.importorskip("moto", reason="moto[server] is needed for the S3 server")

# S3 server processes (one denies every request), then runs on them: out of the fast loop; `-m "not engine"`
# skips them locally
pytestmark = [pytest.mark.slow, pytest.mark.engine]

BUCKET = "corpus"
KEY_ID = SECRET = "testing"
SAMPLE_FILES = sorted(p.name for p in SAMPLE_DIR.glob("*.jsonl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """moto's standalone server on 127.0.0.1; skips, saying why, when it does not come up."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "INITIAL_NO_AUTH_ACTION_COUNT"} | (env_extra or {})
    log = tempfile.TemporaryFile()  # not a pipe: moto logs every request, a full pipe would block it
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.skip(f"moto_server exited at start: {log.read().decode(errors='replace')[-300:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.skip("moto_server did not listen on 127.0.0.1 within 30 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def s3_args(port: int, key: str = KEY_ID) -> list[str]:
    """Beam pipeline options for the loopback server, as a user passes them to the CLI."""
    return [
        f"--s3_endpoint_url=http://127.0.0.1:{port}",
        f"--s3_access_key_id={key}",
        f"--s3_secret_access_key={SECRET}",
        "--s3_region_name=us-east-1",
    ]


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[object, int]]:
    """(boto3 client, port): a bucket holding the sample under in/sample/ and a decoy beside it."""
    proc, port = _start_moto()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        for name in SAMPLE_FILES:
            client.upload_file(str(SAMPLE_DIR / name), BUCKET, f"in/sample/{name}")
        # same prefix without the "/": not part of the folder in/sample
        client.put_object(Bucket=BUCKET, Key="in/sample_decoy.jsonl", Body=b'{"id": "x", "text": "decoy"}\n')
        yield client, port
    finally:
        _stop(proc)


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def cli(*args: str, fails_early: bool = False) -> tuple[int, str]:
    """Run the corpusforge CLI in a fresh process (as a user does): (exit status, stderr).

    ``fails_early``: the run is expected to stop in the driver, at its output or input check, before
    any pipeline: the warm SDK workers the CLI starts beside the driver (one per core, ~1 s of CPU each
    importing Beam, then killed) are switched off, as they cannot change what the driver reports.
    That a failed run leaves none behind is tests/pipelines/local/test_warm.py's to check."""
    exe = Path(sys.executable).with_name("corpusforge")
    env = dict(os.environ, CORPUSFORGE_WARM_WORKERS="0") if fails_early else None
    done = subprocess.run([str(exe), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stderr


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("corpusforge: error:")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("spelling", ["in/sample", "in/sample/", "in/sample/*.jsonl", "in/sample/pii.jsonl"])
def test_input_spellings_find_the_files(s3, spelling: str) -> None:
    """A folder with or without "/", a glob and a single file: the files a local path would give."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    from corpusforge.transforms.io.read import discover_inputs

    _, port = s3
    FileSystems.set_options(PipelineOptions(s3_args(port)))
    files, missing = discover_inputs([f"s3://{BUCKET}/{spelling}"])
    assert missing == []
    expected = ["pii.jsonl"] if spelling.endswith("pii.jsonl") else SAMPLE_FILES
    assert [f.path for f in files] == [f"s3://{BUCKET}/in/sample/{n}" for n in expected]
    assert [f.size for f in files] == [(SAMPLE_DIR / n).stat().st_size for n in expected]


def test_missing_bucket_fails_naming_the_path(s3, tmp_path) -> None:
    _, port = s3
    rc, err = cli(
        "run",
        "--input",
        str(SAMPLE_DIR),
        "--output",
        "s3://no-such-bucket/out",
        *s3_args(port),
        fails_early=True,
    )
    assert rc == 2
    line = error_line(err)
    assert "s3://no-such-bucket/out" in line and "NoSuchBucket" in line
    rc, err = cli(
        "run",
        "--input",
        "s3://no-such-bucket/in",
        "--output",
        str(tmp_path / "out"),
        *s3_args(port),
        fails_early=True,
    )
    assert rc == 2 and "s3://no-such-bucket/in" in error_line(err)
    assert not (tmp_path / "out").exists()


def test_denied_access_fails_before_deleting(tmp_path) -> None:
    """moto checking credentials (none is known to it): every request is denied with 403."""
    proc, port = _start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        rc, err = cli(
            "run",
            "--input",
            str(SAMPLE_DIR),
            "--output",
            f"s3://{BUCKET}/out",
            "--overwrite",
            *s3_args(port, key="AKIAWRONGKEY"),
            fails_early=True,
        )
    finally:
        _stop(proc)
    assert rc == 2
    line = error_line(err)
    assert f"s3://{BUCKET}/out" in line and "403" in line


def _parquet_ids(client, prefix: str) -> list[str]:
    import pyarrow.parquet as pq

    ids: list[str] = []
    for key in keys(client, prefix):
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        ids += pq.read_table(io.BytesIO(body), columns=["id"]).column("id").to_pylist()
    return sorted(ids)


@pytest.fixture(scope="module")
def runs(s3):
    """A larger earlier run (runner sharding: several shards), a refused rerun, an --overwrite run
    with one shard per output (fixed sharding); listings and ids after each."""
    client, port = s3
    # Beam's S3 filesystem is under test, not the stages: only those writing what is checked here
    # (sequences/, report.html) stay on
    only = stages_off("normalize", "tokenize", "report")
    common = ["--config", "configs/sample.yaml", *only, *s3_args(port)]
    out = f"s3://{BUCKET}/out"
    first = cli(
        "run",
        "--input",
        f"s3://{BUCKET}/in/sample",
        "--output",
        out,
        "--set",
        "output.sharding=runner",
        "--workers",
        "2",  # worker processes reading and writing s3:// with the options the CLI passes them
        *common,
    )
    before = keys(client, "out/")
    first_ids = _parquet_ids(client, "out/documents/")
    refused = cli(
        "run",
        "--input",
        f"s3://{BUCKET}/in/sample/",
        "--output",
        out,
        "--workers",
        "2",
        *common,
        fails_early=True,
    )
    after_refused = keys(client, "out/")
    second = cli(
        "run",
        "--input",
        f"s3://{BUCKET}/in/sample/*.jsonl",
        "--output",
        out,
        "--overwrite",
        "--set",
        "output.sharding=fixed",
        # the driver's listing and deleting are under test here: the pipeline runs in the CLI's
        # process (no SDK worker start-up, each worker's boto3 import and its own S3 clients)
        "--workers",
        "1",
        IN_PROCESS,
        *common,
    )
    stats = json.loads(client.get_object(Bucket=BUCKET, Key="out/stats.json")["Body"].read())
    return {
        "first": first,
        "before": before,
        "first_ids": first_ids,
        "refused": refused,
        "after_refused": after_refused,
        "second": second,
        "after": keys(client, "out/"),
        "ids": _parquet_ids(client, "out/documents/"),
        "stats": stats,
    }


@pytest.mark.slow
def test_run_on_s3_writes_every_output(runs) -> None:
    assert runs["first"][0] == 0, runs["first"][1][-3000:]
    entries = {k.split("/")[1] for k in runs["before"]}
    assert {"documents", "rejected", "sequences", "stats.json", "report.html"} <= entries
    assert not any("_corpusforge_write_check" in k for k in runs["before"])
    assert len(runs["first_ids"]) > 0


@pytest.mark.slow
def test_rerun_without_overwrite_is_refused_and_touches_nothing(runs) -> None:
    rc, err = runs["refused"]
    assert rc == 2 and "already holds a run" in error_line(err) and f"s3://{BUCKET}/out" in error_line(err)
    assert runs["after_refused"] == runs["before"]


@pytest.mark.slow
def test_overwrite_leaves_no_stale_shard(runs) -> None:
    rc, err = runs["second"]
    assert rc == 0, err[-3000:]
    old_docs = [k for k in runs["before"] if k.startswith("out/documents/")]
    new_docs = [k for k in runs["after"] if k.startswith("out/documents/")]
    assert len(old_docs) > len(new_docs) == 1  # the earlier run was larger: stale shards were possible
    for folder in ("documents", "rejected"):
        shards = [k for k in runs["after"] if k.startswith(f"out/{folder}/")]
        assert shards and all(k.endswith("-of-00001.parquet") for k in shards), shards
    assert not set(runs["before"]) - set(runs["after"]) - {k for k in runs["before"] if "/part-" in k}
    # the rows: exactly one copy of the same documents, as counted in stats.json
    assert runs["ids"] == runs["first_ids"]
    assert len(runs["ids"]) == len(set(runs["ids"])) == runs["stats"]["kept"]
    assert runs["stats"]["conservation_ok"]
    assert runs["stats"]["outputs"]["documents"]["rows"] == runs["stats"]["kept"]
