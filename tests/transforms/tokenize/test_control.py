"""Control tokens (tokenize.control_tokens): config validation, stable fraction, token ids and
decoding, and one sample run where toxic documents' rows start with the high token."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to
from tokenizers import Tokenizer

from corpusforge.pipelines.cli import main as cli_main
from corpusforge.pipelines.local.runner import LocalRunner
from corpusforge.schemas.config import ConfigError, TokenizeConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.tokenize.control import build_control, chosen
from corpusforge.transforms.tokenize.loading import load_tokenizer
from corpusforge.transforms.tokenize.stage import TokenizeAndBucket
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer
from tests.helpers import IN_PROCESS, SAMPLE_DIR, local_test_pipeline, stages_off

TOXIC_RULE = {"field": "toxicity_score", "bins": [0.5], "names": ["low", "high"]}


def _cfg(*rules: dict, **kw) -> TokenizeConfig:
    return TokenizeConfig(control_tokens=list(rules), **kw)


def test_names_not_matching_bins_fail_at_start_up_naming_the_key():
    with pytest.raises(ConfigError, match=r"tokenize\.control_tokens\[1\]\.names"):
        load_config(
            overrides=[
                "tokenize.control_tokens=[{field: lang, values: [en]}, "
                "{field: toxicity_score, bins: [0.3, 0.7], names: [low, high]}]"
            ]
        )
    with pytest.raises(ConfigError, match=r"tokenize\.control_tokens\[0\]\.names"):
        load_config(overrides=["tokenize.control_tokens=[{field: toxicity_score, bins: [0.5]}]"])


@pytest.mark.parametrize(
    "rule, key",
    [
        ({"field": "toxicity_score", "bins": [0.7, 0.3], "names": ["a", "b", "c"]}, r"\[0\]\.bins"),
        (
            {"field": "toxicity_score", "bins": [0.5], "names": ["a", "b"], "fraction": 1.5},
            r"\[0\]\.fraction",
        ),
        ({"field": "lang", "values": ["en", "e n"]}, r"\[0\]\.values"),
        ({"field": "lang", "values": ["en"], "bins": [0.5], "names": ["a", "b"]}, r"\[0\]: .*either bins"),
        ({"field": "lang", "max_values": 0}, r"\[0\]\.max_values"),
    ],
)
def test_bad_rules_fail_naming_their_key(rule, key):
    with pytest.raises(ConfigError, match=r"tokenize\.control_tokens" + key):
        load_config(overrides=[f"tokenize.control_tokens=[{json.dumps(rule)}]"])


@pytest.mark.parametrize(
    "rule, key",
    [
        ({"field": "no_such_column", "values": ["x"]}, r"\[0\]\.field"),
        ({"field": "lang", "bins": [0.5], "names": ["a", "b"]}, r"\[0\]\.values"),  # string column with bins
        ({"field": "toxicity_score", "values": ["x"]}, r"\[0\]\.bins"),  # numeric column with values
    ],
)
def test_rules_are_checked_against_the_document_columns(rule, key):
    with pytest.raises(ConfigError, match=r"tokenize\.control_tokens" + key):
        build_control(_cfg(rule))


def test_default_config_has_no_rules_and_builds_no_control():
    assert build_control(load_config().tokenize) is None


def test_added_tokens_get_new_special_ids_and_decode_back_exactly():
    control = build_control(_cfg(TOXIC_RULE, {"field": "lang", "values": ["en", "de"]}))
    base = load_tokenizer(None).get_vocab_size(with_added_tokens=True)
    assert control.tokens == [
        "<|toxicity_score:low|>",
        "<|toxicity_score:high|>",
        "<|lang:en|>",
        "<|lang:de|>",
    ]
    assert sorted(control.ids.values()) == list(range(base, base + 4))  # after the existing vocabulary
    tok = Tokenizer.from_str(control.tokenizer_json())  # the file the run writes
    assert {t: tok.token_to_id(t) for t in control.tokens} == control.ids
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    assert set(control.tokens) <= special
    text = "Some words after the tokens."
    ids = [control.ids["<|toxicity_score:high|>"], control.ids["<|lang:en|>"]] + tok.encode(
        text, add_special_tokens=False
    ).ids
    assert tok.decode(ids, skip_special_tokens=False) == "<|toxicity_score:high|><|lang:en|>" + text
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_binning_strings_and_missing_values():
    control = build_control(_cfg(TOXIC_RULE, {"field": "lang", "values": ["en"]}))
    assert control.tokens_for(Document("a", "t", toxicity_score=0.49, lang="en")) == [
        "<|toxicity_score:low|>",
        "<|lang:en|>",
    ]
    assert control.tokens_for(Document("a", "t", toxicity_score=0.5, lang="fr")) == [
        "<|toxicity_score:high|>"
    ]
    assert control.tokens_for(Document("a", "t")) == []  # no score, no language: no token
    assert control.tokens_for(Document("a", "t", toxicity_score=float("nan"))) == []


def test_fraction_is_a_stable_share_of_the_ids():
    ids = [f"doc-{i}" for i in range(4000)]
    picked = [i for i in ids if chosen(i, "toxicity_score", 0.25)]
    assert 0.22 < len(picked) / len(ids) < 0.28
    assert picked == [i for i in ids if chosen(i, "toxicity_score", 0.25)]
    assert set(picked) <= {i for i in ids if chosen(i, "toxicity_score", 0.5)}  # a larger share contains it
    assert picked != [i for i in ids if chosen(i, "lang", 0.25)]  # each rule chooses on its own


def _n_tokens_on(
    workers: int, docs: list[Document], cfg: TokenizeConfig, expected: list[tuple[str, int]]
) -> None:
    """Tokenize ``docs`` on ``workers`` worker threads; (id, n_tokens) must be ``expected``."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    opts = PipelineOptions([f"--direct_num_workers={workers}", "--direct_running_mode=multi_threading"])
    with TestPipeline(runner=LocalRunner(), options=opts) as p:
        tokenized, _ = p | beam.Create(docs) | TokenizeAndBucket(cfg)
        assert_that(tokenized | beam.Map(lambda d: (d.id, d.n_tokens)), equal_to(expected))


