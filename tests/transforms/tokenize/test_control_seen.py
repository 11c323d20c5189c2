"""String control-token rules without ``values``: one token per value seen in the documents that
reach tokenize (a Beam combine, sorted, as a side input), the same ids on any worker count, the
tokenizer written with exactly those tokens, and values that need escaping."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to
from tokenizers import Tokenizer

from corpusforge.pipelines.cli import main as cli_main
from corpusforge.pipelines.local.runner import LocalRunner
from corpusforge.schemas.config import ConfigError, TokenizeConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.tokenize.control import SeenValues, build_control, escape_value
from corpusforge.transforms.tokenize.loading import load_tokenizer
from corpusforge.transforms.tokenize.stage import TokenizeAndBucket
from tests.helpers import SAMPLE_DIR, stages_off

LANG = {"field": "lang"}


def _cfg(*rules: dict, **kw) -> TokenizeConfig:
    return TokenizeConfig(control_tokens=list(rules), **kw)


def _seen(control, docs: list[Document]) -> dict[str, list[str]]:
    fn = SeenValues(control.seen_rules)
    acc = fn.create_accumulator()
    for d in docs:
        acc = fn.add_input(acc, d)
    return fn.extract_output(fn.merge_accumulators([acc, fn.create_accumulator()]))


def test_values_that_would_break_the_token_are_escaped_reversibly():
    assert escape_value("en") == "en"
    assert escape_value("zh-Hant") == "zh-Hant"
    assert escape_value("über") == "über"  # printable non-ASCII stays
    assert escape_value("a|b") == "a%7Cb"
    assert escape_value("<x>") == "%3Cx%3E"
    assert escape_value("fr ca") == "fr%20ca"
    assert escape_value("50%") == "50%25"  # the escape character itself, so no two values collide
    assert escape_value("\u00a0") == "%C2%A0"  # white space outside ASCII: per UTF-8 byte
    assert escape_value("") is None  # an empty value gets no token, as a missing one


def test_seen_values_are_sorted_and_give_the_same_ids_whatever_the_order():
    control = build_control(_cfg(LANG))
    assert control.tokens == [] and control.seen_rules  # nothing known before the data
    docs = [Document(str(i), "t", lang=v) for i, v in enumerate(["fr", "en", None, "", "de", "en", "a|b"])]
    seen = _seen(control, docs)
    assert seen == {"lang": ["a%7Cb", "de", "en", "fr"]}
    resolved = control.resolve(seen)
    base = load_tokenizer(None).get_vocab_size(with_added_tokens=True)
    assert resolved.tokens == ["<|lang:a%7Cb|>", "<|lang:de|>", "<|lang:en|>", "<|lang:fr|>"]
    assert [resolved.ids[t] for t in resolved.tokens] == list(range(base, base + 4))
    assert control.resolve(_seen(control, docs[::-1])).ids == resolved.ids
    assert resolved.tokens_for(Document("x", "t", lang="a|b")) == ["<|lang:a%7Cb|>"]
    assert resolved.tokens_for(Document("x", "t", lang="")) == []
    assert resolved.tokens_for(Document("x", "t", lang="it")) == []  # not seen: no token
    # the schema is sized before the values are known: an upper bound that holds them all
    assert control.vocab_size >= max(resolved.ids.values()) + 1


def test_more_distinct_values_than_max_values_fails_naming_the_key():
    control = build_control(_cfg({**LANG, "max_values": 3}))
    docs = [Document(str(i), "t", lang=f"l{i}") for i in range(10)]
    with pytest.raises(
        ConfigError, match=r"tokenize\.control_tokens\[0\]\.max_values: 'lang' has more than 3"
    ):
        _seen(control, docs)
    assert _seen(control, docs[:3]) == {"lang": ["l0", "l1", "l2"]}  # at the bound: fine


def test_listed_values_still_fix_the_tokens_and_unlisted_values_get_none():
    control = build_control(_cfg({**LANG, "values": ["en", "de"]}))
    assert not control.seen_rules and control.tokens == ["<|lang:en|>", "<|lang:de|>"]
    assert control.tokens_for(Document("x", "t", lang="fr")) == []


DOCS = [Document(f"d{i}", f"words of document {i}", lang=["en", "de", "fr ca", ""][i % 4]) for i in range(40)]


def _starts_on(workers: int) -> None:
    """Tokenize DOCS on ``workers`` worker threads; each row's first id must be the expected one."""
    cfg = _cfg(LANG, buckets=[64])
    opts = PipelineOptions([f"--direct_num_workers={workers}", "--direct_running_mode=multi_threading"])
    with BeamPipeline(runner=LocalRunner(), options=opts) as p:
        _, rows = p | beam.Create(DOCS) | TokenizeAndBucket(cfg)
        firsts = rows | beam.Map(lambda kv: (kv[1].doc_id, int(kv[1].input_ids[0])))
        assert_that(firsts, equal_to(_expected_firsts()))


