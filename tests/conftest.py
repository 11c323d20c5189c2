"""Fixtures, and the rule that a CI run never goes green with a bar unchecked.

On a laptop, tests that need ../shared (the dev corpus and score.py) or the compiled modules (word
cache, language n-gram walk) skip, saying why. With ``CI=true`` the same absence fails the whole run
at collection, with one line naming what is missing: a skipped bar in CI is a bar nobody checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from corpusforge.pipelines import cli
from tests.helpers import (
    DEV,
    DEV_NEOX,
    REPO,
    SAMPLE_CONFIG,
    SAMPLE_DIR,
    SAMPLE_RUN_SETTINGS,
    SCORE_PY,
    local_test_pipeline,
)

COMPILED_MODULES = (
    "corpusforge.transforms.tokenize._pretokenize",
    "corpusforge.transforms.language._ngrams",
    "corpusforge.transforms.bias._bias_match",
    "corpusforge.transforms.prompt._gate_search",
    "corpusforge.transforms.quality._signals",
    "corpusforge.transforms.decontam._grams",
    "corpusforge.transforms.toxicity._terms",
    "corpusforge.transforms.pii._gates",
    "corpusforge.transforms.dedup._minhash",
)


def in_ci() -> bool:
    """CI services set CI=true (GitHub Actions, GitLab, Buildkite...); `.ci/run` does too."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_requirements() -> list[str]:
    """What the bars need and this checkout lacks, one phrase each."""
    missing = []
    if not (DEV / "docs.jsonl.gz").exists():
        missing.append(f"the dev corpus {DEV}/docs.jsonl.gz (set CORPUSFORGE_SHARED or check out ../shared)")
    if not SCORE_PY.exists():
        missing.append(f"the scorer {SCORE_PY}")
    for module in COMPILED_MODULES:
        if importlib.util.find_spec(module) is None:
            missing.append(f"the compiled module {module} (run `make env` with a C compiler)")
    return missing


def pytest_configure(config: pytest.Config) -> None:
    missing = missing_requirements()
    if missing and in_ci():
        raise pytest.UsageError("CI=true but missing: " + "; ".join(missing))
    _guard_unmarked_pipeline_runs()
    _isolate_derived_cache(config)


# The derived-data cache (transforms/derived_cache.py) of the suite: its own folder in the checkout
# (.pytest_cache/corpusforge-derived, ignored by git, removed by `make clean`), set by the process that
# configures first (the xdist controller; its workers and every CLI subprocess inherit the
# environment). Without it the suite read and wrote the user's ~/.cache/corpusforge: its entries (kept
# per kind, a few at a time) come and go with whatever else ran on the machine, so the suite's cost
# depended on it, and the suite's runs pruned the user's entries. It is kept between sessions: a
# folder per session cost ~80 CPU s of cold builds in every run (suite-fast's measurement); a clean
# clone starts it cold once. A CORPUSFORGE_CACHE_DIR set by the caller (``off`` included) is kept.
SUITE_CACHE = REPO / ".pytest_cache" / "corpusforge-derived"


def _isolate_derived_cache(config: pytest.Config) -> None:
    from corpusforge.transforms import derived_cache

    if derived_cache.ENV in os.environ:
        return
    SUITE_CACHE.mkdir(parents=True, exist_ok=True)
    os.environ[derived_cache.ENV] = str(SUITE_CACHE)


# The fast loop (`-m "not slow"`) stays fast only if every test that runs a pipeline through the CLI
# is marked slow. Rather than trust each author, cli.run is wrapped: a run that completes inside a
# test (or a fixture it set up) without the marker fails that test at teardown, naming it.
_CURRENT: dict[str, pytest.Item | None] = {"item": None}
_UNMARKED_RUNS: dict[str, int] = {}


