"""Token-budget mixing: the two-pass plan, its config errors, and the Beam transform."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.schemas.config import ConfigError, MixConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.tokenize.mix import Mix, group_of, mix_summary, plan_group, repeat_ids, source_id
from tests.helpers import local_test_pipeline


def _members(n: int, size: int, prefix: str) -> list[tuple[str, int]]:
    return [(f"{prefix}{i}", size + i % 5) for i in range(n)]


def test_a_share_below_what_is_there_drops_whole_documents_to_within_one_percent():
    members = _members(200, 100, "w")
    available = sum(n for _, n in members)
    uses, report = plan_group(members, available // 3, max_epochs=4)
    assert set(uses.values()) <= {0, 1}
    assert abs(report["achieved"] - available // 3) <= 0.01 * available
    assert plan_group(members, available // 3, 4)[0] == uses  # deterministic


def test_a_share_above_what_is_there_repeats_documents_up_to_max_epochs_and_reports_the_cap():
    members = _members(50, 100, "f")
    available = sum(n for _, n in members)
    uses, report = plan_group(members, int(2.5 * available), max_epochs=4)
    assert set(uses.values()) <= {2, 3} and abs(report["achieved"] - 2.5 * available) <= 0.01 * available
    uses, report = plan_group(members, 10 * available, max_epochs=4)
    assert set(uses.values()) == {4} and report["capped"] and report["achieved"] == 4 * available


def test_repeats_get_distinct_stream_ids_that_lead_back_to_the_document():
    assert repeat_ids("a#b", 3) == ["a#b", "a#b#1", "a#b#2"]
    assert [source_id(s) for s in repeat_ids("doc", 3)] == ["doc"] * 3
    assert source_id("a#b", known={"a#b"}) == "a#b"


def test_group_is_a_column_or_a_metadata_field():
    doc = Document(id="x", text="t", source="web", metadata='{"domain": "books"}')
    assert (
        group_of(doc, "source") == "web"
        and group_of(doc, "domain") == "books"
        and group_of(doc, "nope") == ""
    )


@pytest.mark.parametrize(
    "sets, key",
    [
        (["mix.targets={web: 0.7, forum: 0.2}"], "mix.targets"),
        (["mix.targets={web: 0.5, forum: 100}"], "mix.targets"),
        (["mix.max_epochs=0"], "mix.max_epochs"),
        (["mix.enabled=true"], "mix"),
    ],
)
def test_bad_mix_config_fails_at_start_up_naming_the_key(sets, key):
    with pytest.raises(ConfigError, match=key):
        load_config(None, sets)


def test_mix_transform_sets_mix_uses_and_repeats_the_token_stream():
    docs = [Document(id=f"w{i}", text="x", source="web", n_tokens=10) for i in range(20)]
    docs += [Document(id=f"f{i}", text="x", source="forum", n_tokens=10) for i in range(5)]
    docs += [Document(id="o0", text="x", source="other", n_tokens=10)]
    cfg = MixConfig(enabled=True, targets={"web": 0.5, "forum": 0.5}, max_epochs=2)
    # total 260 tokens: web gets 130 of its 200, forum wants 130 of 50 (capped at 2 epochs: 100)
    with local_test_pipeline() as p:
        out_docs, out_tokens = (
            p | "d" >> beam.Create(docs),
            p | "t" >> beam.Create([(d.id, [1] * 10) for d in docs]),
        ) | Mix(cfg)
        uses = (
            out_docs
            | "u" >> beam.Map(lambda d: (d.source, d.mix_uses))
            | "cu" >> beam.combiners.Count.PerElement()
        )
        assert_that(
            uses,
            equal_to([(("web", 1), 13), (("web", 0), 7), (("forum", 2), 5), (("other", 0), 1)]),
            label="uses",
        )
        stream = (
            out_tokens
            | "s" >> beam.Map(lambda kv: source_id(kv[0])[0])
            | "cs" >> beam.combiners.Count.PerElement()
        )
        assert_that(stream, equal_to([("w", 13), ("f", 10)]), label="stream")
    summary = mix_summary(
        {
            "mix": {
                "available:web": 200,
                "available:forum": 50,
                "left_out:other": 10,
                "achieved:web": 130,
                "achieved:forum": 100,
                "capped:forum": 1,
                "tokens": 230,
            }
        },
        cfg,
    )
    assert summary["groups"]["forum"] == {
        "target": 130,
        "available": 50,
        "achieved": 100,
        "capped": True,
        "no_documents": False,
    }
    assert summary["groups"]["web"]["target"] == 130 and summary["left_out_tokens"] == {"other": 10}


def _mix_web_and_books(**extra) -> None:
    """Web documents only, a target for books too: web's half of the 40 tokens is two documents."""
    docs = [Document(id=f"w{i}", text="x", source="web", n_tokens=10) for i in range(4)]
    cfg = MixConfig(enabled=True, targets={"web": 0.5, "books": 0.5}, **extra)
    with local_test_pipeline() as p:
        docs_in = p | "d" >> beam.Create(docs)
        tokens_in = p | "t" >> beam.Create([(d.id, [1] * 10) for d in docs])
        out_docs, _ = (docs_in, tokens_in) | Mix(cfg)
        assert_that(out_docs | beam.Map(lambda d: d.mix_uses), equal_to([0, 0, 1, 1]))


