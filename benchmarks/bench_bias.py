#!/usr/bin/env python3
"""Micro-benchmark of the bias stage's logic on a scale corpus (one process, so per core).

    python benchmarks/bench_bias.py --docs benchmarks/results/scale-20000.jsonl.gz --limit 2000

Times ``TagBias.process_batch`` over batches of the configured size (what each Beam worker runs),
after the lexicon and classifier are loaded (timed separately), with and without the toxic-line
scoring, and with the scoring but without the cache of scored lines (``bias.score_cache: 0``). The
cache is emptied before every pass, so each pass starts cold: what it saves is the repetition
within one pass's documents (reported as ``cache_hit_rate``), not the passes before. Prints one JSON
line: docs/s and MB/s of text per core (target: >= 5,000 docs/s with the scoring on). Reports only.
"""

from __future__ import annotations

import argparse
import json
import time

from corpus import read_docs  # benchmarks/corpus.py (this script's folder is on sys.path)

from corpusforge.schemas.config import Config
from corpusforge.transforms.bias.stage import TagBias, _holder


def _best_cpu_s(stage: TagBias, batches: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        stage.holder.tagger.clear_cache()
        t0 = time.process_time()
        for batch in batches:
            stage.process_batch(batch)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", required=True, help="JSONL(.gz) corpus, e.g. from make_scale_corpus.py")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="best of N passes")
    a = ap.parse_args()
    docs = read_docs(a.docs, a.limit)
    chars = sum(len(d.text) for d in docs)
    batches = [docs[i : i + a.batch_size] for i in range(0, len(docs), a.batch_size)]
    result = {"stage": "bias", "docs": len(docs), "mean_chars": round(chars / max(1, len(docs)))}
    for key, toxic_lines, cache in (("", True, None), ("no_cache_", True, 0), ("lexicon_only_", False, None)):
        section = {"toxic_lines": toxic_lines, "batch_size": a.batch_size}
        if cache is not None:
            section["score_cache"] = cache
        cfg = Config.model_validate({"bias": section})
        stage = TagBias(_holder(cfg.bias, cfg.toxicity), a.batch_size)
        t0 = time.perf_counter()
        stage.setup()
        setup_s = time.perf_counter() - t0
        best = _best_cpu_s(stage, batches, a.repeat)
        lines = stage.holder.tagger.cache
        if lines is not None:  # the last pass's look-ups
            result[f"{key}cache_hit_rate"] = round(lines.hits / max(1, lines.hits + lines.misses), 3)
        result[f"{key}setup_s"] = round(setup_s, 3)
        result[f"{key}cpu_s"] = round(best, 3)
        result[f"{key}docs_per_s_per_core"] = round(len(docs) / best, 1)
        result[f"{key}mb_per_s_per_core"] = round(chars / 1e6 / best, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
