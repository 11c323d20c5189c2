"""Quality bars of the toxicity score on ../shared/data/dev (skipped when it is absent).

Caveat kept in view: the dev tweets and threads come from Davidson et al. (2017), one of the two
sources the shipped classifier was trained on, so these figures are optimistic; they guard against
regressions (tokenisation, segmentation, aggregation), not for generalisation.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.stage import ToxicityScorer

pytestmark = pytest.mark.shared


def roc_auc(labels: list[bool], scores: list[float]) -> float:
    """ROC AUC with ties counted half, as ../shared/tools/score.py computes it."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def scorer() -> ToxicityScorer:
    return ToxicityScorer(LinearToxicityModel.load())


def _scores(scorer: ToxicityScorer, texts: list[str]) -> list[float]:
    return [0.0 if s is None else s for s in scorer.score_many(texts)]


def test_auc_on_single_tweets(dev_corpus, scorer):
    rows = [json.loads(line) for line in (dev_corpus / "toxicity_samples.jsonl").open(encoding="utf-8")]
    auc = roc_auc([r["toxic"] for r in rows], _scores(scorer, [r["text"] for r in rows]))
    assert auc >= 0.93


def test_auc_on_threads(dev_corpus, scorer):
    labels = {}
    for line in (dev_corpus / "labels.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        if row["kind"] == "thread":
            labels[row["id"]] = row["toxic"]
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        threads = [d for d in map(json.loads, f) if d["id"] in labels]
    assert len(threads) == len(labels) > 0
    auc = roc_auc([labels[d["id"]] for d in threads], _scores(scorer, [d["text"] for d in threads]))
    assert auc >= 0.95


def test_roc_auc_helper():
    assert roc_auc([True, False], [0.9, 0.1]) == 1.0
    assert roc_auc([True, False], [0.1, 0.9]) == 0.0
    assert roc_auc([True, False], [0.5, 0.5]) == 0.5
