#!/usr/bin/env python3
"""Micro-benchmark of the toxicity stage's logic on a scale corpus (one process, so per core).

    python benchmarks/bench_toxicity.py --docs benchmarks/results/scale-20000.jsonl.gz --limit 2000

Times ``ToxicityTagger.process_batch`` over batches of the configured size (what each Beam worker
runs), after ``setup()`` (model load, timed separately). Prints one JSON line: docs/s and MB/s of
text per core, and the share of time spent cleaning and tokenising (Python per token) rather than in
the numpy segmentation, classifier and aggregation. Reports only.
"""

from __future__ import annotations

import argparse
import json
import time

from corpus import read_docs  # benchmarks/corpus.py (this script's folder is on sys.path)

from corpusforge.schemas.config import ToxicityConfig
from corpusforge.transforms.toxicity.stage import ToxicityTagger


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", required=True, help="JSONL(.gz) corpus, e.g. from make_scale_corpus.py")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--no-clean-text", action="store_true", help="skip artefact stripping and unmasking")
    ap.add_argument("--repeat", type=int, default=3, help="best of N passes")
    a = ap.parse_args()
    docs = read_docs(a.docs, a.limit)
    chars = sum(len(d.text) for d in docs)

    stage = ToxicityTagger(ToxicityConfig(batch_size=a.batch_size, clean_text=not a.no_clean_text))
    t0 = time.perf_counter()
    stage.ready()
    setup_s = time.perf_counter() - t0
    batches = [docs[i : i + a.batch_size] for i in range(0, len(docs), a.batch_size)]

    best = float("inf")
    for _ in range(a.repeat):
        t0 = time.process_time()
        for batch in batches:
            stage.process_batch(batch)
        best = min(best, time.process_time() - t0)

    scorer = stage._scorer
    t0 = time.process_time()
    for d in docs:
        scorer.marked_ids(d.text)  # cleaning + tokenisation: the per-token Python work
    tokenise_s = time.process_time() - t0
    n_segments = sum(
        len(scorer.segment_batch(b_docs)[2]) for b_docs in ([d.text for d in b] for b in batches)
    )
    print(
        json.dumps(
            {
                "stage": "toxicity",
                "docs": len(docs),
                "clean_text": not a.no_clean_text,
                "mean_chars": round(chars / max(1, len(docs))),
                "segments_per_doc": round(n_segments / max(1, len(docs)), 1),
                "setup_s": round(setup_s, 3),
                "cpu_s": round(best, 3),
                "docs_per_s_per_core": round(len(docs) / best, 1),
                "mb_per_s_per_core": round(chars / 1e6 / best, 2),
                "tokenise_share": round(tokenise_s / best, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
