#!/usr/bin/env python3
"""The prompt stage's scan per core: the gated scan against the full alternation, side by side.

    python benchmarks/bench_prompt.py --docs benchmarks/results/peers/scale-8000-seed11/docs.jsonl.gz

Both scanners run in this process on the same documents, interleaved in rounds (the shared machine
drifts), timed with process CPU time; the best round of each counts. It also checks that both give
the same signals for every document (``mismatches`` must be 0). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from corpusforge.transforms.prompt.patterns import compile_patterns, load_patterns
from corpusforge.transforms.prompt.scanner import GatedPromptScanner
from corpusforge.transforms.prompt.stage import PromptScanner

try:
    from corpus import read_docs  # benchmarks/ on sys.path when run as a script
except ImportError:  # pragma: no cover
    from benchmarks.corpus import read_docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, required=True, help="JSONL or JSONL.gz with a text field")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    texts = [d.text for d in read_docs(str(a.docs), a.limit)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    patterns = load_patterns()
    t0 = time.process_time()
    full = PromptScanner(compile_patterns(patterns))
    t_full_setup = time.process_time() - t0
    t0 = time.process_time()
    gated = GatedPromptScanner(patterns)
    t_gated_setup = time.process_time() - t0

    best = {"full": float("inf"), "gated": float("inf")}
    for _ in range(a.rounds):
        for name, scanner in (("full", full), ("gated", gated)):
            t0 = time.process_time()
            for t in texts:
                scanner.scan(t)
            best[name] = min(best[name], time.process_time() - t0)
    mismatches = sum(full.scan(t) != gated.scan(t) for t in texts)
    active = Counter(len(gated.active(t)) for t in texts)

    def rate(seconds: float) -> dict[str, float]:
        return {
            "cpu_s": round(seconds, 4),
            "docs_per_s_per_core": round(len(texts) / seconds, 1),
            "mb_per_s_per_core": round(mb / seconds, 2),
        }

    print(
        json.dumps(
            {
                "docs": len(texts),
                "mb": round(mb, 2),
                "full": rate(best["full"]),
                "gated": rate(best["gated"]),
                "speedup": round(best["full"] / best["gated"], 2),
                "setup_s": {"full": round(t_full_setup, 4), "gated": round(t_gated_setup, 4)},
                "active_patterns_per_doc": dict(sorted(active.items())),
                "compiled_sets": len(gated._regexes),
                "mismatches": mismatches,
            }
        )
    )


if __name__ == "__main__":
    main()