@pytest.mark.parametrize("workers", [1, 2])
def test_same_documents_tagged_on_one_and_two_workers(workers):
    cfg = _cfg({**TOXIC_RULE, "fraction": 0.5}, buckets=[64])
    docs = [Document(f"d{i}", "the same words", toxicity_score=0.9) for i in range(60)]
    info = TokenizeAndBucket(cfg).info
    plain = len(
        DocumentTokenizer(None, info.bos_id, info.eos_id, word_cache=True).encode(["the same words"])[0]
    )
    picked = {d.id for d in docs if chosen(d.id, "toxicity_score", 0.5)}
    assert 10 < len(picked) < 50  # a real share: neither none nor all
    # n_tokens is one longer exactly for the documents the stable hash chose, on any worker count
    _n_tokens_on(workers, docs, cfg, [(d.id, plain + (d.id in picked)) for d in docs])


def test_tokenize_inserts_the_token_after_bos_and_counts_it():
    cfg = _cfg(TOXIC_RULE, add_bos=True, bos="<|endoftext|>", buckets=[64])
    control = build_control(cfg)
    docs = [Document("t", "nasty words", toxicity_score=0.8), Document("c", "kind words", toxicity_score=0.1)]
    bos = load_tokenizer(None).token_to_id("<|endoftext|>")
    with local_test_pipeline() as p:
        _, rows = p | beam.Create(docs) | TokenizeAndBucket(cfg)
        starts = rows | beam.Map(lambda kv: (kv[1].doc_id, list(kv[1].input_ids[:2])))
        assert_that(
            starts,
            equal_to(
                [
                    ("t", [bos, control.ids["<|toxicity_score:high|>"]]),
                    ("c", [bos, control.ids["<|toxicity_score:low|>"]]),
                ]
            ),
        )


# --- one sample run with a toxicity rule (shared by the checks below) ---------------------------


@pytest.fixture(scope="module")
def toxic_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("control") / "out"
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR / "toxicity.jsonl"),
        "--output",
        str(out),
        "--overwrite",
        "--workers",
        "2",
        # what the rule reads (toxicity), what writes the tokens (tokenize) and the report's table
        *stages_off("normalize", "toxicity", "tokenize", "report"),
        "--set",
        f"tokenize.control_tokens=[{json.dumps(TOXIC_RULE)}]",
    ]
    assert cli_main(args) == 0
    return out


@pytest.mark.slow
def test_toxic_documents_rows_start_with_the_high_token_and_tokens_are_conserved(toxic_run):
    stats = json.loads((toxic_run / "stats.json").read_text())
    tok = Tokenizer.from_file(str(toxic_run / "tokenizer.json"))
    high, low = tok.token_to_id("<|toxicity_score:high|>"), tok.token_to_id("<|toxicity_score:low|>")
    assert high is not None and low is not None
    docs = {
        r["id"]: r
        for f in sorted((toxic_run / "documents").glob("**/*.parquet"))
        for r in pq.read_table(f).to_pylist()
    }
    rows = (
        pads.dataset(str(toxic_run / "sequences"), format="parquet", partitioning="hive")
        .to_table()
        .to_pylist()
    )
    first = {r["doc_id"]: r["input_ids"][0] for r in rows if r["chunk_index"] == 0}
    toxic = {i for i, d in docs.items() if d["toxicity_score"] >= 0.5}
    assert toxic and len(toxic) < len(docs)  # the sample has both kinds
    assert {i for i, t in first.items() if t == high} == toxic
    assert {i for i, t in first.items() if t == low} == set(docs) - toxic
    # n_tokens counts the control token; every token lands in exactly one row
    assert sum(r["length"] for r in rows) == sum(d["n_tokens"] for d in docs.values())
    assert stats["sequences"]["tokens_conserved"] is True
    assert stats["control_tokens"]["documents"] == {
        "<|toxicity_score:low|>": len(docs) - len(toxic),
        "<|toxicity_score:high|>": len(toxic),
    }
    # the decoded row is the control token followed by the document's text
    some = sorted(toxic)[0]
    ids = [
        t
        for r in sorted((r for r in rows if r["doc_id"] == some), key=lambda r: r["chunk_index"])
        for t in r["input_ids"]
    ]
    assert tok.decode(ids, skip_special_tokens=True) == docs[some]["text"]
    assert tok.decode(ids[:1], skip_special_tokens=False) == "<|toxicity_score:high|>"
    report = (toxic_run / "report.html").read_text()
    assert 'data-table="control_tokens"' in report and "toxicity_score:high" in report


@pytest.mark.slow
def test_no_rules_write_no_tokenizer_file(tmp_path):
    out = tmp_path / "plain"
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR / "tokenize.jsonl"),
        "--output",
        str(out),
        "--workers",
        "1",
        IN_PROCESS,
        *stages_off("normalize", "tokenize"),
    ]
    assert cli_main(args) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert not (out / "tokenizer.json").exists() and "control_tokens" not in stats
