"""Run-level guarantees, each shown failing as well as passing: conservation (a run whose outputs do
not add up exits non-zero and says so), the reader's per-file record counts checked against the
input files, the per-stage funnel in stats.json, and two local workers being two processes."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest

from corpusforge.pipelines.cli import main
from corpusforge.pipelines.local.runner import LocalRunner, local_options
from corpusforge.pipelines.report import stats as run_stats
from tests.helpers import SAMPLE_DIR, STAGES_OFF, table_rows

pytestmark = pytest.mark.slow


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def test_a_run_whose_outputs_do_not_add_up_exits_3_and_says_why(tmp_path, monkeypatch, capsys):
    """One kept row goes missing between the writers and the count (as a lost shard would)."""
    real = run_stats.parquet_rows

    def one_row_short(folder: str) -> dict[str, int]:
        found = real(folder)
        return {**found, "rows": found["rows"] - 1} if folder.endswith("/documents") else found

    monkeypatch.setattr(run_stats, "parquet_rows", one_row_short)
    out = tmp_path / "out"
    code = main(
        [
            "run",
            "--input",
            str(SAMPLE_DIR / "dedup.jsonl"),
            "--output",
            str(out),
            "--workers",
            "1",
            *STAGES_OFF,
        ]
    )
    assert code == 3
    assert "outputs do not add up" in capsys.readouterr().err
    assert stats_of(out)["conservation_ok"] is False


def test_the_reader_counts_each_files_records_as_written_on_disk(tmp_path):
    """Lines counted here (non-blank), per file, with an uncompressed file split into many read
    tasks: the reader's per-file counts and the total must equal them."""
    folder = tmp_path / "in"
    folder.mkdir()
    expected = {}
    # a.jsonl is over 2 MB in a tenth of the records it took before: long records, not many (the
    # run's cost is per record; the split into read tasks is per byte)
    filler = " and more words of it" * 25
    for name, n in (("a.jsonl", 6_000), ("b.jsonl", 3), ("c.jsonl", 1)):
        lines = [
            json.dumps({"id": f"{name}-{i}", "text": f"document {i} of {name}{filler}"}) for i in range(n)
        ]
        (folder / name).write_text("\n\n".join(lines) + "\n")  # blank lines between records
        expected[str(folder / name)] = n
    out = tmp_path / "out"
    assert (folder / "a.jsonl").stat().st_size > 2 << 20  # three read tasks at split_mb 1
    assert (
        main(
            [
                "run",
                "--input",
                str(folder),
                "--output",
                str(out),
                "--workers",
                "2",
                "--set=input.split_mb=1",
                *STAGES_OFF,
            ]
        )
        == 0
    )
    stats = stats_of(out)
    assert {i["path"]: i["records"] for i in stats["inputs"]} == expected
    assert stats["records_read"] == stats["records_validated"] == sum(expected.values())
    assert stats["stages"]["read"]["counters"]["blank_lines"] == sum(n - 1 for n in expected.values())
    assert stats["stages"]["read"]["counters"]["tasks"] >= 5


def test_the_funnel_adds_up_stage_by_stage(sample_run):
    """Each stage's in = kept + rejected = the previous stage's kept, and the rejected rows written
    per reason are exactly the counters (double counting or a lost rejection shows here)."""
    stats = stats_of(sample_run)
    stages = stats["stages"]
    filters = [s for s in stats["stage_order"] if s not in ("tokenize", "bucket")]
    assert filters[:2] == ["read", "validate"] and len(filters) >= 9, filters
    assert stages["read"]["in"] == stats["records_read"]
    previous_kept = stages["read"]["kept"]
    for name in filters[1:]:
        s = stages[name]
        assert s["in"] == previous_kept, name
        assert s["in"] == s["kept"] + s["rejected"], name
        assert s["rejected"] == sum(s["rejected_by_reason"].values()), name
        previous_kept = s["kept"]
    # what passes the last filter is what is written, and what tokenize sees
    assert stages["output"]["in"] == previous_kept == stats["kept"]
    assert stages["tokenize"]["in"] == stats["kept"]
    written = Counter(r["reason"] for r in table_rows(sample_run / "rejected"))
    counted: Counter = Counter()
    for name in filters:
        counted.update(stages[name]["rejected_by_reason"])
    assert written == counted
    assert sum(written.values()) == stats["rejected"]


class _Pid(beam.DoFn):
    def start_bundle(self) -> None:
        import time

        time.sleep(0.05)  # both workers get to take bundles

    def process(self, _):
        yield os.getpid()


def test_two_workers_are_two_worker_processes(tmp_path):
    """The options `--workers 2` builds (the CLI's own local_options) start two SDK worker processes,
    neither of them this one: the 1-vs-2-worker comparisons compare different layouts."""
    out = tmp_path / "pids"
    options = local_options(2, [])
    with beam.Pipeline(runner=LocalRunner(), options=options) as p:
        _ = (
            p
            | beam.Create(range(20_000))
            | beam.Reshuffle()
            | beam.ParDo(_Pid())
            | beam.Distinct()
            | beam.Map(str)
            | beam.io.WriteToText(str(out))
        )
    pids = {int(line) for f in tmp_path.glob("pids*") for line in f.read_text().split()}
    assert len(pids) == 2, pids
    assert os.getpid() not in pids