def test_a_target_for_a_group_with_no_documents_fails_the_run_naming_the_key():
    with pytest.raises(Exception, match=r"mix\.targets\.books: no document has source = 'books'"):
        _mix_web_and_books()


def test_allow_empty_groups_runs_on_with_that_share_unmet():
    _mix_web_and_books(allow_empty_groups=True)


@pytest.mark.slow
def test_a_mixed_run_conserves_tokens_as_n_tokens_times_mix_uses(tmp_path):
    import json

    import pyarrow.dataset as pads

    from corpusforge.pipelines.cli import main as cli_main
    from tests.helpers import SAMPLE_DIR, stages_off

    out = tmp_path / "mixed"
    args = [
        "run",
        "--input",
        str(SAMPLE_DIR),
        "--output",
        str(out),
        "--overwrite",
        "--workers",
        "2",
        *stages_off("normalize", "tokenize", "report"),  # mixing, its tokens and its report table
        "--set",
        "mix.enabled=true",
        "--set",
        "mix.targets={sample: 0.5, report-sample: 0.5}",
        "--set",
        "mix.max_epochs=3",
        "--set",
        "tokenize.formats=[parquet,megatron]",
    ]
    assert cli_main(args) == 0
    stats = json.loads((out / "stats.json").read_text())
    docs = pads.dataset(str(out / "documents"), format="parquet").to_table().to_pylist()
    assert len({d["id"] for d in docs}) == len(docs)  # documents/ holds each document once
    rows = pads.dataset(str(out / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    tokens = sum(r["length"] for r in rows)
    assert tokens == sum(d["n_tokens"] * d["mix_uses"] for d in docs) == stats["mix"]["tokens"]
    assert (
        stats["sequences"]["tokens_conserved"] is True
        and stats["formats"]["megatron"]["tokens_conserved"] is True
    )
    groups = stats["mix"]["groups"]
    for g, report in groups.items():
        assert report["achieved"] == sum(d["n_tokens"] * d["mix_uses"] for d in docs if d["source"] == g)
        assert report["available"] == sum(d["n_tokens"] for d in docs if d["source"] == g)
        assert report["achieved"] <= 3 * report["available"]
    # the small group is repeated (up to max_epochs), its repeats lead back to one document each
    assert max(d["mix_uses"] for d in docs if d["source"] == "report-sample") > 1
    ids = {d["id"] for d in docs}
    assert {source_id(r["doc_id"], ids) for r in rows} <= ids
    assert all(d["mix_uses"] == 0 for d in docs if d["source"] not in groups)
    report = (out / "report.html").read_text()
    assert (
        '<td data-key="group">report-sample</td>' in report and '<td data-key="group">sample</td>' in report
    )


@pytest.mark.slow
def test_a_run_whose_target_names_no_group_fails_in_one_line_before_sequences_are_written(tmp_path, capsys):
    from corpusforge.pipelines.cli import main as cli_main
    from tests.helpers import SAMPLE_DIR, stages_off

    out = tmp_path / "typo"
    sets = [
        "mix.enabled=true",
        "mix.targets={sample: 0.5, smaple: 0.5}",
        "tokenize.formats=[parquet,megatron]",
    ]
    # the mix's check of its targets is under test: the stages before tokenize are off (the
    # failure still comes from a worker process, as a user's would)
    args = ["run", "--input", str(SAMPLE_DIR), "--output", str(out), "--workers", "2"]
    args += stages_off("normalize", "tokenize")
    assert cli_main(args + [a for s in sets for a in ("--set", s)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("corpusforge: error: mix.targets.smaple: no document has source = 'smaple'")
    assert not any((out / e).exists() for e in ("sequences", "sequences_megatron", "_SUCCESS", "stats.json"))
