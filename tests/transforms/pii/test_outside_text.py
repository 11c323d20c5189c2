"""PII outside the kept text, in real runs: ``url`` and ``metadata`` of kept documents are scrubbed,
and ``output.rejected_text`` true / false / scrubbed decides what ``rejected/`` keeps of the text of
records rejected before the pii stage; stats.json shows masked examples per type."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpusforge.pipelines.cli import run
from corpusforge.schemas.config import ConfigError, load_config
from tests.helpers import REPO, stages_off

SAMPLE = REPO / "samples" / "sample" / "pii.jsonl"
GERMAN = (
    "Der Wochenmarkt in der Altstadt findet jeden Samstag statt. Die Bauern aus dem Umland bringen Äpfel, "
    "Käse und Brot mit, und der Bäcker hat seine Roggenbrote meistens schon vor zehn Uhr verkauft. Wer "
    "Fragen zum Markt hat, schreibt an hans.berger@example.de oder ruft an unter +49 30 901820 1234. Die "
    "Kinder laufen zwischen den Ständen umher, während die Eltern über das Wetter und die Preise reden."
)


def _inputs(tmp_path):
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    records[0]["url"] = "http://admin:Pa55w0rd@203.0.113.9/workshop/2024-03-01"
    records[0]["author_email"] = "organiser.pottery@example.org"
    records[0]["tags"] = ["pottery", "call 415-555-0132"]
    records.append({"id": "de-page", "text": GERMAN, "source": "sample", "url": "https://198.51.100.4/markt"})
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pii_outside")
    inputs = _inputs(tmp)
    out = {}
    # pii is under test, and language, whose rejection of the German page is what rejected/ keeps
    # text of; every other stage and the report off (none of them is examined here: the filters
    # would only drop pages, the stages after pii neither reject nor change text by default)
    only = [flag.removeprefix("--set=") for flag in stages_off("normalize", "language", "pii")]
    for mode in ("true", "false", "scrubbed"):
        cfg = load_config(None, [f"output.rejected_text={mode}", *only])
        stats = run([str(inputs)], str(tmp / mode), cfg, ["--direct_running_mode=in_memory"], workers=1)
        docs = {r["id"]: r for r in pq.read_table(tmp / mode / "documents").to_pylist()}
        rejected = {r["id"]: r for r in pq.read_table(tmp / mode / "rejected").to_pylist()}
        out[mode] = (stats, docs, rejected)
    return out


@pytest.mark.slow
def test_kept_url_and_metadata_are_scrubbed(runs):
    stats, docs, _ = runs["true"]
    row = docs["pii-email"]
    assert row["url"] == "http://<CREDENTIAL>@<IP_ADDRESS>/workshop/2024-03-01"
    meta = json.loads(row["metadata"])
    assert meta["author_email"] == "<EMAIL_ADDRESS>" and meta["tags"] == ["pottery", "call <PHONE_NUMBER>"]
    counters = stats["stages"]["pii"]["counters"]
    assert counters["scrubbed_urls"] == 1 and counters["scrubbed_metadata"] == 1
    assert counters["replaced:CREDENTIAL"] == 1


@pytest.mark.slow
def test_rejected_text_true_false_and_scrubbed(runs):
    raw = runs["true"][2]["de-page"]
    assert raw["reason"].startswith("language:") and raw["text"] == GERMAN
    assert runs["false"][2]["de-page"]["text"] is None
    scrubbed = runs["scrubbed"][2]["de-page"]
    assert "hans.berger@example.de" not in scrubbed["text"] and "<EMAIL_ADDRESS>" in scrubbed["text"]
    assert "901820" not in scrubbed["text"] and "<PHONE_NUMBER>" in scrubbed["text"]
    assert scrubbed["url"] == "https://<IP_ADDRESS>/markt" and raw["url"] == "https://198.51.100.4/markt"
    assert scrubbed["text"].replace("<EMAIL_ADDRESS>", "").replace("<PHONE_NUMBER>", "") == (
        GERMAN.replace("hans.berger@example.de", "").replace("+49 30 901820 1234", "")
    )
    # the kept documents do not depend on the mode
    assert runs["scrubbed"][1] == runs["true"][1]


@pytest.mark.slow
def test_stats_show_masked_examples_per_type(runs):
    examples = runs["true"][0]["stages"]["pii"]["examples"]
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"} <= set(
        examples
    )
    for entity, passages in examples.items():
        assert passages and all(f"<{entity}>" in p for p in passages)
    assert "marta.kovacs@example.org" not in json.dumps(examples)


def test_rejected_text_accepts_only_true_false_scrubbed():
    assert load_config(None, ["output.rejected_text=scrubbed"]).output.rejected_text == "scrubbed"
    with pytest.raises(ConfigError, match="rejected_text"):
        load_config(None, ["output.rejected_text=masked"])
