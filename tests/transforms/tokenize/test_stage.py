"""Tokenize and bucket as Beam transforms, the sequences/ output and its loaders, end to end."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.cli import main as cli_main
from corpusforge.pipelines.local.runner import LocalRunner
from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.tokenize.sequences_sink import WriteSequences
from corpusforge.transforms.tokenize.stage import TokenizeAndBucket
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer
from tests.helpers import IN_PROCESS, SAMPLE_DIR, SHARED, local_test_pipeline, stages_off

NEOX = SHARED / "data" / "tokenizers" / "gpt-neox-20b.tokenizer.json"
TEXTS = {
    "short": "Hello there.",
    "medium": "A sentence of moderate length that needs more than a few tokens to encode. " * 2,
    "long": "Long documents are cut into chunks of the largest bucket, their order kept. " * 12,
}


def _docs() -> list[Document]:
    return [Document(id=k, text=v) for k, v in TEXTS.items()]


def _encoded(cfg: TokenizeConfig) -> dict[str, list[int]]:
    tok = TokenizeAndBucket(cfg)
    logic = DocumentTokenizer(cfg.tokenizer, tok.info.bos_id, tok.info.eos_id, word_cache=True)
    return dict(zip(TEXTS, logic.encode(list(TEXTS.values())), strict=True))


def _reassemble(rows: list[dict]) -> dict[str, list[int]]:
    """Token ids per document from bucketed rows (doc_id/chunk_index) or packed rows."""
    pieces: dict[str, list[tuple[int, list[int]]]] = defaultdict(list)
    for r in rows:
        if "doc_ids" in r:
            starts = list(r["doc_starts"]) + [r["length"]]
            for i, doc_id in enumerate(r["doc_ids"]):
                pieces[doc_id].append(
                    (r["chunk_indices"][i], list(r["input_ids"][starts[i] : starts[i + 1]]))
                )
        else:
            pieces[r["doc_id"]].append((r["chunk_index"], list(r["input_ids"])))
    return {d: [t for _, ids in sorted(p) for t in ids] for d, p in pieces.items()}


def test_tokenize_sets_n_tokens_and_emits_every_token_in_bucketed_rows():
    cfg = TokenizeConfig(buckets=[8, 16, 64])
    expected = _encoded(cfg)
    assert len(expected["long"]) > 64  # the long text must be chunked for this test to mean anything
    with local_test_pipeline() as p:
        docs, sequences = p | beam.Create(_docs()) | TokenizeAndBucket(cfg)
        assert_that(
            docs | "n" >> beam.Map(lambda d: (d.id, d.n_tokens)),
            equal_to([(k, len(v)) for k, v in expected.items()]),
            label="n_tokens",
        )
        rows = sequences | "rows" >> beam.Map(
            lambda kv: (kv[0], kv[1].doc_id, kv[1].chunk_index, tuple(kv[1].input_ids))
        )

        def check(got):
            by_doc = _reassemble(
                [
                    {"doc_id": d, "chunk_index": c, "input_ids": ids, "length": len(ids)}
                    for _, d, c, ids in got
                ]
            )
            assert by_doc == expected
            bounds = [8, 16, 64]
            for bucket, _, _, ids in got:  # the smallest bucket that holds the row
                i = bounds.index(bucket)
                assert len(ids) <= bucket and (i == 0 or len(ids) > bounds[i - 1])
            assert sum(len(ids) for *_, ids in got) == sum(len(v) for v in expected.values())

        assert_that(rows, check, label="rows")


def test_pack_mode_fills_rows_of_the_largest_bound_and_keeps_document_boundaries():
    cfg = TokenizeConfig(buckets=[16, 32], pack=True)
    expected = _encoded(cfg)
    with local_test_pipeline() as p:
        _, sequences = p | beam.Create(_docs()) | TokenizeAndBucket(cfg)

        def check(got):
            rows = [
                {
                    "input_ids": r.input_ids,
                    "length": r.length,
                    "doc_ids": r.doc_ids,
                    "doc_starts": r.doc_starts,
                    "chunk_indices": r.chunk_indices,
                }
                for _, r in got
            ]
            assert _reassemble(rows) == expected
            full = [r for r in rows if r["length"] == 32]
            assert len(full) >= len(rows) - 1  # at most one tail per pack group (one group here)
            assert all(b == 32 for b, r in got if r.length > 16)

        assert_that(sequences, check)


def _write(tmp_path: Path, cfg: TokenizeConfig) -> Path:
    with local_test_pipeline() as p:
        tok = TokenizeAndBucket(cfg)
        _, sequences = p | beam.Create(_docs()) | tok
        _ = sequences | WriteSequences(
            str(tmp_path), cfg.buckets, tok.info.vocab_size, cfg.pack, num_shards=2
        )
    return tmp_path / "sequences"


@pytest.mark.parametrize("pack", [False, True])
def test_sequences_load_with_pyarrow_hive_partitioning_and_hf_datasets(tmp_path, pack):
    cfg = TokenizeConfig(buckets=[8, 16, 64], pack=pack)
    folder = _write(tmp_path, cfg)
    table = pads.dataset(str(folder), format="parquet", partitioning="hive").to_table()
    assert str(table.schema.field("input_ids").type) == "list<element: uint16>"
    assert set(table.column("bucket").to_pylist()) <= {8, 16, 64}
    for bucket, length in zip(
        table.column("bucket").to_pylist(), table.column("length").to_pylist(), strict=True
    ):
        assert length <= bucket
    rows = table.to_pylist()
    assert _reassemble(rows) == _encoded(cfg)
    # buckets with no rows get no folder (an empty Parquet file breaks datasets' loader)
    assert all(pq.ParquetFile(f).metadata.num_rows > 0 for f in folder.glob("bucket=*/*.parquet"))

    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == table.num_rows
    assert sum(ds["length"]) == sum(len(v) for v in _encoded(cfg).values())


def _table_rows(folder: Path) -> list[dict]:
    files = sorted(folder.glob("**/*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _run(inputs: Path, out: Path, *sets: str, workers: str = "2") -> dict:
    args = ["run", "--input", str(inputs), "--output", str(out), "--overwrite", "--workers", workers]
    # tokenization is under test: every other stage off (the sample's short records would not pass
    # language/quality filtering); a one-worker run is not about worker processes: in this process
    args += stages_off("normalize", "tokenize") + ([IN_PROCESS] if workers == "1" else [])
    for s in sets:
        args += ["--set", s]
    assert cli_main(args) == 0
    return json.loads((out / "stats.json").read_text())


def _check_run(out: Path, stats: dict, decode: DocumentTokenizer, sample: int | None = None) -> None:
    """Token conservation, per-bucket stats and decoding back to the kept documents' text."""
    docs = {r["id"]: r for r in _table_rows(out / "documents")}
    rows = pads.dataset(str(out / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    total = sum(r["length"] for r in rows)
    assert total == sum(d["n_tokens"] for d in docs.values()) > 0
    counters = stats["stages"]["bucket"]["counters"]
    assert sum(v for k, v in counters.items() if k.startswith("tokens:bucket=")) == total
    assert (
        sum(v for k, v in counters.items() if k.startswith("rows:bucket="))
        == len(rows)
        == stats["outputs"]["sequences"]["rows"]
    )
    for r in rows:
        assert counters[f"rows:bucket={r['bucket']}"] > 0
    assert sum(v for k, v in counters.items() if k.startswith("padding:bucket=")) == sum(
        r["bucket"] - r["length"] for r in rows
    )
    summary = stats["sequences"]
    assert summary["tokens_conserved"] is True and summary["tokens"] == total and summary["rows"] == len(rows)
    for bound, b in summary["buckets"].items():
        assert b["tokens"] == sum(r["length"] for r in rows if r["bucket"] == int(bound))
        assert 0 <= b["padding_frac"] < 1
    by_doc = _reassemble(rows)
    assert set(by_doc) == set(docs)
    ids = sorted(by_doc)[:sample] if sample else sorted(by_doc)
    for doc_id in ids:
        assert len(by_doc[doc_id]) == docs[doc_id]["n_tokens"]
        assert decode.decode(by_doc[doc_id]) == docs[doc_id]["text"], doc_id


@pytest.mark.slow
def test_sample_run_conserves_tokens_and_decodes_back_to_the_kept_text(sample_run):
    # the session's shared two-worker run of the sample (tests/conftest.py), read only
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["stage_order"][-2:] == ["tokenize", "bucket"]
    bucket_tokens = sum(
        v for k, v in stats["stages"]["bucket"]["counters"].items() if k.startswith("tokens:bucket=")
    )
    assert stats["stages"]["tokenize"]["counters"]["tokens"] == bucket_tokens
    _check_run(sample_run, stats, DocumentTokenizer(None, None, 0, word_cache=True))
    # the sample's long record lands in a bigger bucket than the short ones
    buckets = {p.name for p in (sample_run / "sequences").iterdir()}
    assert {"bucket=512", "bucket=1024"} <= buckets


def test_tokenizer_without_eos_stops_the_run_with_a_clear_message(tmp_path, capsys):
    from tokenizers import Tokenizer, models

    path = tmp_path / "plain.json"
    Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]")).save(str(path))
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR / "tokenize.jsonl"),
        "--output",
        str(tmp_path / "o"),
        "--set",
        f"tokenize.tokenizer={path}",
    ]
    assert cli_main(args) == 2
    assert "tokenize.eos" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.skipif(not NEOX.exists(), reason="../shared/data/tokenizers is not available")
