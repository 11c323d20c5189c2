"""Dedup against an earlier release: a new part deduplicated against an index, against the same part alone.

    python benchmarks/bench_previous.py [--index-docs 100000] [--part-docs 20000] [--workers 2]

1. An index: a scale corpus of ``--index-docs`` (../shared/tools/make_scale_corpus.py, seed 0) run
   with only dedup on; its ``dedup_index/`` is the earlier release.
2. A new part of ``--part-docs`` (seed 1, so mostly new pages with the generator's copies among
   them) run twice with only dedup on: alone, and with ``dedup.previous`` naming the index.
   Wall time, CPU and peak memory (driver, largest worker) of each, and the difference.

The join of band keys costs a shuffle of the index's rows, so the extra time should grow with the
index and not with index x part. A benchmark reports; it does not fail on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import MAKE_SCALE, RESULTS, passthrough_overrides, run_pipeline  # noqa: E402


def corpus(docs: int, seed: int) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{docs}-seed{seed}.jsonl.gz"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(MAKE_SCALE), "--docs", str(docs), "--seed", str(seed), "--out", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def dedup_only() -> list[str]:
    return [o for o in passthrough_overrides() if not o.startswith("dedup.")] + ["tokenize.enabled=false"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-docs", type=int, default=100_000)
    ap.add_argument("--part-docs", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench-previous.json")
    a = ap.parse_args()
    base = dedup_only()
    index = run_pipeline(corpus(a.index_docs, 0), a.workers, base, f"index-{a.index_docs}")
    index_dir = RESULTS / f"run-index-{a.index_docs}-w{a.workers}"
    part = corpus(a.part_docs, 1)
    alone = run_pipeline(part, a.workers, base, f"part-{a.part_docs}-alone")
    against = run_pipeline(
        part, a.workers, [*base, f"dedup.previous=[{index_dir}]"], f"part-{a.part_docs}-previous"
    )
    report = {"index": index, "part_alone": alone, "part_against_index": against}
    if "wall_s" in alone and "wall_s" in against:
        stats = json.loads(
            (RESULTS / f"run-part-{a.part_docs}-previous-w{a.workers}" / "stats.json").read_text()
        )
        report["previous_rejected"] = stats["stages"].get("dedup_previous", {}).get("rejected_by_reason", {})
        report["extra_wall_s"] = round(against["wall_s"] - alone["wall_s"], 2)
        report["extra_cpu_s"] = round(against["cpu_s"] - alone["cpu_s"], 1)
    for name in ("index", "part_alone", "part_against_index"):
        r = report[name]
        print(
            f"{name:<20} "
            + (
                f"{r['docs']} docs in {r['wall_s']} s (cpu {r['cpu_s']} s), peak MB driver "
                f"{r['peak_rss_mb_driver']} worker {r['peak_rss_mb_worker']}"
                if "wall_s" in r
                else f"FAILED {r.get('error', '')[-300:]}"
            )
        )
    print(json.dumps({k: v for k, v in report.items() if k.startswith(("extra", "previous"))}))
    (RESULTS / a.out).write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS / a.out}")


if __name__ == "__main__":
    main()
