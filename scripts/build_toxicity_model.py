#!/usr/bin/env python3
"""Rebuild ``package/assets/toxicity_linear.npz`` from the alt-profanity-check model (one command).

Why an export and not a dependency: alt-profanity-check (MIT) ships a TF-IDF + calibrated linear SVM
(5 folds, sigmoid calibration) trained on ~200k human-labelled strings (Davidson et al. 2017 tweets
and Wikipedia talk-page comments). Using it directly would pin scikit-learn to one exact version
(``scikit-learn==X``) and unpickle joblib files at run time. The model is linear, so its parameters
fit in a few arrays: the vocabulary, the idf of each term, each fold's SVM weight times idf, the
intercepts and the sigmoid calibration. ``transforms/toxicity_model.py`` evaluates exactly the same
function in numpy, so the project needs no scikit-learn and nothing is downloaded at run time.

Run it with the pinned package in a throw-away environment (``make toxicity-model`` does this):

    python -m venv /tmp/tox && /tmp/tox/bin/pip install alt-profanity-check==1.9.1
    /tmp/tox/bin/python scripts/build_toxicity_model.py

The output is deterministic (fixed array order, zip entries with fixed timestamps), and the script
checks that the exported arrays reproduce ``profanity_check.predict_prob`` on a few strings.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from importlib import metadata, resources
from pathlib import Path

import joblib
import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "package" / "assets" / "toxicity_linear.npz"
PACKAGE_VERSION = "1.9.1"
CHECK_TEXTS = [
    "have a lovely day, thanks for the help",
    "you are a fucking idiot",
    "shut up bitch",
    "",
    "the committee meets on tuesday to discuss the budget",
]


def export(out: Path) -> None:
    version = metadata.version("alt-profanity-check")
    if version != PACKAGE_VERSION:
        raise SystemExit(f"alt-profanity-check {version} installed, expected {PACKAGE_VERSION}")
    data = resources.files("profanity_check") / "data"
    vectorizer = joblib.load(data / "vectorizer.joblib")
    model = joblib.load(data / "model.joblib")
    params = vectorizer.get_params()
    # The runtime re-implements exactly this tokenisation; refuse anything else.
    assert (
        params["token_pattern"] == r"(?u)\b\w\w+\b"
        and params["lowercase"]
        and params["ngram_range"] == (1, 1)
    )
    assert params["norm"] == "l2" and params["use_idf"] and not params["sublinear_tf"]
    assert params["analyzer"] == "word" and params["strip_accents"] is None and params["preprocessor"] is None

    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)  # column order
    idf = vectorizer.idf_.astype(np.float64)
    coefs, intercepts, cal_a, cal_b = [], [], [], []
    for cc in model.calibrated_classifiers_:
        svm = cc.estimator
        (cal,) = cc.calibrators
        coefs.append(svm.coef_[0])
        intercepts.append(svm.intercept_[0])
        cal_a.append(cal.a_)
        cal_b.append(cal.b_)
    arrays = {
        "vocab": np.array("\n".join(vocab)),
        "idf": idf.astype(np.float32),
        "weights": (np.stack(coefs, axis=1) * idf[:, None]).astype(np.float32),  # (V, folds): w * idf
        "intercepts": np.array(intercepts, dtype=np.float64),
        "cal_a": np.array(cal_a, dtype=np.float64),
        "cal_b": np.array(cal_b, dtype=np.float64),
        # The vectorizer's stop words: known English words that carry no weight. The stage counts
        # them as readable when it measures how much of a line the model can read (coverage).
        "stop_words": np.array("\n".join(sorted(vectorizer.get_stop_words()))),
        "source": np.array(f"alt-profanity-check=={version} (MIT); see toxicity_linear.LICENSE"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)

    # Check: the exported model gives the package's probabilities.
    # Load the runtime module from its file: this environment need not have corpusforge installed.
    spec = importlib.util.spec_from_file_location(
        "toxicity_model", REPO / "transforms" / "toxicity" / "model.py"
    )
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    ours = runtime.LinearToxicityModel.load(out).predict(CHECK_TEXTS)
    theirs = model.predict_proba(vectorizer.transform(CHECK_TEXTS))[:, 1]
    if not np.allclose(ours, theirs, atol=1e-4):
        raise SystemExit(f"export does not reproduce the package: {ours} vs {theirs}")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(
        f"wrote {out} ({out.stat().st_size} bytes, sha256 {digest}); {len(vocab)} terms, "
        f"{len(coefs)} folds; max |diff| vs package {np.max(np.abs(ours - theirs)):.2e}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    export(ap.parse_args().out)
