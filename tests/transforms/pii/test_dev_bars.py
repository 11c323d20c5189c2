"""Quality bars of the pii stage on ../shared/data/dev (skipped cleanly when it is absent).

Recall: a labelled value counts as found when it no longer appears in the scrubbed text (as the
project's scorer counts it). Over-scrubbing: spans replaced on the clean English article pages,
which hold no injected PII; only real e-mail addresses printed on those pages may be replaced.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict

import pytest

from corpusforge.transforms.pii.engine import PiiScrubber

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    s = PiiScrubber()
    s.ready()
    return s


def _recall(pairs) -> dict[str, float]:
    per = defaultdict(lambda: [0, 0])
    for text, spans in pairs:
        for typ, value in spans:
            per[typ][1] += 1
            per[typ][0] += value not in text
    return {t: found / total for t, (found, total) in per.items()}


def test_recall_on_labelled_pii_samples(dev_corpus, scrubber):
    path = dev_corpus / "pii_samples.jsonl"
    if not path.exists():
        pytest.skip("pii_samples.jsonl is not available")
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    outs = scrubber.scrub_batch([r["text"] for r in records])
    recall = _recall((o.text, r["spans"]) for o, r in zip(outs, records, strict=True))
    assert set(recall) == {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IP_ADDRESS",
        "IBAN_CODE",
        "US_SSN",
    }
    assert all(v >= 0.95 for v in recall.values()), recall


def _dev_docs(dev):
    labels = {}
    for line in (dev / "labels.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        labels[rec["id"]] = rec
    with gzip.open(dev / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    return docs, labels


def test_recall_and_over_scrubbing_on_dev_corpus(dev_corpus, scrubber):
    docs, labels = _dev_docs(dev_corpus)
    pii = [d for d in docs if labels[d["id"]]["kind"] == "pii"]
    outs = scrubber.scrub_batch([d["text"] for d in pii])
    recall = _recall((o.text, labels[d["id"]]["spans"]) for o, d in zip(outs, pii, strict=True))
    assert all(v >= 0.95 for v in recall.values()), recall

    clean = [
        d
        for d in docs
        if labels[d["id"]]["kind"] == "base"
        and labels[d["id"]].get("lang") == "en"
        and labels[d["id"]].get("style") in ("main", "ccnet")
    ]
    replaced = defaultdict(int)
    for o in scrubber.scrub_batch([d["text"] for d in clean]):
        for s in o.spans:
            replaced[s.entity] += 1
    # dates, years, prices, versions, code and URLs on 74 clean pages: no non-email span at all
    assert set(replaced) <= {"EMAIL_ADDRESS"}, dict(replaced)
    assert replaced["EMAIL_ADDRESS"] <= 10
