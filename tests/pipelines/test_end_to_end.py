"""End to end: the embedded sample through the CLI under the multi-processing local runner."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from corpusforge.pipelines.cli import main
from tests.helpers import (
    IN_PROCESS,
    STAGES_OFF,
    input_records,
    run_cli,
    stages_off,
    table_rows,
)

# Every reason the foundation can give, each exercised by samples/sample/malformed.jsonl.
FOUNDATION_REASONS = {
    "invalid:bad_json",
    "invalid:no_text",
    "invalid:bad_utf8",
    "invalid:empty",
    "invalid:too_long",
    "invalid:duplicate_id",
}

pytestmark = pytest.mark.slow  # the shared sample run (conftest) and runs of their own


def test_every_record_is_kept_or_rejected_exactly_once(sample_run):
    kept, rejected = table_rows(sample_run / "documents"), table_rows(sample_run / "rejected")
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["records_read"] == input_records()
    assert len(kept) + len(rejected) == input_records()
    assert not {r["id"] for r in kept} & {r["id"] for r in rejected if r["reason"] != "invalid:duplicate_id"}
    assert stats["conservation_ok"] is True
    assert stats["kept"] == len(kept) and stats["rejected"] == len(rejected)


def test_sample_exercises_every_foundation_reason(sample_run):
    reasons = {r["reason"] for r in table_rows(sample_run / "rejected")}
    assert FOUNDATION_REASONS <= reasons
    stats = json.loads((sample_run / "stats.json").read_text())
    assert FOUNDATION_REASONS <= set(stats["stages"]["validate"]["rejected_by_reason"])


def test_kept_documents_keep_their_metadata_and_text(sample_run):
    kept = {r["id"]: r for r in table_rows(sample_run / "documents")}
    first = kept["sample-article-001"]
    assert json.loads(first["metadata"]) == {"author": "Sample Writer", "tags": ["travel", "coast"]}
    assert first["url"] == "https://example.org/travel/harbour-town"
    assert first["text"].startswith("The old harbour town wakes early.")
    # the derived-id record is normalized; being one short sentence, the quality stage rejects it
    rows = table_rows(sample_run / "documents") + table_rows(sample_run / "rejected")
    derived = [
        r
        for r in rows
        if r["id"].startswith("malformed.jsonl:") and not r.get("reason", "").startswith("invalid:")
    ]
    assert len(derived) == 1 and "\r" not in derived[0]["text"] and "\x00" not in derived[0]["text"]


def test_stats_json_has_config_versions_and_timing(sample_run):
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["config"]["input"]["max_chars"] == 20000
    assert len(stats["config_hash"]) == 16
    assert stats["versions"]["apache-beam"] != "not installed"
    assert stats["wall_time_s"] > 0
    assert stats["stage_order"][:2] == ["read", "validate"]
    assert stats["outputs"]["documents"]["files"] >= 1
    # start-up: until the first stage ran on a worker; then the stages until the pipeline finished
    timing = stats["timing"]
    assert 0 < timing["startup_s"] < timing["pipeline_s"]
    assert timing["stages_s"] > 0 and timing["startup_cpu_s_driver"] > 0
    assert timing["startup_s"] + timing["stages_s"] == pytest.approx(timing["pipeline_s"], abs=0.01)


def test_one_worker_gives_the_two_worker_runs_rows(sample_run, sample_one_worker_run):
    """One worker process instead of the shared run's two (the same command otherwise, both shared
    with the forked-worker tests): full rows of every output folder must be equal. (Tiny bundles
    against default ones, at two workers each: tests/pipelines/local/test_bounded_bundles.py.)"""
    out = sample_one_worker_run
    for folder in ("documents", "rejected", "sequences"):
        rows = table_rows(out / folder)
        assert rows, folder
        assert rows == table_rows(sample_run / folder), folder


def test_existing_output_is_refused_without_overwrite(sample_run, capsys):
    assert run_cli(sample_run) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_unreadable_file_stops_the_run_or_is_listed(tmp_path, capsys):
    bad = tmp_path / "in" / "broken.jsonl.gz"
    bad.parent.mkdir()
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    good = tmp_path / "in" / "good.jsonl"
    good.write_text('{"id": "g", "text": "A fine document."}\n')
    # reading is under test, not the filters: a one-line document would fail the quality rules
    args = [
        "run",
        "--input",
        str(bad.parent),
        "--workers",
        "1",
        *STAGES_OFF,  # every filter and writer-side stage after validate
    ]
    # in a worker process, as users run: there the failure reaches the CLI as a failed pipeline (1)
    assert main([*args, "--output", str(tmp_path / "fail")]) == 1
    assert "broken.jsonl.gz" in capsys.readouterr().err
    skip = [*args, IN_PROCESS, "--output", str(tmp_path / "skip"), "--set", "input.on_unreadable=skip"]
    assert main(skip) == 0
    stats = json.loads((tmp_path / "skip" / "stats.json").read_text())
    assert [u["path"].rsplit("/", 1)[1] for u in stats["unreadable_files"]] == ["broken.jsonl.gz"]
    assert stats["unreadable_files"][0]["partial"] is False
    assert stats["kept"] == 1


def test_a_truncated_gzip_is_listed_as_partly_read_and_its_records_are_kept(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    lines = b"".join(
        b'{"id": "t%d", "text": "Document number %d of a file cut short."}\n' % (i, i) for i in range(3000)
    )
    (folder / "cut.jsonl.gz").write_bytes(gzip.compress(lines)[:-40])
    args = [
        "run",
        "--input",
        str(folder),
        "--output",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--set",
        "input.on_unreadable=skip",
        IN_PROCESS,
        *STAGES_OFF,  # the reader is under test: no stage after validate
    ]
    assert main(args) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    (entry,) = stats["unreadable_files"]
    assert entry["partial"] is True and 2900 < entry["records_read"] < 3000
    assert stats["records_read"] == entry["records_read"] == stats["kept"] + stats["rejected"]
    assert "partly read" in capsys.readouterr().out


# What the sample's stage-specific files (samples/sample/*.jsonl) are written to show in one default
# run with configs/sample.yaml: each stage rejects or rewrites something, not only the foundation.
PII_TYPES = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "US_SSN"}
SAMPLE_STAGE_REASONS = {
    "language:de",
    "language:unknown",
    "contamination:tinyquiz",
    "dedup:exact",
    "dedup:near",
    "toxicity:above_threshold",  # configs/sample.yaml sets toxicity.filter: true
}
QUALITY_FAMILIES = {"gopher_quality", "gopher_repetition", "c4", "fineweb", "extra"}


def test_sample_exercises_every_stage(sample_run):
    rejected = table_rows(sample_run / "rejected")
    reasons = {r["reason"] for r in rejected}
    assert SAMPLE_STAGE_REASONS <= reasons, SAMPLE_STAGE_REASONS - reasons
    families = {r.split(":", 1)[1].split(".")[0] for r in reasons if r.startswith("quality:")}
    assert QUALITY_FAMILIES <= families, QUALITY_FAMILIES - families
    stats = json.loads((sample_run / "stats.json").read_text())
    stages = stats["stages"]
    for stage, reason in (
        ("language", "language:de"),
        ("decontamination", "contamination:tinyquiz"),
        ("dedup_exact", "dedup:exact"),
        ("dedup_near", "dedup:near"),
        ("toxicity", "toxicity:above_threshold"),
    ):
        assert stages[stage]["rejected_by_reason"].get(reason, 0) >= 1, (stage, reason)
    # the three contaminated records, both exact copies and both near copies (the chain A~B~C)
    by_id = {r["id"]: r["reason"] for r in rejected if r["reason"] != "invalid:duplicate_id"}
    assert [
        by_id.get(i)
        for i in ("sample-contam-verbatim", "sample-contam-case-punct", "sample-contam-short-item")
    ] == ["contamination:tinyquiz"] * 3
    assert [by_id.get(i) for i in ("dedup-original", "dedup-exact-space")] == ["dedup:exact"] * 2
    assert [by_id.get(i) for i in ("dedup-near-edit", "dedup-near-chain")] == ["dedup:near"] * 2
    assert by_id.get("tox-rant") == "toxicity:above_threshold"
    # pii replaced every type it looks for, and never rejects
    counters = stages["pii"]["counters"]
    assert {t for t in PII_TYPES if counters.get(f"replaced:{t}", 0) >= 1} == PII_TYPES
    assert stages["pii"]["rejected"] == 0


def test_kept_sample_documents_carry_every_stage_annotation(sample_run):
    kept = table_rows(sample_run / "documents")
    ids = {r["id"] for r in kept}
    # stage-specific records that are meant to get through every filter
    assert {
        "sample-clean-gardening",
        "dedup-exact-case",
        "dedup-unrelated",
        "pii-email",
        "pii-clean",
        "tox-clean-page",
        "tok-long",
        "tok-code",
        "report-long",
    } <= ids
    for r in kept:
        assert r["lang"] == "en", r["id"]
        assert r["toxicity_score"] is not None and 0.0 <= r["toxicity_score"] < 0.7, r["id"]
        assert r["n_tokens"] and r["n_tokens"] > 0, r["id"]
    texts = {r["id"]: r["text"] for r in kept}
    assert "<EMAIL_ADDRESS>" in texts["pii-email"] and "@" not in texts["pii-email"]
    assert {r["id"]: r["duplicate_count"] for r in kept}["dedup-exact-case"] == 4
    # tokenize/bucket: sequences exist, hold every kept document, and the long record needs a bigger bucket
    sequences = table_rows(sample_run / "sequences")
    assert sequences and {r["doc_id"] for r in sequences} == ids
    assert {"bucket=512", "bucket=1024"} <= {p.name for p in (sample_run / "sequences").iterdir()}


def test_hostile_records_each_come_out_exactly_once(tmp_path):
    """Records written to break a reader: every one is kept or rejected once, never lost or doubled."""
    lines = [
        b'\xef\xbb\xbf{"id": "bom", "text": "after a byte order mark"}',
        b'{"id": "crlf", "text": "x"}\r',
        b"null",
        b"42",
        b'"s"',
        b"[]",
        b"{}",
        b'{"id": "nan", "text": NaN}',
        b'{"id": ["l"], "text": "list id"}',
        b'{"id": 1.5, "text": "float id"}',
        b'{"id": "", "text": "empty id"}',
        b"[" * 50_000 + b"]" * 50_000,
        b'{"id": "raw-nul", "text": "raw \x00 nul"}',
        b'{"id": "meta", "text": "t", "m": "\\udc80"}',
        b'{"id": "cut", "text": "unterminated',
        b'{"id": "x", "text": "ok"} trailing',
        b"\xff\xfe\x00",
        b'{"id": "huge", "text": "' + b"y" * 1_200_000 + b'"}',
        b'{"id": "ctrl", "text": "\\u0001\\u0002"}',
        b'{"id": "crlf", "text": "a repeated id"}',
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    args = ["run", "--input", str(path), "--output", str(out), "--workers", "1", IN_PROCESS, *STAGES_OFF]
    assert main(args) == 0
    kept, rejected = table_rows(out / "documents"), table_rows(out / "rejected")
    assert len(kept) + len(rejected) == len(lines)
    assert len({(r["input_offset"]) for r in kept + rejected}) == len(lines)
    assert {r["id"] for r in kept} >= {"bom", "crlf", "raw-nul"}
    reasons = {r["reason"] for r in rejected}
    assert {
        "invalid:bad_json",
        "invalid:no_text",
        "invalid:bad_utf8",
        "invalid:too_long",
        "invalid:duplicate_id",
        "normalize:empty",
    } <= reasons


def test_missing_benchmark_file_fails_before_touching_an_earlier_run(sample_run, capsys):
    before = sorted(p.name for p in (sample_run / "documents").iterdir())
    code = run_cli(
        sample_run, "--overwrite", "--set", "decontamination.benchmarks=[/nonexistent/bench*.jsonl]"
    )
    assert code == 2
    assert "decontamination.benchmarks" in capsys.readouterr().err
    assert sorted(p.name for p in (sample_run / "documents").iterdir()) == before


def test_packed_sequences_are_the_same_with_one_and_two_workers(tmp_path):
    # packing is under test: every stage before tokenize off (more documents reach it, not fewer)
    pack = [
        "--set",
        "tokenize.pack=true",
        "--set",
        "tokenize.buckets=[64,128]",
        *stages_off("normalize", "tokenize"),
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    # one worker in this process (Beam's in-memory runner), two in worker processes: two layouts
    assert run_cli(one, *pack, IN_PROCESS, workers=1) == 0
    assert run_cli(two, *pack, workers=2) == 0
    rows_one = (
        ds.dataset(str(one / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    )
    rows_two = (
        ds.dataset(str(two / "sequences"), format="parquet", partitioning="hive").to_table().to_pylist()
    )
    key = lambda r: (r["doc_ids"][0], r["doc_starts"][0], r["chunk_indices"][0])  # noqa: E731
    assert sorted(rows_one, key=key) == sorted(rows_two, key=key)
    assert sum(r["length"] < 128 for r in rows_one) <= 1  # one group here: at most one shorter tail row


def test_a_page_spelling_a_special_token_is_tokenized_by_the_library_as_text(sample_run):
    """The word cache leaves such pages to the library (counted); their EOS comes only at the end."""
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["stages"]["tokenize"]["counters"]["word_cache_fallback"] == 1
    rows = [r for r in table_rows(sample_run / "sequences") if r["doc_id"] == "tok-special-text"]
    (row,) = rows
    eos = 0  # the project tokenizer's <|endoftext|>
    assert row["input_ids"][-1] == eos and eos not in row["input_ids"][:-1]


def test_bias_tags_every_kept_document_and_counts_before_filtering(sample_run):
    kept = table_rows(sample_run / "documents")
    assert kept and all(r["bias"] is not None and r["bias"]["words"] > 0 for r in kept)
    stats = json.loads((sample_run / "stats.json").read_text())
    assert stats["bias"]["kept"]["documents"] == len(kept)
    # rejected records with text are counted too (invalid records without text count as empty)
    assert stats["bias"]["before_filtering"]["documents"] == stats["records_read"]
    assert stats["bias"]["before_filtering"]["words"] > stats["bias"]["kept"]["words"]


def test_prompt_signals_on_every_kept_document(sample_run):
    kept = table_rows(sample_run / "documents")
    assert all(r["prompt_signals"] is not None for r in kept)
    stats = json.loads((sample_run / "stats.json").read_text())
    assert "prompt" in stats["stage_order"] and stats["stages"]["prompt"]["rejected"] == 0


# The CLI mistakes (and surprises) that need a real run; the others are in test_cli_errors.py.


def _run_folder(folder: Path, out: Path, *extra: str) -> int:
    args = ["run", "--input", str(folder), "--output", str(out), "--workers", "1", IN_PROCESS, *STAGES_OFF]
    return main([*args, *extra])


def test_a_run_that_keeps_nothing_succeeds_with_empty_but_readable_outputs(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "all-bad.jsonl").write_text('{"id": "a"}\nnot json\n{"id": "b", "text": ""}\n')
    out = tmp_path / "out"
    assert _run_folder(folder, out) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["records_read"], stats["kept"], stats["rejected"]) == (3, 0, 3)
    assert stats["conservation_ok"] is True
    assert table_rows(out / "documents") == []
    assert sorted(r["reason"] for r in table_rows(out / "rejected")) == [
        "invalid:bad_json",
        "invalid:empty",
        "invalid:no_text",
    ]
    assert "kept 0" in capsys.readouterr().out


def test_an_empty_input_file_is_a_run_of_zero_records(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.jsonl").write_bytes(b"")
    out = tmp_path / "out"
    assert _run_folder(folder, out) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["records_read"], stats["kept"], stats["rejected"], stats["conservation_ok"]) == (
        0,
        0,
        0,
        True,
    )
    assert [i["records"] for i in stats["inputs"]] == [0]


def test_overwrite_over_a_larger_run_leaves_no_stale_shards(tmp_path):
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    small.mkdir()
    for k in range(4):  # four files, four read tasks: the larger run writes four shards per folder
        (big / f"big{k}.jsonl").write_text(
            "".join(
                json.dumps({"id": f"b{k}-{i}", "text": f"big run document {i}"}) + "\n" for i in range(750)
            )
        )
    (small / "small.jsonl").write_text('{"id": "s1", "text": "the only document of the small run"}\n')
    out = tmp_path / "out"
    assert _run_folder(big, out) == 0
    # shards the one-record run does not write (a single shard of another name) and must remove
    assert len(list((out / "documents").glob("*.parquet"))) == 4
    assert _run_folder(small, out, "--overwrite") == 0
    assert [r["id"] for r in table_rows(out / "documents")] == ["s1"]
    assert table_rows(out / "rejected") == []
    assert json.loads((out / "stats.json").read_text())["records_read"] == 1


def test_rejected_text_false_drops_the_text_but_keeps_the_reason(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "d.jsonl").write_text(
        '{"id": "k", "text": "kept text"}\n{"id": "k", "text": "same id again"}\n'
    )
    out = tmp_path / "out"
    assert _run_folder(folder, out, "--set=output.rejected_text=false") == 0
    (rejected,) = table_rows(out / "rejected")
    assert rejected["reason"] == "invalid:duplicate_id" and rejected["id"] == "k"
    assert rejected.get("text") is None
    assert [r["text"] for r in table_rows(out / "documents")] == ["kept text"]


def test_rejected_records_are_written_per_stage_and_parked_documents_removed(sample_run):
    """Each stage's rejected records are written where the stage runs (rejected/part-<stage>-*), so
    the local runner never holds them all in its driver; dedup's parked documents (_run/work) are
    gone once the run has finished."""
    import pyarrow.parquet as pq

    assert not (sample_run / "_run" / "work").exists()
    stages_by_file = {}
    for path in sorted((sample_run / "rejected").glob("*.parquet")):
        stages_by_file[path.name] = set(pq.read_table(path, columns=["stage"]).column("stage").to_pylist())
    for name, stages in stages_by_file.items():
        if name.startswith("part-0"):  # validation's part, the one written even when empty
            assert stages <= {"validate"}, name
        else:
            assert stages == {name[len("part-") :].rsplit("-", 3)[0]}, name
    assert {"validate", "dedup_exact", "dedup_near"} <= set().union(*stages_by_file.values())
