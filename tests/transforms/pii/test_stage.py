"""The pii stage inside Beam: TestPipeline + assert_that, and a small run of the embedded sample."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam import Create
from apache_beam.testing.util import assert_that, equal_to, is_empty

from corpusforge.pipelines.cli import run
from corpusforge.schemas.config import PII_ENTITIES, PiiConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.pii.stage import ScrubPII
from tests.helpers import REPO

SAMPLE_DIR = REPO / "samples" / "sample"


def test_apply_stage_scrubs_and_rejects_nothing(test_pipeline):
    docs = [
        Document(id="a", text="mail me at ana@example.com"),
        Document(id="b", text="no personal data, only 2024-03-15 and v1.2.3.4"),
        Document(id="c", text="Fax: 463-612-6138x036 or card 4111111111111111"),
    ]
    with test_pipeline as p:
        kept, rejected = p | Create(docs) | ScrubPII(PiiConfig(batch_size=2))
        assert_that(
            kept | "Texts" >> beam.Map(lambda d: (d.id, d.text, d.pii_counts)),
            equal_to(
                [
                    ("a", "mail me at <EMAIL_ADDRESS>", {"EMAIL_ADDRESS": 1}),
                    ("b", "no personal data, only 2024-03-15 and v1.2.3.4", {}),
                    ("c", "Fax: <PHONE_NUMBER> or card <CREDIT_CARD>", {"PHONE_NUMBER": 1, "CREDIT_CARD": 1}),
                ]
            ),
            label="kept",
        )
        assert_that(rejected, is_empty(), label="rejected")


@pytest.mark.slow
def test_sample_run_reports_replacements_per_type(tmp_path):
    # default filters on: every PII sample record is English prose that reaches the pii stage; the
    # stages after pii (which do not change what it counts) and the report off
    cfg = load_config(
        overrides=[
            "toxicity.enabled=false",
            "bias.enabled=false",
            "tokenize.enabled=false",
            "report.enabled=false",
        ]
    )
    out = tmp_path / "run"
    stats = run(
        [str(SAMPLE_DIR / "pii.jsonl")], str(out), cfg, ["--direct_running_mode=in_memory"], workers=1
    )
    pii = stats["stages"]["pii"]
    assert pii["in"] == pii["kept"] == 7 and pii["rejected"] == 0
    assert pii["counters"]["analyzed_docs"] == 7  # every sample record has a digit or an "@"
    assert 0 < pii["counters"]["analyzed_chars"] <= pii["chars_in"]
    assert {k: v for k, v in pii["counters"].items() if not k.startswith("analyzed_")} == {
        "docs_with_pii": 6,
        "replaced:CREDIT_CARD": 2,
        "replaced:EMAIL_ADDRESS": 1,
        "replaced:IBAN_CODE": 1,
        "replaced:IP_ADDRESS": 2,
        "replaced:PHONE_NUMBER": 3,
        "replaced:US_SSN": 1,
    }
    rows = {r["id"]: r for r in pq.read_table(out / "documents").to_pylist()}
    assert rows["pii-ssn"]["text"].count("<US_SSN>") == 1 and "219-09-9999" not in rows["pii-ssn"]["text"]
    # a struct on disk: every entity type, 0 where none was replaced
    assert {k: v for k, v in rows["pii-card"]["pii_counts"].items() if v} == {"CREDIT_CARD": 2}
    assert set(rows["pii-card"]["pii_counts"]) == set(PII_ENTITIES)
    clean = json.loads((SAMPLE_DIR / "pii.jsonl").read_text().splitlines()[-1])
    assert rows["pii-clean"]["text"] == clean["text"]
