"""Beam's s3:// filesystem shares one boto3 client per process and set of S3 options
(transforms/io/s3_clients.py), against moto's in-process S3: every operation a run makes (create,
list, exists, size, open, copy, rename, delete) once, counting the boto3 clients built."""

from __future__ import annotations

import pytest

boto3 = pytest.importorskip("boto3", reason="boto3 (apache-beam[aws]) is needed for s3:// paths")
moto = pytest.importorskip("moto", reason="moto is needed for the in-process S3")

from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from corpusforge.transforms.io import s3_clients  # noqa: E402

BUCKET = "corpus"
OPTIONS = ["--s3_access_key_id=testing", "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"]


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 with a bucket, an empty client cache, Beam's filesystems on OPTIONS, and a count
    of the boto3 clients built from then on (Beam builds each through Session.client)."""
    built: list[dict] = []
    real_client = boto3.session.Session.client

    def counting_client(self, *args, **kwargs):
        built.append(kwargs)
        return real_client(self, *args, **kwargs)

    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        monkeypatch.setattr(s3_clients, "_CLIENTS", {})
        monkeypatch.setattr(FileSystems, "_pipeline_options", None)
        FileSystems.set_options(PipelineOptions(OPTIONS))
        monkeypatch.setattr(boto3.session.Session, "client", counting_client)
        yield built


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path) as f:
        f.write(data)


def _read(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def test_every_s3_operation_of_a_process_uses_one_client(s3) -> None:
    assert s3_clients.install()
    a, b = f"s3://{BUCKET}/run/a.jsonl", f"s3://{BUCKET}/run/b.jsonl"
    _write(a, b"alpha\n" * 1000)
    _write(b, b"beta\n" * 1000)
    assert sorted(m.path for m in FileSystems.match([f"s3://{BUCKET}/run/*"])[0].metadata_list) == [a, b]
    assert FileSystems.exists(a) and not FileSystems.exists(f"s3://{BUCKET}/run/c.jsonl")
    assert FileSystems.get_filesystem(a).size(a) == 6000
    FileSystems.copy([a], [f"s3://{BUCKET}/copy/a.jsonl"])
    FileSystems.rename([b], [f"s3://{BUCKET}/moved/b.jsonl"])
    FileSystems.delete([f"s3://{BUCKET}/copy/a.jsonl"])
    assert not FileSystems.exists(b) and not FileSystems.exists(f"s3://{BUCKET}/copy/a.jsonl")
    assert len(s3) == 1, f"{len(s3)} boto3 clients for one set of S3 options"


def test_two_files_read_at_once_keep_their_own_streams(s3) -> None:
    """The download stream stays per opened file: reading two objects in turns gives each its bytes."""
    assert s3_clients.install()
    a, b = f"s3://{BUCKET}/a.txt", f"s3://{BUCKET}/b.txt"
    _write(a, bytes(range(256)) * 64)
    _write(b, bytes(reversed(range(256))) * 64)
    with FileSystems.open(a) as fa, FileSystems.open(b) as fb:
        got_a, got_b = b"", b""
        while chunk := fa.read(1000):
            got_a += chunk
            got_b += fb.read(1000)
    assert got_a == bytes(range(256)) * 64 and got_b == bytes(reversed(range(256))) * 64
    assert len(s3) == 1


def test_other_credentials_or_endpoint_get_their_own_client(s3) -> None:
    """Options decide the client: a second key or endpoint never reuses the first one's client."""
    base = s3_clients.s3_settings(PipelineOptions(OPTIONS))
    other_key = s3_clients.s3_settings(PipelineOptions([*OPTIONS, "--s3_access_key_id=other"]))
    other_endpoint = s3_clients.s3_settings(
        PipelineOptions([*OPTIONS, "--s3_endpoint_url=http://127.0.0.1:9"])
    )
    # the dict spelling Beam's client also accepts reads the same settings
    as_dict = {
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "s3_region_name": "us-east-1",
    }
    assert s3_clients.s3_settings(as_dict) == base
    first = s3_clients.shared_boto3_client(base)
    assert s3_clients.shared_boto3_client(base) is first
    assert s3_clients.shared_boto3_client(other_key) is not first
    assert s3_clients.shared_boto3_client(other_endpoint) is not first
    assert [kw["aws_access_key_id"] for kw in s3] == ["testing", "other", "testing"]
    assert s3[2]["endpoint_url"] == "http://127.0.0.1:9"


def test_install_is_idempotent_and_keeps_beams_client_interface() -> None:
    from apache_beam.io.aws.clients.s3 import boto3_client

    assert s3_clients.install() and s3_clients.install()
    installed = boto3_client.Client
    assert installed.__name__ == "SharedS3Client"
    # one layer over Beam's own class: its request methods (get_range, list, delete...) are Beam's
    assert installed.__mro__[1].__name__ == "Client" and installed.__mro__[1] is not installed
    assert not getattr(installed.__mro__[1], "_corpusforge_shared_client", False)
