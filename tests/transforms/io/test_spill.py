"""The duplicate-id scan's spill of a compressed file's inflated lines (transforms/io/spill.py): each
stripe reads from it exactly the records, positions and counts the stream gives it, the stream is
inflated once per run, and a missing, damaged or unaffordable spill never changes what is read."""

from __future__ import annotations

import collections
import gzip
import json
import os
from pathlib import Path

import apache_beam as beam
import pytest
import zstandard
from apache_beam.testing.util import assert_that

from corpusforge.schemas.config import Config
from corpusforge.transforms.io import read as read_module
from corpusforge.transforms.io import spill as spill_module
from corpusforge.transforms.io.read import PlanReads, ReadTask, TaskReader, discover_inputs
from corpusforge.transforms.io.spill import SpillError, StripeSpill
from corpusforge.transforms.io.unique_ids import ReadValidated, _ScanIdsFn
from corpusforge.transforms.io.validate import RecordParser
from tests.helpers import local_test_pipeline

TINY_MB = 1e-6  # as many stripes as allowed

# what a stripe's read must reproduce: blank and whitespace-only lines (counted, not records), CRLF
# line ends, a line that is not JSON, a duplicate id, non-ASCII text, and no newline after the last line
LINES = [
    json.dumps({"id": "a", "text": "first"}),
    "",
    json.dumps({"id": "b", "text": "windows line"}) + "\r",
    "   ",
    "not json at all",
    json.dumps({"id": "a", "text": "the same id again"}),
    json.dumps({"id": "c", "text": "naïve café — ünïcödé"}),
    "\t",
    *(json.dumps({"id": f"n{i}", "text": f"record {i} " + "word " * (i % 7)}) for i in range(40)),
]
PAYLOAD = "\n".join(LINES).encode()  # no final newline
COMPRESSORS = {"a.jsonl.gz": gzip.compress, "a.jsonl.zst": lambda b: zstandard.ZstdCompressor().compress(b)}


class Counted:
    """The counters a TaskReader increments, as a dict."""

    def __init__(self) -> None:
        self.seen: collections.Counter = collections.Counter()

    def inc(self, name: str, n: int = 1) -> None:
        self.seen[name] += n


@pytest.fixture
def opened(monkeypatch) -> list:
    """Every compressed stream opened (an inflation) by the readers of this process."""
    calls: list = []
    real = read_module.open_stream

    def counting(f):
        if f.compression != "none":
            calls.append(f.path)
        return real(f)

    monkeypatch.setattr(read_module, "open_stream", counting)
    return calls


def compressed_file(tmp_path: Path, name: str, payload: bytes = PAYLOAD):
    path = tmp_path / name
    path.write_bytes(COMPRESSORS[name](payload))
    (file,), _ = discover_inputs([str(path)])
    return file


def scan_with_spill(file, stripes: int, folder: Path) -> list[str]:
    spill = StripeSpill(str(folder), stripes)
    list(TaskReader().all_stripes(ReadTask(file, 0, -1, 0, stripes), spill))
    return spill.finish()


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@pytest.mark.parametrize("stripes", [1, 3])
def test_each_stripe_reads_from_its_spill_what_it_reads_from_the_stream(tmp_path, opened, name, stripes):
    file = compressed_file(tmp_path, name)
    paths = scan_with_spill(file, stripes, tmp_path / "spill")
    assert len(paths) == stripes and opened == [file.path]
    totals = collections.Counter()
    for k, path in enumerate(paths):
        task = ReadTask(file, 0, -1, k, stripes)
        from_stream, stream_counts = Counted(), Counted()
        expected = list(TaskReader(stream_counts).records(task))
        got = list(TaskReader(from_stream).records(task, path))
        assert got == expected and expected, k
        assert from_stream.seen == stream_counts.seen, k
        assert not os.path.exists(path), "a spill is deleted once read"
        totals += from_stream.seen
    # the stream reads above opened it once per stripe; the spilled reads opened nothing
    assert len(opened) == 1 + stripes
    assert totals["in"] == sum(1 for line in LINES if line.strip()) and totals["blank_lines"] == 3


def test_a_missing_spill_reads_the_stream(tmp_path):
    file = compressed_file(tmp_path, "a.jsonl.gz")
    task = ReadTask(file, 0, -1, 1, 2)
    missing = str(tmp_path / "never-written.spill")
    assert list(TaskReader().records(task, missing)) == list(TaskReader().records(task))