def _guard_unmarked_pipeline_runs() -> None:
    real_run = cli.run
    if getattr(real_run, "_slow_guard", False):
        return

    def guarded_run(*args, **kwargs):
        data = real_run(*args, **kwargs)
        item = _CURRENT["item"]
        if item is not None and item.get_closest_marker("slow") is None:
            _UNMARKED_RUNS[item.nodeid] = _UNMARKED_RUNS.get(item.nodeid, 0) + 1
        return data

    guarded_run._slow_guard = True  # type: ignore[attr-defined]
    cli.run = guarded_run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    _CURRENT["item"] = item
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _CURRENT["item"] = item
    yield


@pytest.fixture(autouse=True)
def _pipeline_runs_need_the_slow_marker(request: pytest.FixtureRequest):
    """Fails, at teardown, a test that completed a CLI run without @pytest.mark.slow."""
    yield
    runs = _UNMARKED_RUNS.pop(request.node.nodeid, 0)
    if runs:
        pytest.fail(
            f"{request.node.nodeid} ran {runs} pipeline(s) without @pytest.mark.slow "
            "(keep `make test-fast` fast)",
            pytrace=False,
        )


@pytest.fixture
def test_pipeline():
    return local_test_pipeline()


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every process of this pytest session sees: under pytest-xdist each worker has its own
    basetemp (``.../pytest-N/popen-gwK``) inside the session's one (``.../pytest-N``)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_cli_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, *args: str
) -> tuple[Path, subprocess.CompletedProcess]:
    """``corpusforge run ARGS --output <shared>/NAME/out`` as a user runs it (a subprocess, from the
    repository root), once per pytest session: the first process to ask runs it under a file lock and
    stores its terminal output beside it; the other xdist processes wait on the lock and read it.
    Returns (output folder, finished process); a failed run fails every test that asks for it."""
    root = _shared_root(tmp_path_factory)
    folder = root / f"shared_{name}"
    out, done = folder / "out", folder / "done.json"
    with FileLock(str(root / f"shared_{name}.lock")):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            cmd = [sys.executable, "-m", "corpusforge.pipelines.cli", "run", *args, "--output", str(out)]
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
            record = {
                "args": cmd,
                "returncode": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr,
            }
            done.write_text(json.dumps(record))
    record = json.loads(done.read_text())
    proc = subprocess.CompletedProcess(
        record["args"], record["returncode"], record["stdout"], record["stderr"]
    )
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return out, proc


@pytest.fixture(scope="session")
def sample_cli_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """(output folder, finished process) of the one two-worker CLI run of the sample with
    configs/sample.yaml (plus SAMPLE_RUN_SETTINGS) that every test reading its outputs shares, across
    pytest-xdist processes too. It must not be written to: a test that needs to change a run copies
    it (shutil.copytree) or makes its own."""
    sample = ["--input", str(SAMPLE_DIR), "--config", str(SAMPLE_CONFIG), "--workers", "2"]
    return shared_cli_run(tmp_path_factory, "sample_run", *sample, *SAMPLE_RUN_SETTINGS)


@pytest.fixture(scope="session")
def sample_one_worker_run(tmp_path_factory) -> Path:
    """The same CLI run of the sample as sample_cli_run's on one SDK worker process (forked, as a
    user's run is): the 1-vs-2-worker comparisons of the end-to-end and the forked-worker tests
    (tests/pipelines/test_end_to_end.py, tests/pipelines/local/test_zygote.py) share it. Read only."""
    sample = ["--input", str(SAMPLE_DIR), "--config", str(SAMPLE_CONFIG), "--workers", "1"]
    return shared_cli_run(tmp_path_factory, "sample_run_one_worker", *sample, *SAMPLE_RUN_SETTINGS)[0]


@pytest.fixture(scope="session")
def sample_run(sample_cli_run) -> Path:
    """The shared sample run's output folder (see sample_cli_run)."""
    return sample_cli_run[0]


@pytest.fixture(scope="session")
def dev_corpus() -> Path:
    if not (DEV / "docs.jsonl.gz").exists():
        pytest.skip(f"{DEV} is not available (set CORPUSFORGE_SHARED to the shared checkout)")
    return DEV


