"""The prompt patterns on ../shared/data/dev without a pipeline (the fast loop): the bar the
pipeline run checks on the pages that reach the stage (tests/pipelines/test_dev_tagging.py), here
over every English base page, also those the quality rules reject before the stage."""

from __future__ import annotations

import gzip
import json

import pytest

pytestmark = pytest.mark.shared


def test_prompt_patterns_tag_at_most_one_percent_of_all_clean_english_dev_pages(dev_corpus):
    from corpusforge.schemas.config import Config
    from corpusforge.transforms.prompt.patterns import compile_patterns, load_patterns
    from corpusforge.transforms.prompt.stage import PromptScanner, tagged_signals

    labels = {r["id"]: r for r in map(json.loads, (dev_corpus / "labels.jsonl").open(encoding="utf-8"))}
    scanner = PromptScanner(compile_patterns(load_patterns()))
    thresholds = Config().prompt.thresholds.model_dump()
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [
            d
            for d in map(json.loads, f)
            if labels[d["id"]]["kind"] == "base" and labels[d["id"]].get("lang") == "en"
        ]
    assert len(pages) >= 100
    tagged = [d["id"] for d in pages if tagged_signals(scanner.scan(d["text"]), thresholds)]
    assert len(tagged) <= 0.01 * len(pages), tagged
