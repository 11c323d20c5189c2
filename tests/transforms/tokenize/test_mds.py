"""MDS shards written by the workers, one merged index, read back with mosaicml-streaming itself."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest

from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import PackedRow
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from tests.helpers import interop_import, local_test_pipeline

pytestmark = pytest.mark.interop
streaming = interop_import("streaming", "mosaicml-streaming")


def test_partitions_merge_into_one_dataset_that_streaming_reads_in_shard_order(tmp_path):
    rows = [(32, PackedRow(list(range(i, i + 6)), 6, [f"a{i}", f"b{i}"], [0, 4], [0, 2])) for i in range(30)]
    cfg = TokenizeConfig(buckets=[32], pack=True, formats=["megatron", "mds"], shards=4, shuffle_seed=0)
    with local_test_pipeline() as p:
        _ = p | beam.Create(rows) | WriteTrainerFormats(cfg, str(tmp_path), 1000, cfg.shards)
    folder = tmp_path / "sequences_mds"
    index = json.loads((folder / "index.json").read_text())
    assert {s["raw_data"]["basename"].split("/")[0] for s in index["shards"]} == {
        f"shard-{i:05d}" for i in range(4)
    }
    ds = streaming.StreamingDataset(local=str(folder), shuffle=False, batch_size=1)
    got = [(s["doc_ids"], s["doc_starts"], s["chunk_indices"], s["input_ids"].tolist()) for s in ds]
    assert sorted(got) == sorted((r.doc_ids, r.doc_starts, r.chunk_indices, r.input_ids) for _, r in rows)
    assert str(ds[0]["input_ids"].dtype) == "uint16"
    # the same samples in the same order as the Megatron shards (one grouping feeds both)
    import pyarrow.parquet as pq

    megatron = [
        d
        for f in sorted((tmp_path / "sequences_megatron").glob("*.docs.parquet"))
        for d in pq.read_table(f).column("doc_ids").to_pylist()
    ]
    assert [g[0] for g in got] == megatron
