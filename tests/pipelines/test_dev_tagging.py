"""End to end on ../shared/data/dev: the tagging stages (bias) on a real mixed corpus.

One default pipeline run of the dev corpus, shared with the tokenize test on it (tests/conftest.py:
dev_default_run); skipped when the dev corpus is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _labels(dev: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (dev / "labels.jsonl").open(encoding="utf-8"))}


@pytest.fixture(scope="module")
def dev_run(dev_default_run) -> Path:
    """The session's one default run of the dev corpus (tests/conftest.py: dev_default_run)."""
    return dev_default_run


def _share(rows: list[dict]) -> float:
    mentions = sum(
        r["bias"]["female"] + r["bias"]["male"] + sum(m["count"] for m in r["bias"]["mentions"]) for r in rows
    )
    toxic = sum(sum(m["count"] for m in r["bias"]["toxic_mentions"]) for r in rows)
    return toxic / mentions


def test_toxic_threads_raise_the_identity_in_toxic_lines_share(dev_run, dev_corpus):
    labels = _labels(dev_corpus)
    rows = (
        ds.dataset(str(dev_run / "documents"), format="parquet").to_table(columns=["id", "bias"]).to_pylist()
    )
    assert rows and all(r["bias"] is not None for r in rows)
    toxic = [r for r in rows if labels[r["id"]]["kind"] == "thread" and labels[r["id"]]["toxic"]]
    other = [r for r in rows if not (labels[r["id"]]["kind"] == "thread" and labels[r["id"]]["toxic"])]
    assert len(toxic) >= 10
    assert _share(toxic) > 0.3 > 0.05 > _share(other)


def test_stats_and_report_have_a_bias_section(dev_run):
    stats = json.loads((dev_run / "stats.json").read_text())
    bias = stats["bias"]
    assert bias["before_filtering"]["documents"] == stats["records_read"]
    assert bias["kept"]["documents"] == stats["kept"]
    for part in ("before_filtering", "kept"):
        fig = bias[part]
        assert {"female", "male", "religion", "nationality_ethnicity", "age"} <= set(fig["per_million_words"])
        assert 0 < fig["female_male_ratio"] < 5
        assert all(0 <= v <= 1 for v in fig["toxic_share"].values())
    html = (dev_run / "report.html").read_text()
    assert 'id="bias"' in html and 'data-plot="bias.rates"' in html and 'data-plot="bias.toxic"' in html


def test_prompt_tags_at_most_one_percent_of_clean_english_pages(dev_run, dev_corpus):
    from corpusforge.schemas.config import Config
    from corpusforge.schemas.records import PromptSignals
    from corpusforge.transforms.prompt.stage import tagged_signals

    labels = _labels(dev_corpus)
    thresholds = Config().prompt.thresholds.model_dump()
    rows = []
    for folder in ("documents", "rejected"):
        rows += (
            ds.dataset(str(dev_run / folder), format="parquet")
            .to_table(columns=["id", "prompt_signals"])
            .to_pylist()
        )
    # every English base page the prompt stage saw (those rejected before it carry no signals)
    seen = [
        r
        for r in rows
        if r["prompt_signals"] is not None
        and labels.get(r["id"], {}).get("kind") == "base"
        and labels[r["id"]].get("lang") == "en"
    ]
    assert len(seen) >= 50
    tagged = [r["id"] for r in seen if tagged_signals(PromptSignals(**r["prompt_signals"]), thresholds)]
    assert len(tagged) <= 0.01 * len(seen), tagged
    stats = json.loads((dev_run / "stats.json").read_text())
    assert stats["stages"]["prompt"]["in"] > 0 and stats["stages"]["prompt"]["rejected"] == 0


# The same bar over every English base page, without a pipeline: tests/transforms/prompt/test_dev_pages.py