@pytest.mark.parametrize("damage", ["cut inside a record", "cut inside the footer", "wrong count"])
def test_a_damaged_spill_is_an_error_naming_it_never_fewer_records(tmp_path, damage):
    file = compressed_file(tmp_path, "a.jsonl.gz")
    (path,) = scan_with_spill(file, 1, tmp_path / "spill")
    data = Path(path).read_bytes()
    if damage == "cut inside a record":
        data = data[: len(data) // 2]
    elif damage == "cut inside the footer":
        data = data[:-3]
    else:  # the footer's count says one record more than the file holds
        count = int.from_bytes(data[-8:], "little")
        data = data[:-8] + (count + 1).to_bytes(8, "little")
    Path(path).write_bytes(data)
    with pytest.raises(SpillError, match=str(path)):
        list(TaskReader().records(ReadTask(file, 0, -1, 0, 1), path))


def test_a_truncated_stream_leaves_no_spill_and_hands_none_on(tmp_path):
    whole = b"".join(b'{"id": "t%d", "text": "record number %d"}\n' % (i, i) for i in range(2000))
    path = tmp_path / "truncated.jsonl.gz"
    path.write_bytes(gzip.compress(whole)[:-30])
    (file,), _ = discover_inputs([str(path)])
    folder = tmp_path / "spill"
    scan = _ScanIdsFn(RecordParser(), skip_unreadable=True, spill_dir=str(folder))
    scan.setup()
    out = list(scan.process(ReadTask(file, 0, -1, 0, 2)))
    assert out and not any(isinstance(e, beam.pvalue.TaggedOutput) for e in out)
    assert list(folder.iterdir()) == []  # neither a finished nor a temporary spill is left


def test_a_disk_down_to_its_reserve_gets_no_spill(tmp_path, monkeypatch, caplog):
    file = compressed_file(tmp_path, "a.jsonl.gz")
    room = [spill_module.CHECK_EVERY_BYTES * 10]
    monkeypatch.setattr(spill_module, "disk_room", lambda folder: room[0])
    monkeypatch.setattr(spill_module, "CHECK_EVERY_BYTES", 64)  # look at the disk every 64 bytes
    spill = StripeSpill(str(tmp_path / "spill"), 2)
    lines = iter(TaskReader().all_stripes(ReadTask(file, 0, -1, 0, 2), spill))
    first = next(lines)
    room[0] = 0  # the disk filled up meanwhile
    scanned = [first, *lines]
    assert len(scanned) == sum(1 for line in LINES if line.strip())  # the scan itself went on
    assert spill.finish() == [] and list((tmp_path / "spill").iterdir()) == []
    assert "reserve" in caplog.text


def _outcomes(files, spill_dir: str | None, sink: Path) -> list:
    """Every document and rejection a fused read + validate gives, sorted, from an in-process run."""
    with local_test_pipeline() as p:
        tasks, _ = p | PlanReads(files, compressed_split_mb=TINY_MB, workers=3)
        docs, rejected, unreadable = tasks | ReadValidated(RecordParser(), False, spill_dir)
        rows = (
            docs | "D" >> beam.Map(lambda d: ("kept", d.id, d.text)),
            rejected | "R" >> beam.Map(lambda r: ("rejected", r.doc.id, r.doc.text, r.rejection.reason)),
            unreadable | "U" >> beam.Map(lambda u: ("unreadable", u.path)),
        ) | beam.Flatten()
        assert_that(rows | beam.combiners.ToList(), lambda got: sink.write_text(json.dumps(sorted(got[0]))))
    return json.loads(sink.read_text())


def test_a_run_inflates_each_compressed_file_once_with_the_same_outcome(tmp_path, opened):
    files = [compressed_file(tmp_path, name) for name in sorted(COMPRESSORS)]
    plain = tmp_path / "b.jsonl"
    plain.write_text("\n".join(json.dumps({"id": f"p{i}", "text": f"plain {i}"}) for i in range(5)) + "\n")
    files += discover_inputs([str(plain)])[0]
    inflating = _outcomes(files, None, tmp_path / "inflating.json")
    inflations_without = len(opened)
    opened.clear()
    folder = tmp_path / "out" / "_run" / "work" / "read"
    spilled = _outcomes(files, str(folder), tmp_path / "spilled.json")
    assert spilled == inflating
    assert any(row[0] == "rejected" for row in spilled) and any(row[0] == "kept" for row in spilled)
    # three stripes per compressed file: 1 + 3 inflations each without the spill, 1 with it
    assert inflations_without == 2 * (1 + 3)
    assert sorted(opened) == sorted(f.path for f in files[:2])
    assert list(folder.iterdir()) == []  # every spill read and deleted


def test_the_spill_folder_is_the_runs_work_folder_only_for_a_local_output_on_the_local_runner():
    from corpusforge.pipelines.build import spill_dir

    cfg = Config()
    assert cfg.input.spill_inflated
    assert spill_dir(cfg, "/data/out", local_runner=True) == "/data/out/_run/work/read"
    for store in ("gs://bucket/out", "s3://b/out"):
        assert spill_dir(cfg, store, local_runner=True) is None
    # a cluster's workers each see their own disk under a local path: no spill left on a worker machine
    assert spill_dir(cfg, "/data/out", local_runner=False) is None
    off = cfg.model_copy(update={"input": cfg.input.model_copy(update={"spill_inflated": False})})
    assert spill_dir(off, "/data/out", local_runner=True) is None


def test_a_graph_for_a_cluster_runner_scans_ids_without_a_spill(tmp_path):
    """What the Flink, Spark and Dataflow graphs get: the id scan's DoFn carries no spill folder."""
    from corpusforge.pipelines.build import build_pipeline

    corpus = tmp_path / "in.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("\n".join(LINES[:1]) + "\n")
    files, _ = discover_inputs([str(corpus)])
    folders = {}
    for local in (True, False):
        p = beam.Pipeline()
        build_pipeline(p, Config(), files, str(tmp_path / f"out-{local}"), local_runner=local, workers=2)
        scans = _scan_fns(p)
        assert len(scans) == 1
        folders[local] = scans[0].spill_dir
    assert folders == {True: str(tmp_path / "out-True" / "_run" / "work" / "read"), False: None}


def _scan_fns(p: beam.Pipeline) -> list[_ScanIdsFn]:
    """The id scan DoFns of ``p``'s graph (Beam's own walk of every applied transform)."""
    found: list[_ScanIdsFn] = []

    class FindScans(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node) -> None:  # noqa: ANN001 - Beam's AppliedPTransform
            dofn = getattr(node.transform, "dofn", None)
            if isinstance(dofn, _ScanIdsFn):
                found.append(dofn)

    p.visit(FindScans())
    return found
