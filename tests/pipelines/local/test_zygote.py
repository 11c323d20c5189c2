"""Warm SDK workers forked from one pre-imported parent (pipelines/local/zygote.py): the children
really are forks that did not import anything themselves, they run the run's stages with the same
outputs on one and two workers, a dead child or parent falls back to Beam's own start, a hand-over
never waits for the parent's long preloads, and no process outlives the driver, even a killed one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from corpusforge.pipelines.local import warm, zygote
from corpusforge.schemas.config import load_config
from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR, pid_alive, processes_with, table_rows

pytestmark = pytest.mark.skipif(not zygote.available(), reason="workers are forked on Linux only")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: state, ppid, ... (utime at [11])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(predicate, wait_s: float = 120) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + wait_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_a_wait_status_reads_as_subprocess_return_codes():
    assert zygote._status(0) == 0
    assert zygote._status(3 << 8) == 3  # exit(3)
    assert zygote._status(signal.SIGKILL) == -signal.SIGKILL  # killed by signal 9


def test_the_zygote_builds_the_language_tables_first_and_presidio_only_for_the_pii_stage():
    tables = "corpusforge.transforms.language.naive_bayes:preload"
    words = warm.with_argument(warm.WORD_STORE, None)
    shared = warm.shared_preloads_for(load_config(None, []))
    assert shared[:3] == [tables, warm.ARROW_PANDAS, words]
    assert shared[-1] == "corpusforge.transforms.pii.engine"
    no_pii = ["pii.enabled=false"]
    assert warm.shared_preloads_for(load_config(None, no_pii)) == [tables, warm.ARROW_PANDAS, words]
    # the words of the tokenizer the stage asks for, and none without its word cache
    assert warm.shared_preloads_for(load_config(None, [*no_pii, "tokenize.tokenizer=gpt2"]))[2] == (
        warm.with_argument(warm.WORD_STORE, "gpt2")
    )
    assert warm.shared_preloads_for(
        load_config(None, [*no_pii, "language.enabled=false", "tokenize.word_cache=false"])
    ) == [warm.ARROW_PANDAS]
    # the first stage's benchmark index, with the section the workers will see
    with_bench = warm.shared_preloads_for(
        load_config(None, [*no_pii, "decontamination.benchmarks=[b.jsonl]"])
    )
    assert with_bench[1].startswith(warm.DECONTAMINATION_INDEX + ":")
    assert json.loads(with_bench[1][len(warm.DECONTAMINATION_INDEX) + 1 :])["benchmarks"] == ["b.jsonl"]


def test_a_preload_item_may_carry_one_json_argument(tmp_path, monkeypatch):
    (tmp_path / "argument_probe.py").write_text("got = []\n\ndef take(value):\n    got.append(value)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    warm._preload(warm.with_argument("argument_probe:take", {"a": "b:c", "n": [1, None]}))
    warm._preload("argument_probe:take:null")
    assert sys.modules["argument_probe"].got == [{"a": "b:c", "n": [1, None]}, None]


def test_forking_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_FORK_WORKERS", "0")
    assert not zygote.available()


# a parent importing Beam (~1.5 CPU s): the full suite only
@pytest.mark.slow
def test_children_are_forks_of_one_parent_that_imported_for_them_and_a_dead_one_is_skipped():
    pool = warm.WarmPool(2, fork=True)
    try:
        assert pool.zygote_pid is not None
        assert _wait_for(lambda: len(pool.pids()) == 2)
        first, second = pool.pids()
        for pid in (first, second):
            assert _stat(pid)[1] == str(pool.zygote_pid)  # the parent's children, not the driver's
            # Beam and corpusforge came with the fork: the child spent next to no CPU of its own
            assert _cpu_s(pid) < 0.5 < _cpu_s(pool.zygote_pid)
        os.kill(first, signal.SIGKILL)
        assert _wait_for(lambda: not pid_alive(first), 10)
        taken = pool.take()
        assert taken is not None and taken.proc.pid == second  # the dead one was skipped
        assert pool.take() is None  # none left: Beam starts its own worker then
    finally:
        pool.close()
    assert taken.proc.wait(10) == -signal.SIGKILL  # close ends the parent, which ends its children
    assert not pid_alive(second) and not pid_alive(pool.zygote_pid)


@pytest.mark.slow
def test_a_dead_parent_leaves_every_worker_to_beams_own_start():
    pool = warm.WarmPool(2, fork=True)
    os.kill(pool.zygote_pid, signal.SIGKILL)  # before (or while) it forks
    try:
        assert pool.take() is None  # it died importing: no fork, and take() does not wait for one
    finally:
        pool.close()


@pytest.mark.slow
def test_a_hand_over_does_not_wait_for_the_parents_remaining_preloads(tmp_path, monkeypatch):
    (tmp_path / "slow_preload.py").write_text(
        "import time\n\ndef step():\n    time.sleep(0.2)\n", encoding="utf-8"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    pool = warm.WarmPool(1, fork=True)
    try:
        pool.preload([], shared=["slow_preload:step"] * 300)  # a minute of preloads
        time.sleep(3)  # the parent has imported Beam and is building them
        began = time.monotonic()
        taken = pool.take()
        assert taken is not None
        assert time.monotonic() - began < 15  # the fork came at the step in progress, not after all
    finally:
        pool.close()
    assert taken.proc.wait(10) == -signal.SIGKILL


@pytest.mark.slow
def test_a_forked_worker_finds_the_index_the_words_and_pandas_built_by_its_parent(tmp_path, monkeypatch):
    from corpusforge.transforms import derived_cache
    from corpusforge.transforms.tokenize import word_store
    from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer

    cache = tmp_path / "cache"
    monkeypatch.setenv(derived_cache.ENV, str(cache))
    logic = DocumentTokenizer(None, None, None, word_cache=True)
    logic.encode(["Half-timbered houses line the cobbled lanes below the castle hill."] * 3)
    logic.flush()  # an entry on disk, as an earlier run leaves it
    (tmp_path / "setup_probe.py").write_text(
        textwrap.dedent(
            """
            import json, sys, time

            def report(path):
                from corpusforge.transforms import shared_setup
                with open(path, "w") as f:
                    index_kind = sys.modules["corpusforge.transforms.decontam.stage"].INDEX_KIND
                    indexes = [k for k, _ in shared_setup.kinds() if k == index_kind]
                    json.dump({"kinds": shared_setup.kinds(), "pandas": "pandas" in sys.modules,
                               "indexes": len(indexes),
                               "cpu_s": time.process_time()}, f)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    pool = warm.WarmPool(1, fork=True, planned=True)
    try:
        bench = tmp_path / "quiz.jsonl"
        bench.write_text(json.dumps({"q": "Which river flows through the old town of Quedlinburg?"}) + "\n")
        section = load_config(None, [f"decontamination.benchmarks=[{bench}]"]).decontamination
        pool.preload(
            [],
            shared=[
                warm.with_argument(warm.DECONTAMINATION_INDEX, section.model_dump(mode="json")),
                warm.ARROW_PANDAS,
                warm.with_argument(warm.WORD_STORE, None),
            ],
        )
        assert _wait_for(lambda: len(pool.pids()) == 1)  # forked once both were built
        taken = pool.take()
        report = tmp_path / "report.json"
        assert taken is not None and taken.send(
            {"preload": [f"setup_probe:report:{json.dumps(str(report))}"]}
        )
        assert _wait_for(report.exists, 60)
        time.sleep(0.2)  # written and closed
        seen = json.loads(report.read_text())
    finally:
        pool.close()
    ident = word_store.shared_ident(word_store.store_key(logic._tok.to_str()))
    assert [word_store.KIND, ident] in seen["kinds"]  # the parent read the entry for it
    assert seen["pandas"] and seen["indexes"] == 1
    assert seen["cpu_s"] < 0.3  # the child imported and read nothing itself (pandas alone: ~0.35 s)


