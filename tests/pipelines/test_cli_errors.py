"""The mistakes users make first, stopped before any pipeline runs: each with its exit code and a
message naming the path or key at fault (fast: nothing here starts Beam)."""

from __future__ import annotations

import pytest

from corpusforge.pipelines.cli import main
from corpusforge.schemas.config import load_config
from tests.helpers import REPO, SAMPLE_DIR, run_cli


def test_unknown_config_key_fails_before_running(tmp_path, capsys):
    assert run_cli(tmp_path / "o", "--set", "input.nope=1") == 2
    assert "input.nope: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_workers_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(tmp_path / "o", workers=0)
    assert exc.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_missing_input_argument_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--output", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_a_glob_that_matches_nothing_names_the_pattern(tmp_path, capsys):
    pattern = str(tmp_path / "nowhere" / "*.jsonl")
    assert main(["run", "--input", pattern, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert pattern in err and "corpusforge: error:" in err
    assert not (tmp_path / "o").exists()


def test_a_missing_config_file_names_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such-config.yaml"
    assert (
        main(["run", "--input", str(SAMPLE_DIR), "--output", str(tmp_path / "o"), "--config", str(missing)])
        == 2
    )
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_bad_value_names_its_key(tmp_path, capsys):
    assert run_cli(tmp_path / "o", "--set", "dedup.near.threshold=two") == 2
    assert "dedup.near.threshold" in capsys.readouterr().err


def test_the_cluster_config_loads_and_differs_from_the_defaults_where_it_says():
    cfg = load_config(REPO / "configs" / "cluster.yaml")
    assert (cfg.input.split_mb, cfg.output.shard_target_mb) == (128, 512)
    # everything it does not set is the default
    defaults = load_config().resolved()
    resolved = cfg.resolved()
    assert {k: v for k, v in resolved["input"].items() if k != "split_mb"} == {
        k: v for k, v in defaults["input"].items() if k != "split_mb"
    }
    assert resolved["dedup"] == defaults["dedup"]
