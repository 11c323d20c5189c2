"""The quality bars on ../shared/data/dev, with the stages' logic (no pipeline; skips without data).

The CLI runs scored with score.py are in the branch report; this keeps the same bars from
regressing in a few seconds: junk pages rejected, clean English article text kept, with the
language stage on and with only the quality stage (every language kept)."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml

from corpusforge.schemas.config import Config
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.language.stage import LanguageFilter
from corpusforge.transforms.quality.stage import QualityFilter
from tests.helpers import REPO


def test_default_yaml_documents_language_and_quality_defaults():
    documented = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    defaults = Config().model_dump(mode="json")
    assert documented["language"] == defaults["language"]
    assert documented["quality"] == defaults["quality"]


@pytest.fixture(scope="module")
def dev(dev_corpus):
    labels = {}
    for line in (dev_corpus / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        labels[rec["id"]] = rec
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    return docs, labels


@pytest.mark.shared
@pytest.mark.usefixtures("langdetect_profiles_once")
@pytest.mark.parametrize("with_language", [True, False])
def test_dev_junk_recall_and_clean_retention(dev, with_language):
    docs, labels = dev
    lang = LanguageFilter()
    qual = QualityFilter()
    if with_language:  # its profiles and table cost a second of CPU: built only when used
        lang.ready()
    qual.ready()
    junk = [d for d in docs if labels[d["id"]]["kind"] == "junk"]
    clean = [
        d
        for d in docs
        if labels[d["id"]]["kind"] == "base"
        and labels[d["id"]].get("lang") == "en"
        and labels[d["id"]].get("style") in ("main", "ccnet")
    ]

    def outcome(rec):
        doc = Document(id=rec["id"], text=rec["text"])
        if with_language:
            out = lang.process(doc)
            if isinstance(out, RejectedDocument):
                return out.rejection.reason
            doc = out
        out = qual.process(doc)
        return out.rejection.reason if isinstance(out, RejectedDocument) else None

    junk_recall = sum(outcome(d) is not None for d in junk) / len(junk)
    clean_kept = sum(not (outcome(d) or "").startswith("quality:") for d in clean) / len(clean)
    assert junk_recall >= 0.95
    assert clean_kept >= 0.90