def _expected_firsts() -> list[tuple[str, int]]:
    control = build_control(_cfg(LANG))
    resolved = control.resolve({"lang": ["de", "en", "fr%20ca"]})
    tok = load_tokenizer(None)
    out = []
    for d in DOCS:
        tokens = resolved.tokens_for(d)
        first = resolved.ids[tokens[0]] if tokens else tok.encode(d.text, add_special_tokens=False).ids[0]
        out.append((d.id, first))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_start_with_the_seen_value_token_with_the_same_ids_on_one_and_two_workers(workers):
    # the expected ids come from the sorted values alone, so both worker counts must give them
    _starts_on(workers)


# --- one sample run with `- field: lang` (no values) --------------------------------------------


@pytest.fixture(scope="module")
def lang_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("control_seen") / "out"
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR / "langquality.jsonl"),
        "--output",
        str(out),
        "--overwrite",
        "--workers",
        "2",
        *stages_off("normalize", "language", "tokenize"),
        "--set",
        "language.keep=[]",
        "--set",
        "tokenize.control_tokens=[{field: lang}]",
    ]
    assert cli_main(args) == 0
    return out


@pytest.mark.slow
def test_a_run_gets_one_token_per_language_seen_and_writes_them_to_the_tokenizer(lang_run):
    docs = {
        r["id"]: r
        for f in sorted((lang_run / "documents").glob("**/*.parquet"))
        for r in pq.read_table(f).to_pylist()
    }
    langs = sorted({d["lang"] for d in docs.values() if d["lang"]})
    assert len(langs) >= 3  # the sample mixes languages
    tok = Tokenizer.from_file(str(lang_run / "tokenizer.json"))
    base = load_tokenizer(None).get_vocab_size(with_added_tokens=True)
    added = {t.content: i for i, t in tok.get_added_tokens_decoder().items() if i >= base}
    tokens = [f"<|lang:{v}|>" for v in langs]
    assert added == {t: base + k for k, t in enumerate(tokens)}  # exactly those, in sorted order
    rows = pads.dataset(str(lang_run / "sequences"), format="parquet", partitioning="hive").to_table()
    rows = rows.to_pylist()
    some = sorted(docs)[0]
    ids = [
        t
        for r in sorted((r for r in rows if r["doc_id"] == some), key=lambda r: r["chunk_index"])
        for t in r["input_ids"]
    ]
    token = f"<|lang:{docs[some]['lang']}|>"
    assert ids[0] == added[token]
    assert tok.decode(ids[:1], skip_special_tokens=False) == token
    assert tok.decode(ids, skip_special_tokens=True) == docs[some]["text"]  # round trip
    stats = json.loads((lang_run / "stats.json").read_text())
    counts = {v: sum(d["lang"] == v for d in docs.values()) for v in langs}
    assert stats["control_tokens"]["documents"] == {f"<|lang:{v}|>": n for v, n in counts.items()}
    assert stats["control_tokens"]["ids"] == {t: added[t] for t in tokens}


def test_a_pipeline_with_too_many_values_seen_fails_naming_the_key():
    cfg = _cfg({**LANG, "max_values": 1}, buckets=[64])
    docs = [Document("a", "x", lang="en"), Document("b", "y", lang="de")]
    with pytest.raises(ConfigError, match=r"tokenize\.control_tokens\[0\]\.max_values"):
        with BeamPipeline(runner=LocalRunner()) as p:
            _ = p | beam.Create(docs) | TokenizeAndBucket(cfg)
