"""``output.dedup_index``: the index is written when a dedup stage runs (or when asked), and a run
that needs an index it cannot have says so before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path

import apache_beam as beam
import pytest

from corpusforge.pipelines.build import build_pipeline
from corpusforge.pipelines.cli import main
from corpusforge.schemas.config import ConfigError, load_config
from corpusforge.transforms.dedup.index import DedupIndexError, index_folders
from corpusforge.transforms.io.read import discover_inputs
from tests.helpers import SAMPLE_DIR

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from run_bench import passthrough_overrides  # noqa: E402


def _writes_index(overrides: list[str]) -> bool:
    """Whether the graph the CLI builds (local runner) writes ``dedup_index/``."""
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    p = beam.Pipeline()
    build_pipeline(p, load_config(None, overrides), files, "/tmp/unused", local_runner=True)
    names = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    return any(name.startswith("WriteDedupIndex") for name in names)


def test_auto_writes_the_index_exactly_when_a_dedup_stage_runs():
    assert _writes_index([])
    assert _writes_index(["dedup.near.enabled=false"])  # exact alone: a later release dedups by it
    assert _writes_index(["dedup.exact.enabled=false"])
    assert not _writes_index(["dedup.exact.enabled=false", "dedup.near.enabled=false"])
    assert not _writes_index(passthrough_overrides())


def test_true_and_false_override_auto():
    assert _writes_index([*passthrough_overrides(), "output.dedup_index=true"])
    assert not _writes_index(["output.dedup_index=false"])


def test_a_bad_value_names_the_key():
    with pytest.raises(ConfigError, match=r"output\.dedup_index"):
        load_config(None, ["output.dedup_index=sometimes"])


def test_previous_naming_a_release_without_an_index_names_the_folder_and_the_key(tmp_path):
    release = tmp_path / "release1"  # a finished run's folder, made with dedup off: no dedup_index/
    (release / "documents").mkdir(parents=True)
    with pytest.raises(DedupIndexError) as caught:
        index_folders(str(release))
    message = str(caught.value)
    assert str(release) in message and "output.dedup_index=true" in message
    # at start-up, through the config: the entry of dedup.previous is named too
    assert main(["run", "--input", str(SAMPLE_DIR), "--output", str(tmp_path / "out"),
                 "--set", f"dedup.previous=[{release}]"]) == 2  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_incremental_with_dedup_on_and_no_index_is_refused_up_front(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--input", str(SAMPLE_DIR), "--output", str(out), "--incremental",
                 "--set", "output.dedup_index=false"])  # fmt: skip
    assert code == 2
    assert "output.dedup_index" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
