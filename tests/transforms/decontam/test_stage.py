"""The decontamination transform in a pipeline, its config section, and the embedded sample."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
import yaml
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import ConfigError, DecontaminationConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.decontam.stage import Decontaminate
from tests.helpers import REPO, SAMPLE_DIR, local_test_pipeline

BENCH_GLOB = str(REPO / "samples" / "benchmarks" / "*.jsonl")


def sample_docs() -> list[Document]:
    rows = [json.loads(line) for line in (SAMPLE_DIR / "decontamination.jsonl").read_text().splitlines()]
    return [Document(id=r["id"], text=r["text"], source=r.get("source")) for r in rows]


def test_transform_routes_kept_and_rejected_with_reasons_and_counters():
    p = local_test_pipeline()
    docs = p | "Docs" >> beam.Create(sample_docs())
    kept, rejected = docs | Decontaminate(DecontaminationConfig(benchmarks=[BENCH_GLOB]))
    assert_that(
        kept | "KeptIds" >> beam.Map(lambda d: (d.id, d.contamination)),
        equal_to([("sample-clean-gardening", None)]),
        label="kept",
    )
    assert_that(
        rejected
        | "Reasons"
        >> beam.Map(
            lambda r: (r.doc.id, r.rejection.reason, r.doc.contamination, r.rejection.detail.split(":")[0])
        ),
        equal_to(
            [
                ("sample-contam-verbatim", "contamination:tinyquiz", "tinyquiz", "tinyquiz[0]"),
                ("sample-contam-case-punct", "contamination:tinyquiz", "tinyquiz", "tinyquiz[1]"),
                ("sample-contam-short-item", "contamination:tinyquiz", "tinyquiz", "tinyquiz[2]"),
            ]
        ),
        label="rejected",
    )
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "corpusforge.decontamination"
    }
    assert counters["in"] == 4 and counters["kept"] == 1
    assert counters["rejected:contamination:tinyquiz"] == 3 and counters["hits:tinyquiz"] == 3
    assert counters["index:items"] == 3 and counters["index:texts_whole"] >= 1
    assert counters["index:texts_ignored_short"] >= 1  # the one-word choices


def test_cut_action_in_pipeline_keeps_shortened_document():
    import apache_beam as beam

    head = "Notes from the spring gardening club meeting, written up by the secretary. " * 6
    text = head + "Question: A gardener plants seven rows of tulips with twelve bulbs in every row. How many?"
    p = local_test_pipeline()
    kept, rejected = (
        p
        | beam.Create([Document(id="x", text=text)])
        | Decontaminate(DecontaminationConfig(benchmarks=[BENCH_GLOB], action="cut", cut_margin=0))
    )
    assert_that(
        kept | "K" >> beam.Map(lambda d: ("tulips" in d.text, d.text.startswith("Notes"), d.contamination)),
        equal_to([(False, True, "tinyquiz")]),
        label="kept",
    )
    assert_that(rejected, equal_to([]), label="rejected")
    p.run().wait_until_finish()


def test_config_section_defaults_and_stage_wiring(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "quiz.jsonl").write_text('{"q": "what is the boiling point of water at sea level"}\n')
    (tmp_path / "b.csv").write_text("q\nwhat is the boiling point of water at sea level\n")
    cfg = load_config(
        None,
        [
            f"decontamination.benchmarks=[{tmp_path}/a/*.jsonl, {{name: x, path: {tmp_path}/b.csv, fields: [q]}}]",
            "decontamination.action=cut",
        ],
    )
    c = cfg.decontamination
    assert c.ngram == 13 and c.action == "cut" and c.benchmarks[1].fields == ["q"]
    assert "decontamination" in [name for name, _ in enabled_stages(cfg)]
    off = load_config(None, ["decontamination.enabled=false"])
    assert "decontamination" not in [name for name, _ in enabled_stages(off)]
    missing = load_config(None, ["decontamination.benchmarks=[/nonexistent/*.jsonl]"])
    with pytest.raises(ConfigError, match="decontamination.benchmarks"):
        enabled_stages(missing)
    # every default is documented in configs/default.yaml with the same value
    documented = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())["decontamination"]
    assert documented == DecontaminationConfig().model_dump()
    sample = yaml.safe_load((REPO / "configs" / "sample.yaml").read_text())
    assert DecontaminationConfig.model_validate(sample["decontamination"]).benchmarks
