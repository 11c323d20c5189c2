"""Tokenize and bucket: the pure logic (no pipeline), the tokenizer loading and the shipped tokenizer."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from corpusforge.schemas import arrow
from corpusforge.schemas.config import ConfigError, load_config
from corpusforge.transforms.tokenize.bucket import Packer, bucket_for, padding, split_document
from corpusforge.transforms.tokenize.loading import (
    TokenizerError,
    find_in_hf_cache,
    inspect_tokenizer,
    load_tokenizer,
    read_tokenizer_json,
)
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer
from tests.helpers import REPO, SHARED

TOKENIZERS = SHARED / "data" / "tokenizers"
NEOX = TOKENIZERS / "gpt-neox-20b.tokenizer.json"
LLAMA = TOKENIZERS / "llama.tokenizer.json"
BOUNDS = [4, 8, 16]


# --- bucketing -------------------------------------------------------------------------------


def test_bucket_is_the_smallest_bound_that_holds_the_length():
    assert [bucket_for(n, BOUNDS) for n in (1, 4, 5, 8, 9, 16)] == [4, 4, 8, 8, 16, 16]
    with pytest.raises(ValueError):
        bucket_for(17, BOUNDS)


def test_short_document_goes_whole_into_one_bucket():
    ((bucket, row),) = split_document("d", list(range(6)), BOUNDS)
    assert bucket == 8 and row.input_ids == list(range(6)) and row.chunk_index == 0 and row.length == 6


def test_long_document_is_cut_into_chunks_of_the_largest_bound_last_chunk_by_its_own_length():
    ids = list(range(16 * 2 + 3))
    rows = split_document("long", ids, BOUNDS)
    assert [(b, r.length, r.chunk_index) for b, r in rows] == [(16, 16, 0), (16, 16, 1), (4, 3, 2)]
    assert [t for _, r in sorted(rows, key=lambda br: br[1].chunk_index) for t in r.input_ids] == ids
    assert {r.doc_id for _, r in rows} == {"long"}


def test_document_of_exactly_the_largest_bound_is_one_row():
    rows = split_document("x", list(range(16)), BOUNDS)
    assert len(rows) == 1 and rows[0][0] == 16


def test_packer_fills_rows_to_the_largest_bound_and_keeps_boundaries():
    packer = Packer(8)
    docs = {"a": [1, 2, 3, 0], "b": [4, 5, 6, 7, 8, 9, 10, 0], "c": [11, 0]}
    rows = [r for doc_id, ids in docs.items() for r in packer.add(doc_id, ids)] + list(packer.flush())
    assert [r.length for r in rows] == [8, 6]
    first, tail = rows
    assert first.input_ids == [1, 2, 3, 0, 4, 5, 6, 7]
    assert (first.doc_ids, first.doc_starts, first.chunk_indices) == (["a", "b"], [0, 4], [0, 0])
    assert (tail.doc_ids, tail.doc_starts, tail.chunk_indices) == (["b", "c"], [0, 4], [1, 0])
    # every token exactly once, in order
    assert [t for r in rows for t in r.input_ids] == [t for ids in docs.values() for t in ids]


def test_packer_splits_a_document_longer_than_several_rows():
    packer = Packer(4)
    rows = list(packer.add("big", list(range(10)))) + list(packer.flush())
    assert [r.input_ids for r in rows] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [r.chunk_indices for r in rows] == [[0], [1], [2]]


def test_padding_is_what_a_fixed_length_batch_would_waste():
    assert padding(512, 500) == 12 and padding(8, 8) == 0


# --- config and schema -----------------------------------------------------------------------


def test_buckets_must_ascend():
    with pytest.raises(ConfigError, match=r"tokenize\.buckets"):
        load_config(None, ["tokenize.buckets=[1024,512]"])
    assert load_config(None, ["tokenize.buckets=[128,256]"]).tokenize.buckets == [128, 256]


def test_sequence_schema_narrows_token_ids_to_uint16_only_when_the_vocabulary_fits():
    small = arrow.sequence_schema(32_003)
    big = arrow.sequence_schema(128_256)
    assert small.field("input_ids").type == pa.list_(pa.uint16())
    assert big.field("input_ids").type == pa.list_(pa.int32())
    assert small.names == ["input_ids", "length", "doc_id", "chunk_index"]
    assert arrow.sequence_schema(None) == arrow.schema_of(arrow.records.SequenceRow)
    packed = arrow.sequence_schema(50_280, packed=True)
    assert packed.names == ["input_ids", "length", "doc_ids", "doc_starts", "chunk_indices"]
    with pytest.raises(KeyError):
        arrow.schema_variant(arrow.records.SequenceRow, {"nope": pa.int8()})


# --- tokenizers ------------------------------------------------------------------------------


def test_project_tokenizer_appends_eos_and_round_trips_text():
    info = inspect_tokenizer(None, False, None, True, None)
    tok = DocumentTokenizer(None, info.bos_id, info.eos_id, word_cache=True)
    texts = ["Grüße aus München!", "東京 🚀 ∑x²", "def f(x):\n    return x\n", ""]
    encoded = tok.encode(texts)
    assert all(ids[-1] == info.eos_id for ids in encoded)
    assert encoded[-1] == [info.eos_id]  # an empty text is just the EOS
    assert [tok.decode(ids) for ids in encoded] == texts
    assert info.vocab_size < 1 << 16


def test_text_spelling_a_special_token_is_not_turned_into_that_token():
    info = inspect_tokenizer(None, False, None, True, None)
    tok = DocumentTokenizer(None, None, info.eos_id, word_cache=True)
    (ids,) = tok.encode(["before <|endoftext|> after"])
    assert ids.count(info.eos_id) == 1 and ids[-1] == info.eos_id
    assert tok.decode(ids) == "before <|endoftext|> after"


def test_shipped_tokenizer_is_reproduced_byte_for_byte_by_its_training_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_tokenizer", REPO / "scripts" / "train_tokenizer.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.train() == script.DEFAULT_OUT.read_text(encoding="utf-8")


def _no_special_tokenizer(tmp_path):
    tok = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "plain.tokenizer.json"
    tok.save(str(path))
    return path


def test_tokenizer_without_eos_fails_clearly_unless_one_is_named(tmp_path):
    path = _no_special_tokenizer(tmp_path)
    with pytest.raises(TokenizerError, match=r"tokenize\.eos: the tokenizer has no EOS"):
        inspect_tokenizer(str(path), False, None, True, None)
    assert inspect_tokenizer(str(path), False, None, True, "b").eos_id == 1
    assert inspect_tokenizer(str(path), False, None, False, None).eos_id is None
    with pytest.raises(TokenizerError, match="not in the tokenizer's vocabulary"):
        inspect_tokenizer(str(path), False, None, True, "</s>")


def test_tokenizer_is_found_in_the_local_hf_cache_and_never_downloaded(tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "hub" / "models--acme--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    (snapshot / "tokenizer.json").write_text(_no_special_tokenizer(tmp_path).read_text())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert find_in_hf_cache("acme/tiny") == snapshot / "tokenizer.json"
    assert load_tokenizer("acme/tiny").get_vocab_size() == 3
    with pytest.raises(TokenizerError, match="never downloads"):
        read_tokenizer_json("acme/not-cached")


def test_missing_tokenizer_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_tokenizer_json(str(tmp_path / "absent.json"))


@pytest.mark.skipif(not NEOX.exists(), reason="../shared/data/tokenizers is not available")
def test_gpt_neox_tokenizer_eos_and_round_trip():
    info = inspect_tokenizer(str(NEOX), False, None, True, None)
    assert info.eos_id == 50279 and info.vocab_size >= 50_277
    tok = DocumentTokenizer(str(NEOX), None, info.eos_id, word_cache=True)
    text = "The quick brown fox jumps over the lazy dog.\n\nZweiter Absatz: Grüße!"
    (ids,) = tok.encode([text])
    assert ids[-1] == 50279 and tok.decode(ids) == text
    assert len(ids) < len(text) / 2  # a real vocabulary compresses English text


@pytest.mark.skipif(not LLAMA.exists(), reason="../shared/data/tokenizers is not available")
def test_llama_tokenizer_bos_and_eos_come_from_its_special_tokens_not_its_template():
    info = inspect_tokenizer(str(LLAMA), True, None, True, None)
    assert (info.bos_id, info.eos_id) == (1, 2)
    tok = DocumentTokenizer(str(LLAMA), info.bos_id, info.eos_id, word_cache=True)
    (ids,) = tok.encode(["Hello world"])
    assert ids[0] == 1 and ids[-1] == 2 and ids.count(1) == 1  # the template's BOS is not added twice
    no_bos = DocumentTokenizer(str(LLAMA), None, info.eos_id, word_cache=True).encode(["Hello world"])[0]
    assert no_bos == ids[1:]


def test_tokenizer_path_json_is_read_through_beam_filesystems(tmp_path):
    path = _no_special_tokenizer(tmp_path)
    assert json.loads(read_tokenizer_json(str(path)))["model"]["type"] == "WordLevel"


def test_tokenizer_is_not_pickled_with_the_stage():
    import pickle

    tok = DocumentTokenizer(None, None, 0, word_cache=True)
    tok.ready()
    clone = pickle.loads(pickle.dumps(tok))
    assert clone._tok is None and len(pickle.dumps(tok)) < 1000
    assert clone.encode(["hi"]) == tok.encode(["hi"])


def test_sequence_summary_reports_padding_waste_and_token_conservation():
    from corpusforge.transforms.tokenize.summary import sequence_summary

    counters = {
        "tokenize": {"tokens": 1100},
        "bucket": {
            "rows:bucket=512": 2,
            "tokens:bucket=512": 600,
            "padding:bucket=512": 424,
            "rows:bucket=1024": 1,
            "tokens:bucket=1024": 500,
            "padding:bucket=1024": 524,
            "in": 3,
        },
    }
    s = sequence_summary(counters)
    assert (s["rows"], s["tokens"], s["padding"], s["tokens_conserved"]) == (3, 1100, 948, True)
    assert list(s["buckets"]) == ["512", "1024"] and s["buckets"]["1024"]["padding_frac"] == round(
        524 / 1024, 4
    )
    counters["tokenize"]["tokens"] = 1101
    assert sequence_summary(counters)["tokens_conserved"] is False
    assert sequence_summary({"tokenize": {"tokens": 5}}) is None
