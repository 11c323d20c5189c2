"""Duplicate ids resolved by a second read: rejected in place, no document shuffled, same answers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that

from corpusforge.schemas.records import Document
from corpusforge.transforms.io.read import PlanReads, ReadDocuments, discover_inputs
from corpusforge.transforms.io.unique_ids import ReadValidated
from corpusforge.transforms.io.validate import RecordParser, Validate
from tests.helpers import IN_PROCESS, local_test_pipeline, stages_off, table_rows

A = [
    {"id": "x", "text": "x first in a"},
    {"id": "y", "text": "y unique"},
    {"id": "x", "text": "x again in a"},
    "not json",
    {"id": "z", "text": "z in a, also in b"},
]
B = [{"id": "x", "text": "x in b"}, {"id": "z", "text": "z in b"}, {"id": "w", "text": "w unique"}]


def write_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) if isinstance(r, dict) else r for r in A]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in B) + "\n").encode()))
    return folder


def outcome(doc_or_rejected) -> tuple:
    """What a user sees of a record: id and text kept, or id, text, reason, detail, duplicate_of."""
    if isinstance(doc_or_rejected, Document):
        return ("kept", doc_or_rejected.id, doc_or_rejected.text)
    r = doc_or_rejected.rejection
    return ("rejected", doc_or_rejected.doc.id, doc_or_rejected.doc.text, r.reason, r.detail, r.duplicate_of)


EXPECTED_DUPLICATES = {
    ("x again in a", "x"),
    ("x in b", "x"),
    ("z in b", "z"),
}


@pytest.fixture
def pickled_documents(monkeypatch):
    """How many Documents were encoded (pickled) by the runner: each one crossed a stage boundary."""
    count = [0]
    original = Document.__reduce_ex__

    def counting(self, protocol):
        count[0] += 1
        return original(self, protocol)

    monkeypatch.setattr(Document, "__reduce_ex__", counting)
    return count


def run_outcomes(
    files,
    sink: Path,
    read_validate: bool,
    split_bytes: int | None = None,
    compressed_split_mb: float | None = None,
) -> list:
    """Every record's outcome (sorted); the matcher runs in a pickled copy, so it writes ``sink``."""
    with local_test_pipeline() as p:
        if read_validate:
            plan = PlanReads(files, compressed_split_mb=compressed_split_mb)
            if split_bytes:
                plan.split_bytes = split_bytes
            tasks, _ = p | plan
            docs, rejected, _ = tasks | ReadValidated(RecordParser())
        else:
            records, _ = p | ReadDocuments(files)
            docs, rejected = records | Validate(RecordParser())
        rows = (docs | "K" >> beam.Map(outcome), rejected | "R" >> beam.Map(outcome)) | beam.Flatten()
        assert_that(rows, lambda got: sink.write_text(json.dumps(sorted(got, key=repr))))
    return json.loads(sink.read_text())


@pytest.fixture(scope="module")
def two_files(tmp_path_factory) -> tuple[list, Path, list]:
    """a.jsonl and b.jsonl.gz read by ReadValidated, once for the tests that look at its answers:
    (the files, their folder, every record's outcome)."""
    base = tmp_path_factory.mktemp("two_files")
    folder = write_inputs(base / "in")
    files, _ = discover_inputs([str(folder)])
    return files, folder, run_outcomes(files, base / "out", read_validate=True)


def test_duplicate_ids_are_rejected_in_place_without_shuffling_documents(tmp_path, two_files):
    files, folder, got = two_files
    kept = {(r[1], r[2]) for r in got if r[0] == "kept"}
    assert kept == {("x", "x first in a"), ("y", "y unique"), ("z", "z in a, also in b"), ("w", "w unique")}
    duplicates = [r for r in got if r[0] == "rejected" and r[3] == "invalid:duplicate_id"]
    assert {(r[2], r[5]) for r in duplicates} == EXPECTED_DUPLICATES
    a_path = str(folder / "a.jsonl")
    assert all(r[4].startswith(f"first seen in {a_path} at ") for r in duplicates)
    assert run_outcomes(files, tmp_path / "out", read_validate=False) == got  # Validate's answers


