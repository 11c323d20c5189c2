"""Trainer formats in ``--incremental`` runs: each part's Megatron (and MDS) shards under a
``part=NNNNN`` level, moved into place with the part, listed by the manifest, and one top-level
listing over every part that a trainer is pointed at. The combining functions are also tested on
their own (the MDS one is plain JSON, so it runs without mosaicml-streaming; reading the result
with ``StreamingDataset`` needs the package and skips without it).

One incremental run of two parts (sample files, each its own part) serves the module.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from corpusforge.pipelines.cli import main as cli_main
from corpusforge.pipelines.incremental import discard_unrecorded
from corpusforge.transforms.tokenize.mds import parts_index
from corpusforge.transforms.tokenize.megatron import parts_listing, read_shard
from tests.helpers import IN_PROCESS, SAMPLE_DIR, interop_import, stages_off

HAS_MDS = importlib.util.find_spec("streaming") is not None
FORMATS = "[" + ",".join(["parquet", "megatron"] + (["mds"] if HAS_MDS else [])) + "]"
PARTS = ["part=00000", "part=00001"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Two input files (about 9.5 and 12 KB) with parts of 5 KB: one part per file."""
    base = tmp_path_factory.mktemp("incformats")
    inputs = base / "in"
    inputs.mkdir()
    for name, sources in {"a.jsonl": ("articles", "tokenize"), "b.jsonl": ("dedup", "report")}.items():
        (inputs / name).write_text("".join((SAMPLE_DIR / f"{s}.jsonl").read_text() for s in sources))
    out = base / "out"
    # the parts' trainer formats are under test, not worker processes: each part is one pipeline, and
    # at two workers each paid two SDK workers' start-up (~10 s of CPU for the module's two parts);
    # the parts run in this process instead (tokenize.shards fixes the shard count either way)
    args = [
        "run",
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--incremental",
        "--workers",
        "1",
        IN_PROCESS,
    ]
    args += stages_off("normalize", "tokenize")
    for item in (
        "input.part_mb=0.005",
        f"tokenize.formats={FORMATS}",
        "tokenize.shards=2",
    ):
        args += ["--set", item]
    assert cli_main(args) == 0
    return out