@pytest.fixture(scope="session")
def dev_default_run(dev_corpus, tmp_path_factory) -> Path:
    """One two-worker run of ../shared/data/dev with the default config, every stage on, and the
    GPT-NeoX tokenizer when ../shared has it: read by the tagging tests
    (tests/pipelines/test_dev_tagging.py) and the tokenize test on the dev corpus, which share it."""
    args = ["--input", str(dev_corpus / "docs.jsonl.gz"), "--workers", "2"]
    if DEV_NEOX.exists():
        args += ["--set", f"tokenize.tokenizer={DEV_NEOX}"]
    return shared_cli_run(tmp_path_factory, "dev_default_run", *args)[0]


@pytest.fixture(scope="session")
def langdetect_profiles_once():
    """langdetect's profiles loaded once per test process instead of once per detector.

    ``build_factory`` parses 55 JSON profiles (~1 s of CPU) and every language detector a test
    builds calls it: the language tests built ~35 of them. The factory is read-only once built
    (detectors read its tables and seed), so one per seed serves every test; the detectors built
    on it stay separate objects with their own memo. Production keeps building its own: a worker
    must not hold the profiles' dicts after its naive Bayes table is made from them."""
    from corpusforge.transforms.language import naive_bayes, stage

    real = stage.build_factory
    built: dict[int, object] = {}

    def build_factory_once(seed: int):
        if seed not in built:
            built[seed] = real(seed)
        return built[seed]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage, "build_factory", build_factory_once)
        patch.setattr(naive_bayes, "build_factory", build_factory_once)
        yield build_factory_once


# The longest modules first (per-test CPU of a whole `make test`, 2026-12-02 04:54 UTC, after the
# changes of benchmarks/RESULTS.md, "Suite time, branch suite-fast"; earlier: "... suite-under-4"). With `--dist
# loadfile --no-loadscope-reorder` (the Makefile's; xdist's default orders modules by their number of
# tests) each module goes whole to the next free xdist process, in collection order: a long module
# collected late (the S3 emulator's, the incremental runs, the warm-worker runs) kept one process busy
# minutes after the other had finished. Longest first, the short ones fill in behind. Only the order
# changes, never a test. test_end_to_end makes the shared sample run the other modules wait for, so it
# starts at once, beside the incremental runs; test_dev_tagging makes the shared dev run, so it comes
# before tokenize/test_stage, which reads it.
LONGEST_FIRST = (
    "tests/pipelines/test_incremental.py",
    "tests/pipelines/test_end_to_end.py",
    "tests/pipelines/test_remote_fs.py",
    "tests/pipelines/local/test_warm.py",
    "tests/transforms/tokenize/test_word_cache.py",
    "tests/pipelines/local/test_zygote.py",
    "tests/engines/test_engines.py",
    "tests/pipelines/test_dev_tagging.py",
    "tests/transforms/dedup/test_stages.py",
    "tests/pipelines/test_install.py",
    "tests/transforms/io/test_stripes.py",
    "tests/pipelines/test_run_guarantees.py",
    "tests/pipelines/local/test_bounded_bundles.py",
    "tests/pipelines/local/test_lean_import.py",
    "tests/transforms/tokenize/test_mix.py",
    "tests/pipelines/test_dev_bars.py",
    "tests/transforms/tokenize/test_control.py",
    "tests/transforms/dedup/test_previous.py",
    "tests/pipelines/test_beam_memo.py",
    "tests/transforms/tokenize/test_stage.py",
    "tests/test_missing_requirements.py",
    "tests/pipelines/test_interrupts.py",
    "tests/transforms/io/test_unique_ids.py",
    "tests/transforms/tokenize/test_control_seen.py",
    "tests/transforms/tokenize/test_trainer_formats.py",
    "tests/pipelines/test_incremental_formats.py",
    "tests/pipelines/test_remote_fs_gcs.py",
    "tests/transforms/pii/test_outside_text.py",
    "tests/pipelines/report/test_report_run.py",
    "tests/pipelines/test_startup.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    last = len(LONGEST_FIRST)
    # sorted() is stable: within a module, and among the modules not listed, the order is pytest's
    items[:] = sorted(items, key=lambda item: rank.get(item.nodeid.split("::", 1)[0], last))
