"""Fixtures, and the rule that a CI run never goes green with a bar unchecked.

On a laptop, tests that need ../shared (the dev corpus and score.py) or the compiled modules (word
cache, language n-gram walk) skip, saying why. With ``CI=true`` the same absence fails the whole run
at collection, with one line naming what is missing: a skipped bar in CI is a bar nobody checked.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from corpusforge.pipelines import cli
from tests.helpers import DEV, SCORE_PY, local_test_pipeline, run_cli

COMPILED_MODULES = (
    "corpusforge.transforms.tokenize._pretokenize",
    "corpusforge.transforms.language._ngrams",
    "corpusforge.transforms.bias._bias_match",
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


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """One two-worker CLI run of the sample with configs/sample.yaml, shared by every test that only
    reads its outputs (it must not be written to: a test that needs its own run makes one). Its report
    shows two examples per reason cut to 80 characters, so that the report tests
    (tests/pipelines/report/test_report_run.py) see the choice and the truncation on this run too."""
    out = tmp_path_factory.mktemp("sample_run") / "out"
    report = ["--set", "report.examples_per_reason=2", "--set", "report.example_chars=80"]
    assert run_cli(out, *report, workers=2) == 0
    return out


@pytest.fixture(scope="session")
def dev_corpus() -> Path:
    if not (DEV / "docs.jsonl.gz").exists():
        pytest.skip(f"{DEV} is not available (set CORPUSFORGE_SHARED to the shared checkout)")
    return DEV


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
