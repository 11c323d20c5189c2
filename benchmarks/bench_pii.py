"""Throughput of the PII stage's logic (documents/s and MB/s per core) on a JSONL(.gz) corpus.

Runs :class:`~corpusforge.transforms.pii.stage.PiiRedactor` in batches on one core, outside Beam, so the
figure is the stage's own cost. ``benchmarks/run_bench.py`` calls it as
``bench_pii.py --docs CORPUS --limit N``; by hand, build a corpus with
``python3 ../shared/tools/make_scale_corpus.py --docs 3000 --out /tmp/scale3k.jsonl.gz``.
Prints one JSON line (and writes it to ``--out`` when given); it reports and never fails on a slow
machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from corpus import read_docs  # benchmarks/corpus.py (this script's folder is on sys.path)

from corpusforge.schemas.config import PiiConfig
from corpusforge.transforms.pii.stage import ScrubPII


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", default="/tmp/scale3k.jsonl.gz", help="corpus: JSONL or JSONL.gz")
    ap.add_argument("--limit", type=int, default=3000, help="documents to read from it")
    ap.add_argument("--repeat", type=int, default=1, help="passes over the documents (best pass reported)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    docs = read_docs(args.docs, args.limit)
    stage = ScrubPII(PiiConfig()).logic
    t0 = time.process_time()
    stage.ready()
    setup_s = time.process_time() - t0
    best = float("inf")
    replaced = 0
    for _ in range(args.repeat):
        t0 = time.process_time()
        replaced = 0
        for i in range(0, len(docs), stage.batch_size):
            for out in stage.process_batch(docs[i : i + stage.batch_size]):
                replaced += sum((out.pii_counts or {}).values())
        best = min(best, time.process_time() - t0)
    mb = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    report = {
        "stage": "pii",
        "input": args.docs,
        "docs": len(docs),
        "mb": round(mb, 2),
        "setup_cpu_s": round(setup_s, 3),
        "cpu_s": round(best, 3),
        "docs_per_s_per_core": round(len(docs) / best, 1),
        "mb_per_s_per_core": round(mb / best, 2),
        "spans_replaced": replaced,
    }
    text = json.dumps(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
