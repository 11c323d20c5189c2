"""Incremental and resumable runs, and dedup against an earlier release, end to end on the dev corpus
split into three files (skipped when ../shared/data/dev is absent); part planning and manifest checks
as pure functions."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from corpusforge.pipelines.cli import main
from corpusforge.pipelines.incremental import manifest_problems, plan_parts
from corpusforge.transforms.io.read import InputFile
from tests.helpers import IN_PROCESS, SCORE_PY

# dedup is what these tests are about: the stages that would drop pages first are off (as in the
# dedup stage tests), and so are the taggers; tokenize stays (the parts' sequences are checked)
FAST = [
    f"{section}.enabled=false"
    for section in ("decontamination", "language", "quality", "prompt", "pii", "toxicity", "bias")
]
ONE_FILE_PARTS = "input.part_mb=0.5"  # each split file is 1.3-1.5 MB: one part per file
SCORE = SCORE_PY


def sets(*extra: str) -> list[str]:
    out = []
    for item in [*FAST, ONE_FILE_PARTS, *extra]:
        out += ["--set", item]
    return out


def cli_args(inputs: Path, out: Path, *extra: str, workers: int = 1) -> list[str]:
    """An incremental run of ``inputs``. One part is one pipeline, so a two-worker run pays the SDK
    workers' start-up once per part: the runs in this process are one-worker, in-process runs
    (dedup across parts is under test, not worker processes; the killed run, a subprocess, keeps two
    workers, so its part and the in-process parts come from different layouts)."""
    layout = ["--workers", "2"] if workers == 2 else ["--workers", "1", IN_PROCESS]
    return ["run", "--input", str(inputs), "--output", str(out), "--incremental", *layout, *sets(), *extra]


def outcome(out: Path) -> tuple[list[str], list[tuple[str, str]]]:
    kept = ds.dataset(str(out / "documents"), partitioning="hive").to_table(columns=["id"])["id"].to_pylist()
    rej = (
        ds.dataset(str(out / "rejected"), partitioning="hive").to_table(columns=["id", "reason"]).to_pylist()
    )
    return sorted(kept), sorted((r["id"], r["reason"]) for r in rej)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def split(dev_corpus, tmp_path_factory) -> Path:
    """The dev corpus as three gzip files, in record order."""
    folder = tmp_path_factory.mktemp("split")
    lines = gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8").read().splitlines(True)
    k = (len(lines) + 2) // 3
    for i in range(3):
        with gzip.open(folder / f"docs_{i}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(lines[i * k : (i + 1) * k])
    return folder


@pytest.fixture(scope="module")
def full_run(split, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "out"
    assert main(cli_args(split, out)) == 0
    return out


# ---- pure ---------------------------------------------------------------------------------------


def test_parts_hold_whole_files_in_path_order():
    files = [
        InputFile(p, s, "jsonl", "none")
        for p, s in [("c", 600_000), ("a", 300_000), ("b", 300_000), ("d", 3_000_000), ("e", 100_000)]
    ]
    parts = plan_parts(files, 1.0)
    assert [[f.path for f in p] for p in parts] == [["a", "b"], ["c"], ["d"], ["e"]]


def test_changed_config_and_inputs_are_named(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"text": "x"}\n')
    st = f.stat()
    m = {
        "parts": [
            {
                "name": "part=00000",
                "config_hash": "abc",
                "files": [
                    {"path": str(f), "size": st.st_size, "mtime": st.st_mtime},
                    {"path": str(tmp_path / "gone.jsonl"), "size": 1, "mtime": None},
                ],
            }
        ]
    }
    problems = manifest_problems(m, "def")
    assert any("config changed" in p and "abc" in p for p in problems)
    assert any("gone.jsonl recorded in part=00000 no longer exists" in p for p in problems)
    f.write_text('{"text": "xy"}\n')
    assert any("a.jsonl recorded in part=00000 changed (size" in p for p in manifest_problems(m, "abc"))


# ---- end to end ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_parts_resolve_duplicates_over_the_union(full_run, dev_corpus):
    m = manifest(full_run)
    assert [p["name"] for p in m["parts"]] == ["part=00000", "part=00001", "part=00002"]
    assert all(len(p["files"]) == 1 and p["finished_at"] for p in m["parts"])
    assert (full_run / "_SUCCESS").exists()
    assert all((full_run / "parts" / p["name"] / "_SUCCESS").exists() for p in m["parts"])
    stats = json.loads((full_run / "stats.json").read_text())
    read = sum(1 for _ in gzip.open(dev_corpus / "docs.jsonl.gz", "rt"))
    assert stats["records_read"] == read == stats["kept"] + stats["rejected"] and stats["conservation_ok"]
    assert stats["records_read"] == sum(p["counts"]["records_read"] for p in m["parts"])
    kept, rejected = outcome(full_run)
    assert len(kept) + len(rejected) == read and not set(kept) & {i for i, _ in rejected}
    # every cross-part rejection names a document kept by an earlier part
    docs = (
        ds.dataset(str(full_run / "documents"), partitioning="hive")
        .to_table(columns=["id", "part"])
        .to_pylist()
    )
    part_of = {d["id"]: d["part"] for d in docs}
    rej = (
        ds.dataset(str(full_run / "rejected"), partitioning="hive")
        .to_table(columns=["id", "reason", "duplicate_of", "part"])
        .to_pylist()
    )
    previous = [r for r in rej if r["reason"] in ("dedup:exact_previous", "dedup:near_previous")]
    assert previous, "the split corpus has copies across files"
    for r in previous:
        release, doc_id = r["duplicate_of"].split(":", 1)
        assert release == "out" and part_of[doc_id] < r["part"], r
    # the sequences load as one dataset too, part a column
    seq = ds.dataset(str(full_run / "sequences"), partitioning="hive").to_table(columns=["doc_id", "part"])
    assert set(seq["part"].to_pylist()) == {0, 1, 2}
    res = subprocess.run(
        [sys.executable, str(SCORE), "--corpus", str(dev_corpus), "--run", str(full_run), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(res.stdout)["dup_pair_recall@0.8"] >= 0.99


@pytest.mark.slow
def test_killed_run_resumes_and_a_new_file_becomes_one_new_part(split, full_run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in (0, 1):
        shutil.copy2(split / f"docs_{i}.jsonl.gz", inputs)
    out = tmp_path / "out"  # same folder name as the full run's: the same release name
    # resuming is under test, compared on documents/ and rejected/ (tokenize rejects nothing, and the
    # full run checks the parts' sequences): tokenize, ~1.6 s of CPU per part, is off in all four runs
    no_seq = ("--set", "tokenize.enabled=false")
    cmd = [sys.executable, "-m", "corpusforge.pipelines.cli", *cli_args(inputs, out, *no_seq, workers=2)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not ((out / "manifest.json").exists() and manifest(out)["parts"]):
            assert proc.poll() is None and time.time() < deadline, "the run ended before recording a part"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    first = manifest(out)["parts"][0]
    assert len(manifest(out)["parts"]) == 1 and not (out / "_SUCCESS").exists()
    assert main(cli_args(inputs, out, *no_seq)) == 0  # the same command resumes
    m = manifest(out)
    assert m["parts"][0] == first, "the first part was not redone"
    assert len(m["parts"]) == 2
    shutil.copy2(split / "docs_2.jsonl.gz", inputs)
    assert main(cli_args(inputs, out, *no_seq)) == 0
    m = manifest(out)
    assert len(m["parts"]) == 3 and m["parts"][:2] == manifest(out)["parts"][:2]
    assert json.loads((out / "stats.json").read_text())["parts_run"] == 1
    assert outcome(out) == outcome(full_run)
    # nothing left to do: a rerun only re-adds the totals
    assert main(cli_args(inputs, out, *no_seq)) == 0
    assert json.loads((out / "stats.json").read_text())["parts_run"] == 0


@pytest.mark.slow
def test_bad_manifest_or_changed_config_is_refused_before_anything_is_deleted(
    split, full_run, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(full_run, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(cli_args(split, out, "--set", "dedup.near.threshold=0.9")) == 2
    assert "the config changed" in capsys.readouterr().err
    m = manifest(out)
    m["parts"][1]["files"][0]["path"] = str(tmp_path / "vanished.jsonl.gz")
    (out / "manifest.json").write_text(json.dumps(m))
    assert main(cli_args(split, out)) == 2
    assert "vanished.jsonl.gz recorded in part=00001 no longer exists" in capsys.readouterr().err
    (out / "manifest.json").write_text("{ not json")
    assert main(cli_args(split, out)) == 2
    assert "manifest.json is not JSON" in capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    # --overwrite with a bad dedup.previous fails before removing the earlier run
    assert main(cli_args(split, out, "--overwrite", "--set", f"dedup.previous=[{tmp_path / 'nowhere'}]")) == 2
    assert "no such folder" in capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    # a plain run does not mix into an incremental folder
    plain = ["run", "--input", str(split), "--output", str(out), *sets()]
    assert main(plain) == 2 and "already holds a run" in capsys.readouterr().err


@pytest.mark.slow
def test_dedup_against_an_earlier_release(split, tmp_path, capsys):
    first = tmp_path / "first"
    # dedup.previous is under test, not workers; nor sequences: tokenize is off too
    base = ["--workers", "1", IN_PROCESS, *sets("tokenize.enabled=false")]
    assert (
        main(
            [
                "run",
                "--input",
                str(split / "docs_0.jsonl.gz"),
                "--output",
                str(first),
                "--release",
                "r1",
                *base,
            ]
        )
        == 0
    )
    first_kept, _ = outcome(first)
    second = tmp_path / "second"
    assert (
        main(
            [
                "run",
                "--input",
                str(split / "docs_0.jsonl.gz"),
                "--input",
                str(split / "docs_1.jsonl.gz"),
                "--output",
                str(second),
                *base,
                "--set",
                f"dedup.previous=[{first}]",
            ]
        )
        == 0
    )
    rej = ds.dataset(str(second / "rejected")).to_table(columns=["id", "reason", "duplicate_of"]).to_pylist()
    by_id = {r["id"]: r for r in rej}
    # every document the first release kept comes back in the second as an exact copy of itself
    assert all(
        by_id[i]["reason"] == "dedup:exact_previous" and by_id[i]["duplicate_of"] == f"r1:{i}"
        for i in first_kept
    )
    near = [r for r in rej if r["reason"] == "dedup:near_previous"]
    assert all(r["duplicate_of"].startswith("r1:") and r["duplicate_of"][3:] in set(first_kept) for r in near)
    kept_second, _ = outcome(second)
    assert not set(kept_second) & set(first_kept)
    index = ds.dataset(str(second / "dedup_index")).to_table(columns=["id", "release"]).to_pylist()
    assert sorted(r["id"] for r in index) == kept_second and {r["release"] for r in index} == {"second"}
    # an index made with other MinHash parameters is refused at start-up, naming the parameter
    third = tmp_path / "third"
    assert (
        main(
            [
                "run",
                "--input",
                str(split / "docs_1.jsonl.gz"),
                "--output",
                str(third),
                *base,
                "--set",
                f"dedup.previous=[{first}]",
                "--set",
                "dedup.near.num_perm=64",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "dedup.previous[0]" in err and "num_perm: index has 128, this run uses 64" in err
    assert not (third / "documents").exists()
    assert (
        main(
            [
                "run",
                "--input",
                str(split / "docs_1.jsonl.gz"),
                "--output",
                str(third),
                *base,
                "--set",
                f"dedup.previous=[{tmp_path / 'nowhere'}]",
            ]
        )
        == 2
    )
    assert "no such folder" in capsys.readouterr().err