def test_dev_corpus_with_gpt_neox_sequences_load_conserve_and_decode(dev_default_run, tmp_path):
    # the session's default run of the dev corpus with the GPT-NeoX tokenizer (tests/conftest.py),
    # shared with tests/pipelines/test_dev_tagging.py
    out = dev_default_run
    stats = json.loads((out / "stats.json").read_text())
    assert stats["config"]["tokenize"]["tokenizer"] == str(NEOX)
    _check_run(out, stats, DocumentTokenizer(str(NEOX), None, None, word_cache=True), sample=200)
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet", data_dir=str(out / "sequences"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == stats["outputs"]["sequences"]["rows"]


@pytest.mark.slow
def test_disabled_tokenize_writes_no_sequences_and_leaves_n_tokens_unset(tmp_path):
    out = tmp_path / "off"
    stats = _run(SAMPLE_DIR / "tokenize.jsonl", out, "tokenize.enabled=false", workers="1")
    assert "tokenize" not in stats["stage_order"] and not (out / "sequences").exists()
    assert {r["n_tokens"] for r in _table_rows(out / "documents")} == {None}


def test_tokenize_and_bucket_are_named_steps_of_the_built_graph(tmp_path):
    from corpusforge.pipelines.build import build_pipeline
    from corpusforge.schemas.config import load_config
    from corpusforge.transforms.io.read import discover_inputs

    files, _ = discover_inputs([str(SAMPLE_DIR / "tokenize.jsonl")])
    pipeline = beam.Pipeline(runner=LocalRunner())
    plan = build_pipeline(pipeline, load_config(None), files, str(tmp_path))
    names = {t.unique_name.split("/")[0] for t in pipeline.to_runner_api().components.transforms.values()}
    assert plan.stages[-2:] == ["tokenize", "bucket"] and {"tokenize", "bucket", "WriteSequences"} <= names
