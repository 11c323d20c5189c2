"""Compressed JSONL read in stripes: several tasks per .gz/.zst file, the same records as one task."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import apache_beam as beam
import pytest
import zstandard
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.transforms.io.read import (
    MAX_STRIPES,
    MIN_STRIPES,
    PlanReads,
    ReadDocuments,
    discover_inputs,
    iter_lines,
    stripe_count,
)
from tests.helpers import STAGES_OFF

TINY_MB = 1e-6  # one stripe per byte: as many stripes as allowed
LINES = [json.dumps({"id": f"r{i}", "text": f"document {i} " + "word " * (i % 5)}) for i in range(50)]
# blank lines are not records: they must be counted once too, whichever stripe owns them
PAYLOAD = ("\n".join(LINES[:20]) + "\n\n" + "\n".join(LINES[20:]) + "\n").encode()

COMPRESSORS = {
    "a.jsonl.gz": gzip.compress,
    "a.jsonl.zst": lambda b: zstandard.ZstdCompressor().compress(b),
}


def expected_records(path: str) -> list[tuple[str, int, bytes]]:
    """What one task reads: every non-blank line at its offset in the decompressed stream."""
    return [(path, off, line.rstrip(b"\n")) for off, line in iter_lines(io.BytesIO(PAYLOAD)) if line.strip()]


def test_stripe_count_is_bounded_and_at_least_two():
    mb = 1 << 20
    assert stripe_count(100, 8 * mb) == MIN_STRIPES == 2  # a small file still feeds two workers
    assert stripe_count(25 * mb, 8 * mb) == 4
    assert stripe_count(10_000 * mb, 8 * mb) == MAX_STRIPES
    assert stripe_count(10_000 * mb, None) == 1


def test_stripes_are_capped_by_the_workers_that_can_run_them():
    """Every stripe inflates the whole stream: more stripes than workers only repeat that."""
    mb = 1 << 20
    assert stripe_count(122 * mb, 8 * mb, workers=2) == 2  # was 8: 8 inflations per read
    assert stripe_count(122 * mb, 8 * mb, workers=1) == 1  # one worker: no stripes at all
    assert stripe_count(100, 8 * mb, workers=1) == 1
    assert stripe_count(25 * mb, 8 * mb, workers=16) == 4  # the size still rules below the cap
    assert stripe_count(10_000 * mb, 8 * mb, workers=64) == MAX_STRIPES


def test_the_id_scan_inflates_a_striped_file_once(tmp_path, monkeypatch):
    """The duplicate-id scan reads a striped file whole from its stripe 0 task, each record keyed by
    the stripe that reads it; the other stripes' scan tasks open nothing."""
    from corpusforge.transforms.io import read as read_module
    from corpusforge.transforms.io.read import ReadTask
    from corpusforge.transforms.io.unique_ids import _ScanIdsFn
    from corpusforge.transforms.io.validate import RecordParser

    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(PAYLOAD))
    (file,), _ = discover_inputs([str(path)])
    opened = []
    real_open = read_module.open_stream
    monkeypatch.setattr(read_module, "open_stream", lambda f: opened.append(f) or real_open(f))
    scan = _ScanIdsFn(RecordParser(), skip_unreadable=False)
    scan.setup()
    stripes = 3
    out = [e for k in range(stripes) for e in scan.process(ReadTask(file, 0, -1, k, stripes))]
    assert len(opened) == 1
    numbers = {off: n for n, (off, _) in enumerate(iter_lines(io.BytesIO(PAYLOAD)))}
    expected = [(f"r{i}", off) for i, (_, off, _) in enumerate(expected_records(file.path))]
    assert [(record_id, position) for record_id, (_, position, _) in out] == expected
    assert all(key == (file.path, 0, numbers[pos] % stripes) for _, (_, pos, key) in out)


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_a_compressed_file_in_stripes_gives_the_records_of_one_task(tmp_path, test_pipeline, name):
    path = tmp_path / name
    path.write_bytes(COMPRESSORS[name](PAYLOAD))
    files, _ = discover_inputs([str(path)])
    with test_pipeline as p:
        tasks, _ = p | "Plan" >> PlanReads(files, compressed_split_mb=TINY_MB)
        assert_that(tasks | beam.combiners.Count.Globally(), equal_to([MAX_STRIPES]), label="tasks")
        records, unreadable = p | "Read" >> ReadDocuments(files, compressed_split_mb=TINY_MB)
        assert_that(records, equal_to(expected_records(files[0].path)), label="records")
        assert_that(unreadable, equal_to([]), label="nothing unreadable")


def truncated(tmp_path: Path) -> list:
    path = tmp_path / "truncated.jsonl.gz"
    whole = b"".join(b'{"id": "r%d", "text": "record number %d"}\n' % (i, i) for i in range(2000))
    path.write_bytes(gzip.compress(whole)[:-30])  # the trailer and the last records are lost
    return discover_inputs([str(path)])[0]


