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


def reused_index(folder: Path) -> dict | None:
    """The figures of an index run that already finished (``--reuse-index``), from its stats.json:
    building 100k documents is the longest step, and the index is an input here, not the subject."""
    path = folder / "stats.json"
    if not (folder / "_SUCCESS").exists() or not path.exists():
        return None
    stats = json.loads(path.read_text())
    return {
        "reused": True,
        "docs": stats["records_read"],
        "kept": stats["kept"],
        "pipeline_wall_s": stats["wall_time_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-docs", type=int, default=None, help="default 100,000 (6,800 with --reduced)")
    ap.add_argument("--part-docs", type=int, default=None, help="default 20,000 (2,000 with --reduced)")
    ap.add_argument("--reduced", action="store_true", help="a quick look: an index of 6,800, a part of 2,000")
    ap.add_argument("--reuse-index", action="store_true", help="keep a finished index run of the same size")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench-previous.json")
    a = ap.parse_args()
    a.index_docs = a.index_docs or (6_800 if a.reduced else 100_000)
    a.part_docs = a.part_docs or (2_000 if a.reduced else 20_000)
    base = dedup_only()
    report: dict = {}

    def record(name: str, result: dict) -> None:
        """Keep and save each run's figures as it ends (a long benchmark stopped early keeps them)."""
        report[name] = result
        (RESULTS / a.out).write_text(json.dumps(report, indent=2))
        if "wall_s" in result:
            line = (
                f"{result['docs']} docs in {result['wall_s']} s (cpu {result['cpu_s']} s), peak MB driver "
                f"{result['peak_rss_mb_driver']} worker {result['peak_rss_mb_worker']}"
            )
        elif result.get("reused"):
            line = f"{result['docs']} docs, reused (pipeline {result['pipeline_wall_s']} s when built)"
        else:
            line = f"FAILED {result.get('error', '')[-300:]}"
        print(f"{name:<28} {line}", flush=True)

    index_dir = RESULTS / f"run-index-{a.index_docs}-w{a.workers}"
    index = reused_index(index_dir) if a.reuse_index else None
    record("index", index or run_pipeline(corpus(a.index_docs, 0), a.workers, base, f"index-{a.index_docs}"))
    part = corpus(a.part_docs, 1)
    record("part_alone", run_pipeline(part, a.workers, base, f"part-{a.part_docs}-alone"))
    record(
        "part_against_index",
        run_pipeline(
            part, a.workers, [*base, f"dedup.previous=[{index_dir}]"], f"part-{a.part_docs}-previous"
        ),
    )
    alone, against = report["part_alone"], report["part_against_index"]
    if "wall_s" in alone and "wall_s" in against:
        stats = json.loads(
            (RESULTS / f"run-part-{a.part_docs}-previous-w{a.workers}" / "stats.json").read_text()
        )
        report["previous_rejected"] = stats["stages"].get("dedup_previous", {}).get("rejected_by_reason", {})
        report["extra_wall_s"] = round(against["wall_s"] - alone["wall_s"], 2)
        report["extra_cpu_s"] = round(against["cpu_s"] - alone["cpu_s"], 1)
        print(
            json.dumps({k: v for k, v in report.items() if k.startswith(("extra", "previous"))}), flush=True
        )
    inc = f"part-{a.part_docs}-incremental"
    record("part_incremental", run_pipeline(part, a.workers, base, inc, ("--overwrite", "--incremental")))
    resumed = run_pipeline(part, a.workers, base, inc, ("--incremental",))
    if "wall_s" in resumed:
        stats = json.loads((RESULTS / f"run-{inc}-w{a.workers}" / "stats.json").read_text())
        resumed["parts_run"] = stats.get("parts_run")
    record("rerun_finished_incremental", resumed)
    report["cli_startup"] = startup()
    print(f"cli start-up (--help): {report['cli_startup']}; the rerun ran {resumed.get('parts_run')} part(s)")
    (RESULTS / a.out).write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS / a.out}")


if __name__ == "__main__":
    main()
