"""Dedup against an earlier release: a new part deduplicated against an index, against the same part alone.

    python benchmarks/bench_previous.py [--reduced] [--index-docs N] [--part-docs N] [--workers 2]

The defaults are the issue's sizes (an index of 100k documents, a part of 20k); ``--reduced``
(6,800 and 2,000) is a quick look that says little about how the join scales.

1. An index: a scale corpus of ``--index-docs`` (../shared/tools/make_scale_corpus.py, seed 0) run
   with only dedup on; its ``dedup_index/`` is the earlier release.
2. A new part of ``--part-docs`` (seed 1, so mostly new pages with the generator's copies among
   them) run twice with only dedup on: alone, and with ``dedup.previous`` naming the index.
   Wall time, CPU and peak memory (driver, largest worker) of each, and the difference.

The join of band keys costs a shuffle of the index's rows, so the extra time should grow with the
index and not with index x part. A benchmark reports; it does not fail on a slow machine.

3. Resuming: the part as an ``--incremental`` run, then the same command again. The rerun finds
   every input file recorded and runs no part: its cost should be start-up only (the CLI's
   imports and checks, the manifest, the summed stats and report), shown next to ``--help``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
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


def startup() -> dict:
    """Wall and CPU time of the CLI's start-up alone (``--help``: every import, no run)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "corpusforge.pipelines.cli", "run", "--help"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(time.perf_counter() - start, 2), "cpu_s": round(cpu, 1)}


def dedup_only() -> list[str]:
    return [o for o in passthrough_overrides() if not o.startswith("dedup.")] + ["tokenize.enabled=false"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-docs", type=int, default=None, help="default 100,000 (6,800 with --reduced)")
    ap.add_argument("--part-docs", type=int, default=None, help="default 20,000 (2,000 with --reduced)")
    ap.add_argument("--reduced", action="store_true", help="a quick look: an index of 6,800, a part of 2,000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench-previous.json")
    a = ap.parse_args()
    a.index_docs = a.index_docs or (6_800 if a.reduced else 100_000)
    a.part_docs = a.part_docs or (2_000 if a.reduced else 20_000)
    base = dedup_only()
    index = run_pipeline(corpus(a.index_docs, 0), a.workers, base, f"index-{a.index_docs}")
    index_dir = RESULTS / f"run-index-{a.index_docs}-w{a.workers}"
    part = corpus(a.part_docs, 1)
    alone = run_pipeline(part, a.workers, base, f"part-{a.part_docs}-alone")
    against = run_pipeline(
        part, a.workers, [*base, f"dedup.previous=[{index_dir}]"], f"part-{a.part_docs}-previous"
    )
    inc = f"part-{a.part_docs}-incremental"
    incremental = run_pipeline(part, a.workers, base, inc, ("--overwrite", "--incremental"))
    resumed = run_pipeline(part, a.workers, base, inc, ("--incremental",))
    if "wall_s" in resumed:
        stats = json.loads((RESULTS / f"run-{inc}-w{a.workers}" / "stats.json").read_text())
        resumed["parts_run"] = stats.get("parts_run")
    report = {
        "index": index,
        "part_alone": alone,
        "part_against_index": against,
        "part_incremental": incremental,
        "rerun_finished_incremental": resumed,
        "cli_startup": startup(),
    }
    if "wall_s" in alone and "wall_s" in against:
        stats = json.loads(
            (RESULTS / f"run-part-{a.part_docs}-previous-w{a.workers}" / "stats.json").read_text()
        )
        report["previous_rejected"] = stats["stages"].get("dedup_previous", {}).get("rejected_by_reason", {})
        report["extra_wall_s"] = round(against["wall_s"] - alone["wall_s"], 2)
        report["extra_cpu_s"] = round(against["cpu_s"] - alone["cpu_s"], 1)
    for name in (
        "index",
        "part_alone",
        "part_against_index",
        "part_incremental",
        "rerun_finished_incremental",
    ):
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
    print(f"cli start-up (--help): {report['cli_startup']}; rerun ran {resumed.get('parts_run')} part(s)")
    print(json.dumps({k: v for k, v in report.items() if k.startswith(("extra", "previous"))}))
    (RESULTS / a.out).write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS / a.out}")


if __name__ == "__main__":
    main()