def unreadable_outcome(files: list, sink: Path, compressed_split_mb: float | None) -> dict:
    """(records read, the unreadable reports) of a skipping read; the matcher runs in a pickled
    copy, so it writes ``sink``."""
    with beam.Pipeline() as p:
        records, unreadable = p | ReadDocuments(
            files, skip_unreadable=True, compressed_split_mb=compressed_split_mb
        )
        count = records | beam.combiners.Count.Globally() | beam.Map(lambda n: ("count", n))
        reports = unreadable | beam.Map(lambda u: ("unreadable", (u.path, u.records_read)))
        both = (count, reports) | beam.Flatten() | beam.combiners.ToList()
        assert_that(both, lambda got: sink.write_text(json.dumps(sorted(got[0]))))
    got = json.loads(sink.read_text())
    return {
        "count": [v for k, v in got if k == "count"],
        "unreadable": [tuple(v) for k, v in got if k == "unreadable"],
    }


def test_a_truncated_gzip_in_stripes_is_reported_once_as_today(tmp_path):
    files = truncated(tmp_path)
    one_task = unreadable_outcome(files, tmp_path / "one", None)
    striped = unreadable_outcome(files, tmp_path / "striped", TINY_MB)
    assert striped == one_task
    (count,) = striped["count"]
    assert 1900 < count < 2000
    assert striped["unreadable"] == [(files[0].path, count)]  # one report, every stripe's records


def test_a_truncated_gzip_in_stripes_stops_the_run_naming_the_file(tmp_path, test_pipeline):
    files = truncated(tmp_path)
    with pytest.raises(Exception, match="cannot read input file .*truncated.jsonl.gz"):
        with test_pipeline as p:
            p | ReadDocuments(files, compressed_split_mb=TINY_MB)


@pytest.fixture(scope="module")
def striped_run(tmp_path_factory) -> dict:
    """One CLI run, 2 workers, on a good .jsonl.gz and a truncated one, read in the most stripes."""
    from corpusforge.pipelines.cli import main

    base = tmp_path_factory.mktemp("stripes")
    inputs = base / "in"
    inputs.mkdir()
    (inputs / "good.jsonl.gz").write_bytes(gzip.compress(PAYLOAD))
    whole = b"".join(b'{"id": "t%d", "text": "record number %d"}\n' % (i, i) for i in range(2000))
    (inputs / "truncated.jsonl.gz").write_bytes(gzip.compress(whole)[:-30])
    # counting is under test, not the stages: every stage but normalize is off (tests/helpers.py)
    args = [*STAGES_OFF, "--set", f"input.compressed_split_mb={TINY_MB}", "--set", "input.on_unreadable=skip"]
    code = main(["run", "--input", str(inputs), "--output", str(base / "out"), "--workers", "2", *args])
    assert code == 0
    return json.loads((base / "out" / "stats.json").read_text())


@pytest.mark.slow
def test_records_of_a_striped_file_are_counted_once(striped_run):
    stats = striped_run
    assert stats["conservation_ok"]
    (bad,) = stats["unreadable_files"]
    assert bad["path"].endswith("truncated.jsonl.gz") and 1900 < bad["records_read"] < 2000
    assert stats["records_read"] == len(LINES) + bad["records_read"]
    assert stats["kept"] + stats["rejected"] == stats["records_read"]


class _NoCounters:
    def inc(self, name: str, n: int = 1) -> None:
        pass


@pytest.mark.parametrize(
    "fault",
    [EOFError("Compressed file ended before the end-of-stream marker was reached"), gzip.BadGzipFile("bad")],
)
def test_a_later_stripe_leaves_a_stream_fault_to_stripe_0(fault):
    """A fault in the stream's bytes stops every stripe at the same line: stripe 0 alone reports it."""
    from corpusforge.transforms.io.read import InputFile, ReadTask, TaskReader, task_failed

    task = ReadTask(InputFile("in/a.jsonl.gz", 100, "jsonl", "gzip"), stripe=2, stripes=4)
    reader = TaskReader()
    assert list(task_failed(task, fault, True, 7, reader, _NoCounters())) == []


def test_a_later_stripe_reports_an_error_of_its_own_with_its_records():
    """An error that may hit one stripe alone (the filesystem failing a read) is reported by that
    stripe: stripe 0 may have finished, and silence would lose the rest of this stripe's lines."""
    from corpusforge.transforms.io.read import InputFile, ReadTask, TaskReader, task_failed

    task = ReadTask(InputFile("in/a.jsonl.gz", 100, "jsonl", "gzip"), stripe=2, stripes=4)
    reader = TaskReader()
    (out,) = list(task_failed(task, OSError("connection reset"), True, 7, reader, _NoCounters()))
    assert out.value.path == "in/a.jsonl.gz"
    assert "connection reset" in out.value.error and out.value.records_read == 7
    with pytest.raises(Exception, match="cannot read input file in/a.jsonl.gz: OSError: connection reset"):
        list(task_failed(task, OSError("connection reset"), False, 7, reader, _NoCounters()))
