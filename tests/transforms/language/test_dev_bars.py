"""Language identification's bars on ../shared/data/dev, measured as score.py measures them.

On the confidently labelled base pages (reference detector confidence >= 0.9): the detected
language equals the label (accuracy), and a page labelled other than English is rejected by the
default ``keep: [en]``, ``min_score`` stage. The bars are the sampling walk's figures before the
naive Bayes evaluation replaced it (0.961 and 0.994): the change must not cost accuracy."""

from __future__ import annotations

import gzip
import json

import pytest

from corpusforge.schemas.config import LanguageConfig
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.language.stage import LanguageFilter


@pytest.mark.shared
# naive_bayes measured 0.9618 / 0.9969; sampling 0.9605 / 0.9939 (score.py prints them rounded)
@pytest.mark.parametrize(
    ("method", "min_accuracy", "min_rejected"), [("naive_bayes", 0.961, 0.996), ("sampling", 0.960, 0.993)]
)
def test_dev_language_accuracy_and_non_english_rejection(dev_corpus, method, min_accuracy, min_rejected):
    labels = {}
    for line in (dev_corpus / "labels.jsonl").read_text().splitlines():
        rec = json.loads(line)
        labels[rec["id"]] = rec
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    confident = [
        d for d in docs if labels[d["id"]]["kind"] == "base" and labels[d["id"]].get("lang_conf", 0) >= 0.9
    ]
    stage = LanguageFilter(LanguageConfig(method=method))
    stage.ready()
    outcomes = {d["id"]: stage.process(Document(id=d["id"], text=d["text"])) for d in confident}

    def lang(out):
        return (out.doc if isinstance(out, RejectedDocument) else out).lang

    accuracy = sum(lang(outcomes[d["id"]]) == labels[d["id"]]["lang"] for d in confident) / len(confident)
    non_en = [d for d in confident if labels[d["id"]]["lang"] != "en"]
    rejected = sum(isinstance(outcomes[d["id"]], RejectedDocument) for d in non_en) / len(non_en)
    assert accuracy >= min_accuracy
    assert rejected >= min_rejected
