"""gs:// paths against gcp-storage-emulator (PyPI) on loopback, through Beam's GCS client.

Beam's GCS client connects anonymously when no Google credentials are found, and the
google-cloud-storage library sends every request to ``STORAGE_EMULATOR_HOST`` when it is set. No
pipeline runs here (the S3 tests run the sample end to end): input discovery and the output
preparation that ``--overwrite`` relies on are what differ between filesystems.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SAMPLE_DIR

storage = pytest.importorskip(
    "google.cloud.storage", reason="google-cloud-storage (apache-beam[gcp]) is needed"
)

# an emulator process and Beam's GCS client retrying against it: out of the fast loop; `-m "not engine"`
# skips them locally
pytestmark = [pytest.mark.slow, pytest.mark.engine]

BUCKET = "corpus"
SAMPLE_FILES = sorted(p.name for p in SAMPLE_DIR.glob("*.jsonl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs() -> Iterator[object]:
    """A storage client on the emulator, with the sample under gs://corpus/in/sample/."""
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    if not exe.exists():
        pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    try:
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                pytest.skip("gcp-storage-emulator exited at start")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.skip("gcp-storage-emulator did not listen on 127.0.0.1 within 30 s")
                time.sleep(0.2)
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        client = storage.Client.create_anonymous_client()
        client.create_bucket(BUCKET)
        bucket = client.bucket(BUCKET)
        for name in SAMPLE_FILES:
            bucket.blob(f"in/sample/{name}").upload_from_filename(str(SAMPLE_DIR / name))
        bucket.blob("in/sample_decoy.jsonl").upload_from_string(b'{"id": "x", "text": "decoy"}\n')
        from apache_beam.internal.gcp import auth
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions([]))
        # Without credentials Beam's GCS client retries Google's default-credential lookup with
        # exponential back-off (~22 s idle) and then connects anonymously, as the emulator wants.
        # Credential discovery is not under test here: start from its end state, anonymous.
        saved_auth = (auth._Credentials._credentials_init, auth._Credentials._credentials)
        auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
        try:
            yield client
        finally:
            auth._Credentials._credentials_init, auth._Credentials._credentials = saved_auth
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def names(client, prefix: str) -> list[str]:
    return sorted(b.name for b in client.list_blobs(BUCKET, prefix=prefix))


@pytest.mark.parametrize("spelling", ["in/sample", "in/sample/", "in/sample/*.jsonl", "in/sample/pii.jsonl"])
def test_input_spellings_find_the_files(gcs, spelling: str) -> None:
    from corpusforge.transforms.io.read import discover_inputs

    files, missing = discover_inputs([f"gs://{BUCKET}/{spelling}"])
    assert missing == []
    expected = ["pii.jsonl"] if spelling.endswith("pii.jsonl") else SAMPLE_FILES
    assert [f.path for f in files] == [f"gs://{BUCKET}/in/sample/{n}" for n in expected]


def test_overwrite_removes_every_shard_of_an_earlier_run_and_nothing_else(gcs) -> None:
    from corpusforge.pipelines.cli import UsageError, prepare_output

    bucket = gcs.bucket(BUCKET)
    earlier = [f"run/{d}/part-0000{i}-of-00004.parquet" for d in ("documents", "rejected") for i in range(4)]
    for name in [*earlier, "run/sequences/bucket=512/part-00000-of-00001.parquet", "run/stats.json"]:
        bucket.blob(name).upload_from_string(b"earlier run")
    bucket.blob("run/notes.txt").upload_from_string(b"not ours")
    bucket.blob("run/documents_v1.txt").upload_from_string(b"not ours either")
    with pytest.raises(UsageError, match="already holds a run .documents, rejected, sequences, stats.json"):
        prepare_output(f"gs://{BUCKET}/run", overwrite=False)
    assert len(names(gcs, "run/")) == 12
    prepare_output(f"gs://{BUCKET}/run/", overwrite=True)
    assert names(gcs, "run/") == ["run/documents_v1.txt", "run/notes.txt"]  # the write check is gone too


def test_missing_bucket_fails_naming_the_path(gcs) -> None:
    from corpusforge.pipelines.cli import UsageError, prepare_output
    from corpusforge.transforms.io.read import discover_inputs

    with pytest.raises(UsageError, match="gs://no-such-bucket/out"):
        prepare_output("gs://no-such-bucket/out", overwrite=True)
    files, missing = discover_inputs(["gs://no-such-bucket/in"])
    assert files == [] and [m.path for m in missing] == ["gs://no-such-bucket/in"]