@pytest.mark.slow
def test_a_killed_driver_leaves_no_parent_and_no_child(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(
            """
            import sys, time
            from corpusforge.pipelines.local import warm
            pool = warm.WarmPool(2, fork=True)
            while len(pool.pids()) < 2:
                time.sleep(0.05)
            print(pool.zygote_pid, *pool.pids(), flush=True)
            time.sleep(600)
            """
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen([sys.executable, str(driver)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
    finally:
        proc.kill()
        proc.wait()
    assert len(pids) == 3
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in pids), 10)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cli(out: Path, marker: str, workers: int) -> subprocess.Popen:
    env = dict(os.environ, CORPUSFORGE_TEST_MARKER=marker)
    cmd = [sys.executable, "-m", "corpusforge.pipelines.cli", "run", "--input", str(SAMPLE_DIR)]
    cmd += ["--config", str(SAMPLE_CONFIG), "--output", str(out), "--overwrite", "--workers", str(workers)]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _forked_workers(cli_pid: int) -> list[int]:
    """The run's SDK workers that are children of its zygote (named sdk_worker_main once handed over)."""
    parents = [pid for pid in _children(cli_pid) if _comm(pid) == "cf-zygote"]
    return [pid for parent in parents for pid in _children(parent) if _comm(pid) == "sdk_worker_main"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _stat(int(entry))[1] == str(pid):
                    out.append(int(entry))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    """The embedded sample on two forked workers (their process tree seen while it runs); on one, the
    session's shared one-worker CLI run (sample_one_worker_run) is the same command."""
    root = tmp_path_factory.mktemp("forked")
    marker = uuid.uuid4().hex
    runs, seen = {}, set()
    for workers in (2,):
        proc = _cli(root / f"w{workers}", marker, workers)
        stop = threading.Event()

        def watch(cli_pid: int = proc.pid, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                seen.update(_forked_workers(cli_pid))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, err = proc.communicate(timeout=600)
        stop.set()
        watcher.join()
        runs[workers] = (proc.returncode, err)
    # and a run whose driver is killed (SIGKILL: no clean-up of its own) once its workers run
    killed_marker = uuid.uuid4().hex
    proc = _cli(root / "killed", killed_marker, 2)
    running = _wait_for(lambda: bool(_forked_workers(proc.pid)), 300)
    proc.kill()
    proc.communicate()
    return root, runs, seen, marker, (killed_marker, running)


@pytest.mark.slow
def test_forked_workers_run_the_stages_with_the_same_outputs_on_one_and_two(
    sample_runs, sample_one_worker_run
):
    root, runs, seen, _, _ = sample_runs
    for workers, (rc, err) in runs.items():
        assert rc == 0, (workers, err[-3000:])
    assert seen, "no SDK worker was a child of the zygote"
    for table in ("documents", "rejected", "sequences"):
        two = sorted(str(r) for r in table_rows(root / "w2" / table))
        one = sorted(str(r) for r in table_rows(sample_one_worker_run / table))
        assert two == one and two, table


@pytest.mark.slow
def test_neither_a_finished_run_nor_a_killed_driver_leaves_a_forked_process(sample_runs):
    _, _, _, marker, (killed_marker, running) = sample_runs
    assert running, "the killed run's forked workers never ran"
    for left in (marker, killed_marker):
        assert _wait_for(lambda m=left: not processes_with(m), 10), processes_with(left)
