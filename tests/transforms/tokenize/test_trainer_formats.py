"""End to end: trainer formats next to sequences/, the seeded global shuffle on 1 and 2 workers,
token conservation per format, and provenance from a training sample back to its input line.

One pair of runs of the sample (2 workers and 1 worker, same config) serves the whole module.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from corpusforge.pipelines.cli import main as cli_main
from corpusforge.transforms.tokenize.megatron import read_shard
from tests.helpers import IN_PROCESS, SAMPLE_DIR, stages_off

HAS_MDS = importlib.util.find_spec("streaming") is not None
FORMAT_LIST = ["parquet", "megatron"] + (["mds"] if HAS_MDS else [])
FORMATS = "[" + ",".join(FORMAT_LIST) + "]"


def _run(out: Path, workers: str) -> dict:
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR),
        "--output",
        str(out),
        "--overwrite",
        "--workers",
        workers,
        # one worker in this process (Beam's in-memory runner), two in worker processes: two layouts
        *([IN_PROCESS] if workers == "1" else []),
        *stages_off("normalize", "tokenize"),  # the writers of tokens are under test
        "--set",
        f"tokenize.formats={FORMATS}",
        "--set",
        "tokenize.shuffle_seed=11",
        "--set",
        "tokenize.shards=3",
        "--set",
        "tokenize.buckets=[64,256,1024]",
    ]
    assert cli_main(args) == 0
    return json.loads((out / "stats.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    base = tmp_path_factory.mktemp("formats")
    return {w: (base / f"w{w}", _run(base / f"w{w}", w)) for w in ("2", "1")}


def _parquet_rows(out: Path) -> dict[str, list]:
    """Each shuffled Parquet file's (doc_id, chunk_index) in file order."""
    return {
        str(f.relative_to(out)): [(r["doc_id"], r["chunk_index"]) for r in pq.read_table(f).to_pylist()]
        for f in sorted((out / "sequences").glob("bucket=*/*.parquet"))
    }


def _megatron(out: Path) -> list[tuple[list[int], dict]]:
    folder = out / "sequences_megatron"
    listing = json.loads((folder / "index.json").read_text())
    samples = []
    for e in listing["shards"]:
        shard = read_shard(str(folder / e["prefix"]))
        side = pq.read_table(folder / e["provenance"]).to_pylist()
        samples += [(shard[i].tolist(), side[i]) for i in range(len(shard))]
    return samples


@pytest.mark.slow
def test_shuffled_rows_and_their_order_are_the_same_on_one_and_two_workers(runs):
    (two, _), (one, _) = runs["2"], runs["1"]
    assert _parquet_rows(two) == _parquet_rows(one)
    assert len(_parquet_rows(two)) > 1
    for name in (p.name for p in (two / "sequences_megatron").glob("shard-*")):
        assert (two / "sequences_megatron" / name).read_bytes() == (
            one / "sequences_megatron" / name
        ).read_bytes(), name
    listings = [json.loads((o / "sequences_megatron" / "index.json").read_text()) for o in (two, one)]
    assert listings[0]["shards"] == listings[1]["shards"]  # data_path differs only by the output folder
    # spread, not sorted: the rows of a file are not in id order
    assert any(rows != sorted(rows) for rows in _parquet_rows(two).values())


@pytest.mark.slow
def test_every_format_holds_exactly_the_tokens_of_sequences(runs):
    out, stats = runs["2"]
    table = pads.dataset(str(out / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    expected = sorted(((r["doc_id"], r["chunk_index"]), list(r["input_ids"])) for r in table)
    megatron = sorted(((p["doc_ids"][0], p["chunk_indices"][0]), ids) for ids, p in _megatron(out))
    assert megatron == expected
    docs = pads.dataset(str(out / "documents"), format="parquet").to_table().to_pylist()
    assert sum(len(ids) for _, ids in expected) == sum(d["n_tokens"] for d in docs) > 0
    for name in FORMAT_LIST[1:]:
        assert stats["formats"][name]["tokens_conserved"] is True, name
        assert stats["formats"][name]["rows"] == len(expected)
    if HAS_MDS:
        from streaming import StreamingDataset

        ds = StreamingDataset(local=str(out / "sequences_mds"), shuffle=False, batch_size=1)
        mds = sorted(((s["doc_ids"][0], s["chunk_indices"][0]), s["input_ids"].tolist()) for s in ds)
        assert mds == expected


@pytest.mark.slow
def test_a_megatron_sample_leads_back_to_its_input_line(runs):
    out, _ = runs["2"]
    docs = {d["id"]: d for d in pads.dataset(str(out / "documents"), format="parquet").to_table().to_pylist()}
    samples = _megatron(out)
    ids, prov = samples[len(samples) // 2]
    doc = docs[prov["doc_ids"][0]]
    with open(doc["input_path"], "rb") as f:
        f.seek(doc["input_offset"])
        line = json.loads(f.readline())
    assert line["id"] == doc["id"]
    assert len(ids) <= doc["n_tokens"]
