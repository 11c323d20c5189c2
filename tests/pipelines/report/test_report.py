"""The run report: pure figures from stats.json, the HTML built from them, and an end-to-end run."""

from __future__ import annotations

import pytest
import yaml

from corpusforge.pipelines.report import data as rd
from corpusforge.pipelines.report.html import ReportInputs, render
from corpusforge.schemas.config import ReportConfig, default_config_path
from tests.helpers import FULL_PLOTS, as_int, full_stats, parse


def test_scrub_masks_contacts_but_keeps_ordinary_numbers():
    text = (
        "Write to jane.roe@example.org, call +44 20 7946 0958 or (555) 867-5309, pay with "
        "4111-1111-1111-1111 from 192.168.10.2. Desk: 345-899-3560x4587. In 2023 we sold 1,500 units at 3.14 each."
    )
    out = rd.scrub_pii(text)
    for secret in ("jane.roe", "7946", "867-5309", "4111", "192.168", "3560", "x4587"):
        assert secret not in out
    assert out.count("<EMAIL>") == 1 and out.count("<PHONE>") == 3 and "<CARD>" in out and "<IP>" in out
    assert "In 2023 we sold 1,500 units at 3.14 each." in out


def test_scrub_masks_ssn_iban_and_luhn_cards_only():
    out = rd.scrub_pii(
        "SSN 123-45-6789, IBAN GB42 NAWI 0445 4264 7886 19 or gb42nawi04454264788619, "
        "card 4900948022576220, not a card 4900948022576221"
    )
    assert "6789" not in out and "NAWI" not in out and "nawi" not in out and "4900948022576220" not in out
    assert out.count("<IBAN>") == 2 and out.count("<CARD>") == 1


def test_scrub_leaves_dates_years_and_decimals():
    text = "Opened 29.11.2022 at 10.12.2022 07 and 2019-04-10; in office 1994-2020 (1828-1893); 40677.51 EUR."
    assert rd.scrub_pii(text) == text


def test_example_text_masks_before_cutting():
    text = "x" * 95 + " bob@example.net and more"
    out = rd.example_text(text, 100)
    assert "bob@" not in out and "example.net" not in out
    assert out.endswith("…") and len(out) <= 102
    assert rd.example_text("short", 100) == "short"
    assert rd.example_text(None, 10) == ""


def test_funnel_and_rejections_follow_stats():
    stats = full_stats()
    rows = rd.funnel(stats)
    assert [r.stage for r in rows] == stats["stage_order"][1:]  # read is not a funnel step
    assert rows[0].docs_in == 1000 and rows[-1].docs_kept == 600
    reasons = dict(rd.rejections(stats))
    assert reasons["dedup:near"] == 100 and sum(reasons.values()) == 400
    assert rd.rejections(stats)[0] == ("dedup:near", 100)


def test_thresholds_are_found_in_the_signal_family_only():
    section = {
        "gopher_quality": {"min_mean_word_length": 3, "max_mean_word_length": 10, "enabled": True},
        "c4": {"min_mean_word_length": 99},
    }
    assert rd.thresholds(section, "gopher_quality.mean_word_length") == [
        ("gopher_quality.min_mean_word_length", 3.0),
        ("gopher_quality.max_mean_word_length", 10.0),
    ]
    assert rd.thresholds(section, "fineweb.line_punct_ratio") == []
    assert rd.thresholds(None, "x") == []


def test_sequence_buckets_compute_padding_waste():
    rows = rd.sequence_buckets(full_stats())
    assert [(r.bucket, r.rows, r.tokens, r.padding) for r in rows] == [
        (512, 300, 100_000, 53_600),
        (2048, 100, 150_000, 54_800),
    ]
    assert rows[0].waste == pytest.approx(53_600 / 153_600)


def test_prefixed_counters_strip_the_prefix_and_sort():
    assert rd.prefixed_counters(full_stats(), ["pii"], "replaced:") == {
        "EMAIL_ADDRESS": 41,
        "PHONE_NUMBER": 12,
    }


def test_default_yaml_documents_the_report_section():
    tree = yaml.safe_load(default_config_path().read_text())
    assert tree["report"] == ReportConfig().model_dump()


# --- HTML ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_report():
    """The report of every stage's stats, rendered once (~15 plots drawn by matplotlib)."""
    return parse(render(ReportInputs(full_stats(), {"en": 580, "und": 20}, {})))


def test_full_stats_draw_every_plot_and_tables_match(full_report):
    report = full_report
    assert set(report.plots) == FULL_PLOTS
    assert all(w > 100 and h > 50 for w, h in report.plots.values())
    assert report.not_run == []
    assert report.external == []
    seq = {r["bucket"]: r for r in report.tables["sequences"]}
    assert seq["512"]["waste"] == "34.9%" and as_int(seq["all"]["padding"]) == 108_400
    langs = {r["lang"]: r for r in report.tables["languages"]}
    assert as_int(langs["en"]["kept"]) == 580 and as_int(langs["de"]["rejected"]) == 60
    assert {r["key"]: as_int(r["count"]) for r in report.tables["contamination"]} == {
        "gsm8k": 15,
        "mmlu": 5,
        "humaneval": 0,
    }


def test_missing_stages_say_not_run():
    stats = full_stats()
    for name in (
        "language",
        "quality",
        "decontamination",
        "dedup_exact",
        "dedup_near",
        "pii",
        "toxicity",
        "bias",
        "prompt",
        "tokenize",
    ):
        stats["stages"].pop(name)
        stats["stage_order"].remove(name)
    report = parse(render(ReportInputs(stats, {}, {})))
    assert set(report.plots) == {"funnel", "rejections", "lengths"}
    assert set(report.not_run) == {
        "language",
        "quality",
        "dedup_exact, dedup_near",
        "decontamination",
        "pii",
        "toxicity",
        "bias",
        "prompt",
        "tokenize",
    }


