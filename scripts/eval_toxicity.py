#!/usr/bin/env python3
"""ROC AUC of the toxicity score on any labelled set of texts (a held-out check, not for tuning).

    python scripts/eval_toxicity.py --jsonl FILE.jsonl [--text-field text --label-field toxic]
    python scripts/eval_toxicity.py --text test_text.txt --labels test_labels.txt   # one per line

Prints the AUC of the shipped classifier on whole texts (what alt-profanity-check's
``predict_prob`` gives) and of the stage's document score with and without ``clean_text``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from corpusforge.schemas.config import ToxicityConfig
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.stage import ToxicityScorer


def roc_auc(labels: list[bool], scores: list[float]) -> float:
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    return float(
        ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
        / (len(pos) * len(neg))
    )


def load(a: argparse.Namespace) -> tuple[list[str], list[bool]]:
    if a.jsonl:
        rows = [json.loads(line) for line in open(a.jsonl, encoding="utf-8") if line.strip()]
        return [r[a.text_field] for r in rows], [bool(r[a.label_field]) for r in rows]
    texts = open(a.text, encoding="utf-8").read().split("\n")
    labels = [line.strip() for line in open(a.labels, encoding="utf-8") if line.strip()]
    texts = texts[: len(labels)]
    return texts, [lab not in ("0", "false", "NOT") for lab in labels]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jsonl")
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--label-field", default="toxic")
    ap.add_argument("--text")
    ap.add_argument("--labels")
    a = ap.parse_args()
    texts, labels = load(a)
    model = LinearToxicityModel.load()
    out = {
        "n": len(texts),
        "positives": int(sum(labels)),
        "model_whole_text": roc_auc(labels, list(model.predict(texts))),
    }
    for clean in (True, False):
        scores = ToxicityScorer(model, ToxicityConfig(clean_text=clean)).score_many(texts)
        out[f"stage_clean_text_{str(clean).lower()}"] = roc_auc(
            labels, [0.0 if s is None else s for s in scores]
        )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