def test_documents_are_not_encoded_on_the_way_to_their_first_stage(tmp_path, pickled_documents):
    """Beam encodes an element where it crosses a shuffle or a stage boundary, and also pickles a
    sample of each edge's elements (a few dozen, fewer and fewer) to estimate their size. A thousand
    documents grouped by id are all encoded; resolved by the second read, only the size samples."""
    folder = tmp_path / "many"
    folder.mkdir()
    for f in range(2):
        rows = (json.dumps({"id": f"d{i % 450}", "text": f"document {i} of file {f}"}) for i in range(500))
        (folder / f"f{f}.jsonl").write_text("\n".join(rows) + "\n")
    files, _ = discover_inputs([str(folder)])
    got = run_outcomes(files, tmp_path / "out", read_validate=True)
    assert len(got) == 1000 and sum(r[0] == "kept" for r in got) == 450
    assert pickled_documents[0] < 200, "documents were encoded: they crossed a shuffle"
    pickled_documents[0] = 0  # the grouping of whole documents, counted the same way: it can fail
    assert run_outcomes(files, tmp_path / "out", read_validate=False) == got
    assert pickled_documents[0] >= 1000


def test_split_file_finds_duplicates_across_its_byte_ranges(tmp_path, two_files):
    files, _, whole = two_files
    assert (
        run_outcomes(files, tmp_path / "out", read_validate=True, split_bytes=16) == whole
    )  # a task per line or two


def test_compressed_file_in_stripes_finds_duplicates_across_its_stripes(tmp_path, two_files):
    """a.jsonl.gz holds x twice (lines 0 and 2) and z, which b.jsonl.gz repeats: in one stripe per
    line, the first occurrence by position still wins, and nothing else changes."""
    _, folder, _ = two_files
    striped = write_inputs(tmp_path / "in")
    (striped / "a.jsonl.gz").write_bytes(gzip.compress((striped / "a.jsonl").read_bytes()))
    (striped / "a.jsonl").unlink()
    files, _ = discover_inputs([str(striped)])
    one_task = run_outcomes(files, tmp_path / "one", read_validate=True)
    got = run_outcomes(files, tmp_path / "striped", read_validate=True, compressed_split_mb=1e-6)
    assert got == one_task
    assert ("kept", "x", "x first in a") in [tuple(r) for r in got]
    duplicates = [r for r in got if r[0] == "rejected" and r[3] == "invalid:duplicate_id"]
    assert {(r[2], r[5]) for r in duplicates} == EXPECTED_DUPLICATES


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, Path]:
    """The same input with duplicate ids through the CLI on 1 and 2 workers."""
    from corpusforge.pipelines.cli import main

    base = tmp_path_factory.mktemp("unique_ids")
    inputs = write_inputs(base / "in")
    out = {}
    for workers in (1, 2):
        out[workers] = base / f"w{workers}"
        # validate's duplicate ids are under test: every stage after it off (language and quality
        # would reject these few short documents)
        args = stages_off("normalize")
        # one worker in this process (Beam's in-memory runner), two in worker processes: two layouts
        layout = ["--workers", "1", IN_PROCESS] if workers == 1 else ["--workers", "2"]
        code = main(["run", "--input", str(inputs), "--output", str(out[workers]), *layout, *args])
        assert code == 0
    return out


@pytest.mark.slow
def test_one_and_two_workers_reject_the_same_duplicates(runs):
    for folder in ("documents", "rejected"):
        # two records of one id can both be rejected for it: order by every column, not id and reason
        one, two = (
            [json.dumps(r, sort_keys=True, default=str) for r in table_rows(runs[w] / folder)] for w in (1, 2)
        )
        assert one and sorted(one) == sorted(two), folder
    rejected = table_rows(runs[2] / "rejected")
    assert {(r["text"], r["duplicate_of"]) for r in rejected if r["reason"] == "invalid:duplicate_id"} == (
        EXPECTED_DUPLICATES
    )
    stats = json.loads((runs[2] / "stats.json").read_text())
    assert stats["conservation_ok"] and stats["records_read"] == len(A) + len(B)
    assert [f["records"] for f in stats["inputs"]] == [len(A), len(B)]
