"""Megatron indexed-dataset shards: the documented MMIDIDX layout, the dtype rule, the Beam writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest

from corpusforge.schemas.config import ConfigError, TokenizeConfig, load_config
from corpusforge.schemas.records import PackedRow, SequenceRow
from corpusforge.transforms.tokenize.megatron import index_bytes, read_shard, token_dtype
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from tests.helpers import interop_import, local_test_pipeline


def _read_documented_layout(prefix: Path) -> dict:
    """An independent reader of megatron-core's MMIDIDX v1 layout (not the module's own)."""
    idx = (prefix.with_suffix(".idx")).read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    version, code = struct.unpack_from("<QB", idx, 9)
    n_seq, n_doc = struct.unpack_from("<QQ", idx, 18)
    dtype = {8: np.uint16, 4: np.int32}[code]
    pos = 34
    lengths = np.frombuffer(idx, np.int32, n_seq, pos)
    pos += 4 * n_seq
    pointers = np.frombuffer(idx, np.int64, n_seq, pos)
    pos += 8 * n_seq
    docs = np.frombuffer(idx, np.int64, n_doc, pos)
    assert pos + 8 * n_doc == len(idx)
    data = prefix.with_suffix(".bin").read_bytes()
    itemsize = np.dtype(dtype).itemsize
    seqs = [
        np.frombuffer(data, dtype, int(n), int(p)).tolist() for n, p in zip(lengths, pointers, strict=True)
    ]
    assert len(data) == itemsize * int(lengths.sum())
    return {
        "version": version,
        "dtype": np.dtype(dtype),
        "sequences": seqs,
        "document_indices": docs.tolist(),
    }


def test_index_bytes_follow_the_documented_layout(tmp_path):
    seqs = [[1, 2, 3], [65000, 0], [7]]
    prefix = tmp_path / "s"
    prefix.with_suffix(".idx").write_bytes(index_bytes([len(s) for s in seqs], np.dtype(np.uint16)))
    prefix.with_suffix(".bin").write_bytes(b"".join(np.asarray(s, "<u2").tobytes() for s in seqs))
    got = _read_documented_layout(prefix)
    assert got["version"] == 1 and got["dtype"] == np.uint16
    assert got["sequences"] == seqs
    assert got["document_indices"] == [0, 1, 2, 3]  # one document per sequence, as preprocess_data writes
    assert [s.tolist() for s in (read_shard(str(prefix))[i] for i in range(3))] == seqs


def test_dtype_follows_the_vocabulary_and_a_too_small_one_is_refused():
    assert token_dtype(50_257) == np.uint16  # GPT-2
    assert token_dtype(65_500) == np.int32  # Megatron's own cut-off, not 2**16
    assert token_dtype(65_536, "uint16") == np.uint16
    with pytest.raises(ValueError, match="tokenize.token_dtype"):
        token_dtype(100_000, "uint16")
    with pytest.raises(ConfigError, match="tokenize.token_dtype"):
        WriteTrainerFormats(TokenizeConfig(formats=["megatron"], token_dtype="uint16"), "/tmp/x", 100_000, 1)


@pytest.mark.parametrize(
    "value, message",
    [
        ("[parquet,arrow]", "tokenize.formats.1"),
        ("[megatron,megatron]", "tokenize.formats"),
        ("[]", "tokenize.formats"),
    ],
)
def test_bad_formats_fail_at_start_up_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"tokenize.formats={value}"])


def _rows() -> list[tuple[int, SequenceRow | PackedRow]]:
    rows: list[tuple[int, SequenceRow | PackedRow]] = []
    for d in range(40):
        rows.append((16, SequenceRow(list(range(d, d + 5 + d % 7)), 5 + d % 7, f"doc{d:02d}", 0)))
    rows.append((16, SequenceRow([9] * 16, 16, "long", 0)))
    rows.append((16, SequenceRow([8] * 3, 3, "long", 1)))
    return rows


def _write(tmp_path: Path, rows, **cfg) -> Path:
    config = TokenizeConfig(buckets=[16], formats=["megatron"], shards=3, **cfg)
    with local_test_pipeline() as p:
        _ = p | beam.Create(rows) | WriteTrainerFormats(config, str(tmp_path), 1000, config.shards)
    return tmp_path / "sequences_megatron"


def test_writer_shards_hold_every_row_once_with_provenance_in_sample_order(tmp_path):
    rows = _rows()
    folder = _write(tmp_path, rows, shuffle_seed=3)
    listing = json.loads((folder / "index.json").read_text())
    assert listing["dtype"] == "uint16" and len(listing["shards"]) == 3
    by_key = {(r.doc_id, r.chunk_index): r.input_ids for _, r in rows}
    seen = {}
    for entry in listing["shards"]:
        shard = _read_documented_layout(folder / entry["prefix"])
        side = pq.read_table(folder / entry["provenance"]).to_pylist()
        assert [s["sample"] for s in side] == list(range(len(shard["sequences"])))
        assert entry["tokens"] == sum(len(s) for s in shard["sequences"])
        for seq, prov in zip(shard["sequences"], side, strict=True):
            key = (prov["doc_ids"][0], prov["chunk_indices"][0])
            assert key not in seen
            seen[key] = seq
    assert seen == by_key  # token conservation: exactly the rows, each once
    assert listing["tokens"] == sum(len(v) for v in by_key.values())
    assert listing["data_path"][1::2] == [f"{folder}/{e['prefix']}" for e in listing["shards"]]


def test_the_seed_reorders_the_same_rows_and_the_same_seed_repeats_them(tmp_path):
    def order(seed, sub):
        folder = _write(tmp_path / sub, _rows(), shuffle_seed=seed)
        return [
            d
            for f in sorted(folder.glob("*.docs.parquet"))
            for d in pq.read_table(f).column("doc_ids").to_pylist()
        ]

    a, b, c = order(1, "a"), order(1, "b"), order(2, "c")
    assert a == b and a != c and sorted(a) == sorted(c)


@pytest.mark.interop
def test_megatron_cores_own_indexed_dataset_reads_the_shards(tmp_path):
    """megatron-core's own reader agrees (it needs PyTorch: `make test-interop`, .venv-interop)."""
    indexed = interop_import("megatron.core.datasets.indexed_dataset", "megatron-core")
    rows = _rows()
    folder = _write(tmp_path, rows, shuffle_seed=5)
    listing = json.loads((folder / "index.json").read_text())
    by_key = {(r.doc_id, r.chunk_index): r.input_ids for _, r in rows}
    n = 0
    for entry in listing["shards"]:
        ds = indexed.IndexedDataset(str(folder / entry["prefix"]))
        side = pq.read_table(folder / entry["provenance"]).to_pylist()
        assert len(ds) == len(side) and list(ds.document_indices) == list(range(len(ds) + 1))
        for i, prov in enumerate(side):
            assert ds[i].tolist() == by_key[(prov["doc_ids"][0], prov["chunk_indices"][0])]
        n += len(ds)
    assert n == len(rows)


def test_mds_without_its_package_fails_at_start_up_naming_the_key(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "streaming" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"tokenize.formats: mds needs mosaicml-streaming"):
        WriteTrainerFormats(TokenizeConfig(formats=["mds"]), "/tmp/x", 1000, 1)
