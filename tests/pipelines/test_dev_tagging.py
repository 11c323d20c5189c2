"""End to end on ../shared/data/dev: the tagging stages (bias) on a real mixed corpus.

One pipeline run shared by the module (slow); skipped when the dev corpus is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from corpusforge.pipelines.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _labels(dev: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (dev / "labels.jsonl").open(encoding="utf-8"))}


@pytest.fixture(scope="module")
def dev_run(dev_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dev") / "out"
    assert main(["run", "--input", str(dev_corpus / "docs.jsonl.gz"), "--output", str(out), "--workers", "2"]) == 0
    return out


def _share(rows: list[dict]) -> float:
    mentions = sum(r["bias"]["female"] + r["bias"]["male"] + sum(dict(r["bias"]["mentions"]).values()) for r in rows)
    toxic = sum(sum(dict(r["bias"]["toxic_mentions"]).values()) for r in rows)
    return toxic / mentions


def test_toxic_threads_raise_the_identity_in_toxic_lines_share(dev_run, dev_corpus):
    labels = _labels(dev_corpus)
    rows = ds.dataset(str(dev_run / "documents"), format="parquet").to_table(columns=["id", "bias"]).to_pylist()
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