def test_stage_that_ran_without_its_counters_is_reported_as_such():
    stats = full_stats()
    stats["stages"]["pii"].pop("counters")
    html = render(ReportInputs(stats, {}, {}))
    assert "no type recorded by" in html and "pii" not in parse(html).plots


# --- examples read back from rejected/ -----------------------------------------------------------
def _write_rejected(folder, rows, parts):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    size = -(-len(rows) // parts)
    for i in range(parts):
        chunk = rows[i * size : (i + 1) * size]
        pq.write_table(pa.Table.from_pylist(chunk), folder / f"part-{i:05d}.parquet", row_group_size=3)


def test_rejected_examples_are_stable_across_sharding_and_masked(tmp_path):
    rows = [
        {
            "id": f"doc-{i}",
            "reason": "quality:short" if i % 3 else "dedup:exact",
            "detail": None,
            "duplicate_of": "doc-0" if i % 3 == 0 else None,
            "text": f"record {i} mail me at user{i}@example.com " + "word " * 100,
        }
        for i in range(40)
    ]
    _write_rejected(tmp_path / "a" / "rejected", rows, 1)
    _write_rejected(tmp_path / "b" / "rejected", rows[::-1], 4)
    a = rd.rejected_examples(str(tmp_path / "a"), 3, 60)
    b = rd.rejected_examples(str(tmp_path / "b"), 3, 60)
    assert set(a) == {"quality:short", "dedup:exact"}
    assert [e.id for e in a["quality:short"]] == [e.id for e in b["quality:short"]]
    assert all(len(v) == 3 for v in a.values())
    for e in a["quality:short"] + a["dedup:exact"]:
        assert "@example.com" not in e.text and "<EMAIL>" in e.text and len(e.text) <= 62
        assert e.text.startswith(f"record {e.id.removeprefix('doc-')} ")  # its own row's text
    assert all(e.duplicate_of == "doc-0" for e in a["dedup:exact"])
    assert rd.rejected_examples(str(tmp_path / "a"), 0, 60) == {}
    assert rd.rejected_examples(str(tmp_path / "missing"), 3, 60) == {}


def test_examples_picked_in_one_row_group_are_those_picked_row_by_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"doc-{i}", "reason": "quality:short", "text": f"record {i}"} for i in range(40)]
    for name, group_rows in (("one", 40), ("each", 1)):
        (tmp_path / name / "rejected").mkdir(parents=True)
        path = tmp_path / name / "rejected" / "part-00000.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group_rows)
    one, each = (rd.rejected_examples(str(tmp_path / n), 6, 60)["quality:short"] for n in ("one", "each"))
    assert len(one) == 6 and one == each  # the same rows, in the same (stable hash) order
    assert all(e.text == f"record {e.id[4:]}" for e in one)


def test_rejected_examples_without_text_column(tmp_path):
    rows = [{"id": "x", "reason": "invalid:empty", "text": None}]
    _write_rejected(tmp_path / "rejected", rows, 1)
    [e] = rd.rejected_examples(str(tmp_path), 3, 60)["invalid:empty"]
    assert e.id == "x" and e.text == ""


def test_render_survives_empty_and_odd_stats():
    report = parse(render(ReportInputs({}, {}, {})))
    assert report.plots == {} and "validate" in report.not_run
    stats = full_stats()
    stats["config"] = {"toxicity": None, "quality": None}
    stats["stages"]["quality"]["histograms"]["odd"] = {"-inf": 3, "0.0": 1}
    report = parse(render(ReportInputs(stats, {}, {})))
    assert "quality.odd" in report.plots and "toxicity" in report.plots


def test_control_tokens_get_a_bar_chart_next_to_their_table(full_report):
    stats = full_stats()
    plain = full_report  # the same stats: the language table's counts do not change the plots
    assert "control_tokens" not in plain.plots and "control_tokens" not in plain.tables  # no rules
    documents = {"<|toxicity_score:low|>": 540, "<|toxicity_score:high|>": 60, "<|lang:en|>": 600}
    stats["control_tokens"] = {
        "documents": documents,
        "ids": {t: 50257 + i for i, t in enumerate(documents)},
        "tokenizer": "tokenizer.json",
    }
    report = parse(render(ReportInputs(stats, {}, {})))
    w, h = report.plots["control_tokens"]
    assert w > 100 and h > 50
    assert set(report.plots) == set(plain.plots) | {"control_tokens"}
    assert {r["token"]: as_int(r["documents"]) for r in report.tables["control_tokens"]} == documents


def test_pii_examples_are_the_same_whatever_the_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "id": f"doc-{i}",
            "text": f"doc {i} wrote to <EMAIL_ADDRESS> today",
            "pii_counts": {"EMAIL_ADDRESS": 1},
        }
        for i in range(30)
    ]
    for name, group_rows in (("one", 30), ("each", 1)):
        (tmp_path / name / "documents").mkdir(parents=True)
        path = tmp_path / name / "documents" / "part-00000.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group_rows)
    one, each = (rd.pii_examples(str(tmp_path / n), "<{entity}>", 4) for n in ("one", "each"))
    assert len(one["EMAIL_ADDRESS"]) == 4 and one == each
    assert len(set(one["EMAIL_ADDRESS"])) == 4  # four documents' own passages
