"""What a user finds after `corpusforge run` of the sample, run as a user runs it (a subprocess of the
CLI from the repository root): output folders every common reader loads, and a clean terminal."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from corpusforge.schemas.config import PII_ENTITIES

FOLDERS = ("documents", "rejected", "sequences")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read before datasets is imported; never the Hub


# sample_cli_run (tests/conftest.py): the session's one subprocess run of the sample, with its terminal
# output; the tests here only read it (one copies it before running over the copy).


def _rows_pyarrow(folder: Path) -> int:
    return ds.dataset(str(folder), format="parquet", partitioning="hive").count_rows()


def _rows_datasets(folder: Path, cache: Path) -> int:
    import datasets

    loaded = datasets.load_dataset("parquet", data_dir=str(folder), split="train", cache_dir=str(cache))
    return loaded.num_rows


def _rows_pandas(folder: Path) -> int:
    import pandas as pd

    return len(pd.read_parquet(folder))


def _rows_duckdb(folder: Path) -> int:
    import duckdb

    con = duckdb.connect()
    return con.execute(
        f"SELECT count(*) FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true)"
    ).fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("reader", ["datasets", "pandas", "duckdb"])
def test_every_output_folder_loads_with_common_readers(sample_cli_run, tmp_path, folder, reader):
    out, _ = sample_cli_run
    expected = _rows_pyarrow(out / folder)
    assert expected > 0
    if reader == "datasets":
        assert _rows_datasets(out / folder, tmp_path / "hf") == expected
    elif reader == "pandas":
        assert _rows_pandas(out / folder) == expected
    else:
        assert _rows_duckdb(out / folder) == expected


@pytest.mark.slow
def test_pii_counts_read_as_one_integer_per_entity_type(sample_cli_run, tmp_path):
    import datasets
    import duckdb

    out, _ = sample_cli_run
    docs = datasets.load_dataset(
        "parquet", data_dir=str(out / "documents"), split="train", cache_dir=str(tmp_path / "hf")
    )
    counts = [c for c in docs["pii_counts"] if c is not None]
    assert counts and all(set(c) == set(PII_ENTITIES) for c in counts)
    total = sum(sum(c.values()) for c in counts)
    assert total > 0  # the sample has personal data to replace
    sql = " + ".join(f"coalesce(sum(pii_counts.{e}), 0)" for e in PII_ENTITIES)
    (duck_total,) = (
        duckdb.connect().execute(f"SELECT {sql} FROM read_parquet('{out}/documents/*.parquet')").fetchone()
    )
    assert duck_total == total


@pytest.mark.slow
def test_a_finished_run_writes_success_last(sample_cli_run):
    out, _ = sample_cli_run
    marker = out / "_SUCCESS"
    assert marker.is_file() and marker.read_text().startswith(
        "corpusforge "
    )  # one line: S3 refuses empty objects
    others = [p for p in out.rglob("*") if p.is_file() and p != marker]
    assert others and all(p.stat().st_mtime_ns <= marker.stat().st_mtime_ns for p in others)


@pytest.mark.slow
def test_a_failed_overwrite_run_leaves_no_success_marker(sample_cli_run, tmp_path, capsys):
    from corpusforge.pipelines.cli import main

    out = tmp_path / "out"
    shutil.copytree(sample_cli_run[0], out)
    bad = tmp_path / "in" / "broken.jsonl.gz"
    bad.parent.mkdir()
    bad.write_bytes(
        b"\x1f\x8b\x08\x00 not really gzip"
    )  # fails inside the pipeline, after the old run is removed
    assert (
        main(
            [
                "run",
                "--input",
                str(bad.parent),
                "--output",
                str(out),
                "--overwrite",
                "--workers",
                "1",
                "--direct_running_mode=in_memory",
            ]
        )
        != 0
    )
    assert "broken.jsonl.gz" in capsys.readouterr().err
    assert not (out / "_SUCCESS").exists()


@pytest.mark.slow
def test_a_finished_run_leaves_no_temporary_folders(sample_cli_run):
    out, _ = sample_cli_run
    assert (out / "sequences").is_dir()
    assert not list((out / "_run").glob("tmp-*"))
    assert not [p for p in out.rglob("*") if "tmp" in p.name.lower()]


BEAM_NOISE = (
    "apitools not found",
    "No semi_persistent_directory found",
    "Discarding unparseable args",
    "SetuptoolsDeprecationWarning",
    "apache_beam",
)


@pytest.mark.slow
def test_the_terminal_shows_only_corpusforge_lines_and_names_beams_log(sample_cli_run):
    out, proc = sample_cli_run
    for noise in BEAM_NOISE:
        assert noise not in proc.stderr and noise not in proc.stdout, noise
    log_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert log_lines and all(
        " corpusforge" in ln.split(":", 3)[-2] or " corpusforge" in ln for ln in log_lines
    )
    log = out / "_run" / "beam.log"
    assert f"Beam's log: {log}" in proc.stdout.splitlines()[-1]
    # the workers' warnings were moved to the file, not lost
    assert "Discarding unparseable args" in log.read_text()