def _sequences(out: Path) -> list[tuple[str, int, list[int]]]:
    """Every row of ``sequences/`` over all parts: (doc_id, chunk_index, ids), sorted."""
    rows = pads.dataset(str(out / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    return sorted((r["doc_id"], r["chunk_index"], list(r["input_ids"])) for r in rows)


def _megatron_rows(prefixes: list[str]) -> list[tuple[str, int, list[int]]]:
    """The rows the shards at ``prefixes`` hold, with their provenance sidecars."""
    rows = []
    for prefix in prefixes:
        shard = read_shard(prefix)
        side = pq.read_table(prefix + ".docs.parquet").to_pylist()
        assert len(side) == len(shard)
        rows += [(s["doc_ids"][0], s["chunk_indices"][0], shard[i].tolist()) for i, s in enumerate(side)]
    return sorted(rows)


@pytest.mark.slow
def test_each_part_has_its_own_megatron_shards_where_its_listing_says(run):
    folder = run / "sequences_megatron"
    assert sorted(p.name for p in folder.glob("part=*")) == PARTS
    assert not (run / "_staging").exists()
    for part in PARTS:
        listing = json.loads((folder / part / "index.json").read_text())
        prefixes = listing["data_path"][1::2]
        assert prefixes, part
        # named where the shards are now, not in the staging folder they were written to
        assert all(p.startswith(f"{folder}/{part}/shard-") for p in prefixes)
        assert all(Path(p + ".bin").exists() and Path(p + ".idx").exists() for p in prefixes)


@pytest.mark.slow
def test_the_top_listing_trains_on_exactly_the_rows_of_every_part(run):
    listing = json.loads((run / "sequences_megatron" / "index.json").read_text())
    assert listing["parts"] == PARTS
    weights, prefixes = listing["data_path"][0::2], listing["data_path"][1::2]
    assert {Path(p).parent.name for p in prefixes} == set(PARTS)
    # one --data-path: the union of the parts' sequences/, row for row and token for token
    assert _megatron_rows(prefixes) == _sequences(run)
    assert sum(int(w) for w in weights) == listing["tokens"] == sum(len(r[2]) for r in _sequences(run))
    stats = json.loads((run / "stats.json").read_text())
    assert listing["tokens"] == sum(
        json.loads((run / "parts" / p / "stats.json").read_text())["formats"]["megatron"]["tokens"]
        for p in PARTS
    )
    assert stats["formats"]["megatron"]["tokens"] == listing["tokens"]
    assert stats["formats"]["megatron"]["tokens_conserved"] is True


@pytest.mark.slow
def test_the_manifest_lists_each_parts_trainer_shards(run):
    manifest = json.loads((run / "manifest.json").read_text())
    for part, entry in zip(PARTS, manifest["parts"], strict=True):
        assert f"sequences_megatron/{part}" in entry["outputs"]
        listed = entry["trainer_shards"]["sequences_megatron"]
        own = json.loads((run / "sequences_megatron" / part / "index.json").read_text())["shards"]
        assert listed == [f"sequences_megatron/{part}/{e['prefix']}" for e in own]
        assert all((run / (p + ".bin")).exists() for p in listed)


@pytest.mark.slow
@pytest.mark.interop
def test_one_streaming_dataset_reads_every_parts_mds_shards(run):
    StreamingDataset = interop_import("streaming", "mosaicml-streaming").StreamingDataset

    top = run / "sequences_mds"
    assert sorted(p.name for p in top.glob("part=*")) == PARTS
    dataset = StreamingDataset(local=str(top), shuffle=False, batch_size=1)
    rows = sorted(
        (s["doc_ids"][0], s["chunk_indices"][0], s["input_ids"].tolist())
        for s in (dataset[i] for i in range(len(dataset)))
    )
    assert rows == _sequences(run)


# ---- the combining functions on their own -------------------------------------------------------


def _listing(prefixes: list[str], tokens: int, dtype: str = "uint16") -> dict:
    shards = [
        {"prefix": p, "sequences": 1, "tokens": tokens, "provenance": p + ".docs.parquet"} for p in prefixes
    ]
    return {"dtype": dtype, "vocab_size": 1000, "shards": shards}


def test_parts_listing_names_every_parts_shards_in_part_order():
    out = parts_listing(
        "/o/sequences_megatron",
        [
            ("part=00000", _listing(["shard-00000", "shard-00001"], 5)),
            ("part=00001", _listing(["shard-00000"], 7)),
        ],
    )
    assert out["data_path"] == [
        "5",
        "/o/sequences_megatron/part=00000/shard-00000",
        "5",
        "/o/sequences_megatron/part=00000/shard-00001",
        "7",
        "/o/sequences_megatron/part=00001/shard-00000",
    ]
    assert out["tokens"] == 17 and out["sequences"] == 3
    assert out["shards"][2]["provenance"] == "part=00001/shard-00000.docs.parquet"


def test_parts_listing_refuses_parts_of_another_dtype():
    with pytest.raises(ValueError, match="part=00001: dtype int32"):
        parts_listing("/o", [("part=00000", _listing(["s"], 1)), ("part=00001", _listing(["s"], 1, "int32"))])


def test_parts_index_names_shard_files_from_the_top_folder():
    part = {
        "version": 2,
        "shards": [
            {
                "format": "mds",
                "raw_data": {"basename": "shard-00000/shard.00000.mds", "bytes": 10, "hashes": {}},
                "zip_data": None,
                "samples": 3,
            }
        ],
    }
    out = parts_index([("part=00000", part), ("part=00001", part)])
    assert out["version"] == 2
    assert [s["raw_data"]["basename"] for s in out["shards"]] == [
        "part=00000/shard-00000/shard.00000.mds",
        "part=00001/shard-00000/shard.00000.mds",
    ]
    assert out["shards"][0]["zip_data"] is None and out["shards"][1]["samples"] == 3
    assert part["shards"][0]["raw_data"]["basename"] == "shard-00000/shard.00000.mds"  # not mutated


def test_an_unrecorded_parts_trainer_shards_are_discarded(tmp_path):
    for folder in ("sequences_megatron", "sequences_mds", "documents"):
        for part in PARTS:
            (tmp_path / folder / part).mkdir(parents=True)
            (tmp_path / folder / part / "x").write_text("x")
    discard_unrecorded(str(tmp_path), recorded=1)
    for folder in ("sequences_megatron", "sequences_mds", "documents"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == ["part=00000"]
