"""Warm SDK workers (pipelines/local/warm.py): started before the driver imports Beam, they become
the run's workers with identical outputs, and none is left behind, whether the run succeeds, fails
before any worker is needed, or a warm process dies first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from corpusforge.pipelines.local import warm
from corpusforge.schemas.config import load_config
from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR, pid_alive, processes_with, stages_off, table_rows


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--input", "x", "--output", "y"], os.cpu_count()),  # the default: one per core
        (["run", "--input", "x", "--output", "y", "--workers", "2"], 2),
        (["run", "--direct_num_workers=3", "--input", "x"], 3),
        (["run", "--input", "x", "--runner", "FlinkRunner"], 0),
        (["run", "--input", "x", "--runner=DirectRunner", "--workers", "2"], 2),
        (["run", "--input", "x", "--direct_running_mode", "multi_threading"], 0),
        (["run", "--input", "x", "--incremental"], 0),
        (["run", "--help"], 0),
        (["report", "out"], 0),
        ([], 0),
    ],
)
def test_warm_workers_only_for_a_local_multi_process_run(argv, expected):
    assert warm.workers_for(argv) == expected


def test_preloads_follow_the_enabled_stages():
    tables = "corpusforge.transforms.language.naive_bayes:preload"
    assert warm.preloads_for(load_config(None, [])) == [tables]
    assert warm.preloads_for(load_config(None, ["language.enabled=false"])) == []
    assert warm.preloads_for(load_config(None, ["language.method=sampling"])) == []


def test_a_preload_item_is_built_and_a_bad_one_is_reported_as_an_error():
    from corpusforge.transforms.language import naive_bayes

    naive_bayes._TABLES.clear()
    warm._preload("corpusforge.transforms.language.naive_bayes:preload")
    assert naive_bayes._TABLES  # built once, shared by the detectors this process builds
    first = naive_bayes.NaiveBayesLanguageDetector()
    second = naive_bayes.NaiveBayesLanguageDetector()
    assert first._gram_logs is second._gram_logs
    assert first.detect("The quick brown fox jumps over the lazy dog near the river bank.")[0] == "en"
    with pytest.raises(ImportError):
        warm._preload("corpusforge.no_such_module")


# fresh interpreters importing Beam (~2 s of CPU each): the full suite only
@pytest.mark.slow
def test_a_warm_process_exits_quietly_when_the_driver_goes_away():
    process = warm.WarmProcess()
    assert process.wait_ready(timeout=120)
    process.close_stdin()  # what the driver's death does to the pipe
    assert process.proc.wait(60) == 0


@pytest.mark.slow
def test_a_dead_warm_process_is_skipped_and_close_leaves_none_running():
    pool = warm.WarmPool(2, cores=4)  # both at once
    deadline = time.monotonic() + 60
    while len(pool.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = pool.pids()
    os.kill(first, signal.SIGKILL)
    while pid_alive(first):
        time.sleep(0.05)
    taken = pool.take()
    assert taken is not None and taken.proc.pid == second  # the dead one was skipped
    assert pool.take() is None  # none left: Beam starts its own worker then
    pool.close()
    taken.close()
    assert not pid_alive(first) and not pid_alive(second)


def _cli(out: Path, marker: str, *extra: str, warm_on: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CORPUSFORGE_TEST_MARKER=marker, CORPUSFORGE_WARM_WORKERS="1" if warm_on else "0")
    cmd = [sys.executable, "-m", "corpusforge.pipelines.cli", "run", "--input", str(SAMPLE_DIR)]
    cmd += ["--config", str(SAMPLE_CONFIG), "--output", str(out), "--overwrite", *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _wait_gone(marker: str, wait_s: float = 10) -> list[int]:
    deadline = time.monotonic() + wait_s
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.slow
def test_warm_workers_give_the_same_outputs_as_beams_own_and_leave_nothing_behind(tmp_path):
    marker = uuid.uuid4().hex
    # what a warm worker holds that Beam's own does not is its preloads (the language tables): the
    # language stage and the filters and dedup around it stay on; the stages after dedup (PII's
    # engine, the toxicity model, the tokenizer: each worker's heaviest set-up, not the warm start's)
    # and the report are off. documents/ and rejected/ are compared.
    only = stages_off("normalize", "language", "quality", "decontamination", "dedup.exact", "dedup.near")
    warm_run = _cli(tmp_path / "warm", marker, "--workers", "2", *only)
    assert warm_run.returncode == 0, warm_run.stderr[-3000:]
    assert _wait_gone(marker) == []
    cold_run = _cli(tmp_path / "cold", marker, "--workers", "2", *only, warm_on=False)
    assert cold_run.returncode == 0, cold_run.stderr[-3000:]
    for table in ("documents", "rejected"):
        key = "id"
        warm_rows = sorted(table_rows(tmp_path / "warm" / table), key=lambda r: (r[key], str(r)))
        cold_rows = sorted(table_rows(tmp_path / "cold" / table), key=lambda r: (r[key], str(r)))
        assert warm_rows == cold_rows and warm_rows


@pytest.mark.slow
def test_a_run_that_fails_before_its_workers_start_leaves_no_warm_process(tmp_path):
    marker = uuid.uuid4().hex
    failed = _cli(
        tmp_path / "out",
        marker,
        "--workers",
        "2",
        "--set",
        "decontamination.benchmarks=[/nonexistent/*.jsonl]",
    )
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "decontamination" in failed.stderr
    assert _wait_gone(marker) == []


@pytest.mark.parametrize(
    ("extra", "workers", "expected"),
    [
        ([], None, 3),  # one per core, not Beam's own default of one
        (["--direct_num_workers=5"], None, 5),
        (["--direct_num_workers", "4"], None, 4),
        ([], 2, 2),
        (["--direct_num_workers=5"], 1, 1),  # --workers wins
    ],
)
def test_the_runner_and_the_warm_start_agree_on_the_worker_count(monkeypatch, extra, workers, expected):
    """The default is one worker per core (a 3-core machine here), and the number of warm processes
    the CLI starts before importing Beam is the number of SDK workers the runner then asks for."""
    from apache_beam.options.pipeline_options import DirectOptions

    from corpusforge.pipelines.local.runner import local_options, local_worker_processes

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    argv = ["run", "--input", "x", *extra, *(["--workers", str(workers)] if workers else [])]
    assert local_options(workers, extra).view_as(DirectOptions).direct_num_workers == expected
    assert local_worker_processes(workers, extra) == expected
    assert warm.workers_for(argv) == expected
