#!/usr/bin/env python3
"""`make bench`: throughput and memory of corpusforge on a scale corpus built from the dev pages.

Builds the corpus with ../shared/tools/make_scale_corpus.py (cached under benchmarks/results/),
runs the whole pipeline as a user would (the CLI, start-up and I/O included) for each scenario and
worker count, and runs each stage's micro-benchmark (benchmarks/bench_<stage>.py) when present.
Writes benchmarks/results/bench.json and prints a table. A benchmark reports; it never fails on a
slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared"))
MAKE_SCALE = SHARED / "tools" / "make_scale_corpus.py"

# Scenario name -> --set overrides. "passthrough" is the foundation alone (read, validate,
# normalize, write); "full" is every stage the config enables by default.
SCENARIOS: dict[str, list[str]] = {
    "passthrough": [],
    "full": None,  # filled at run time: default config
}
STAGE_SECTIONS = ("language", "quality", "decontamination", "dedup.exact", "dedup.near", "pii", "toxicity", "tokenize")


def scale_corpus(docs: int) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{docs}.jsonl.gz"
    if not path.exists():
        if not MAKE_SCALE.exists():
            sys.exit(f"no scale corpus and no {MAKE_SCALE}: set CORPUSFORGE_SHARED")
        subprocess.run([sys.executable, str(MAKE_SCALE), "--docs", str(docs), "--out", str(path)], check=True)
    return path


def available_sections() -> set[str]:
    from corpusforge.pipelines.config import Config

    return set(Config.model_fields)


def passthrough_overrides() -> list[str]:
    sections = available_sections()
    out = []
    for name in STAGE_SECTIONS:
        if name.split(".")[0] in sections:
            out.append(f"{name}.enabled=false")
    return out


def full_overrides() -> list[str]:
    """Every stage on; decontamination against the dev benchmark files when they are there."""
    benchmarks = SHARED / "data" / "dev" / "benchmarks"
    if benchmarks.is_dir():
        return [f"decontamination.benchmarks=[{benchmarks}/*.jsonl]"]
    return []


def run_pipeline(corpus: Path, workers: int, overrides: list[str], tag: str) -> dict:
    out = RESULTS / f"run-{tag}-w{workers}"
    cmd = [sys.executable, "-m", "corpusforge.pipelines.cli", "run", "--input", str(corpus), "--output", str(out),
           "--overwrite", "--workers", str(workers)]
    for o in overrides:
        cmd += ["--set", o]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "returncode": proc.returncode}
    stats = json.loads((out / "stats.json").read_text())
    docs = stats["records_read"]
    mb = corpus.stat().st_size / 1e6
    raw_mb = stats["stages"].get("validate", {}).get("chars_in", 0) / 1e6
    return {
        "workers": workers,
        "docs": docs,
        "wall_s": round(wall, 2),
        "docs_per_s": round(docs / wall, 1),
        "docs_per_s_per_core": round(docs / wall / workers, 1),
        "text_mb_per_s_per_core": round(raw_mb / wall / workers, 2),
        "input_mb": round(mb, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        # ru_maxrss of children is the largest single process: the peak of one worker (or the driver).
        "peak_rss_mb_per_process": round(after.ru_maxrss / 1024, 1),
        "kept": stats["kept"],
        "rejected": stats["rejected"],
        "conservation_ok": stats["conservation_ok"],
        "pipeline_wall_s": stats["wall_time_s"],
    }


def stage_benchmarks(corpus: Path, limit: int) -> dict:
    results = {}
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem[len("bench_"):]
        proc = subprocess.run([sys.executable, str(script), "--docs", str(corpus), "--limit", str(limit)],
                              capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
        if proc.returncode != 0 or not lines:
            results[name] = {"error": (proc.stderr or proc.stdout)[-1500:]}
            continue
        results[name] = json.loads(lines[-1])
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--scenarios", default="passthrough,full")
    ap.add_argument("--stage-limit", type=int, default=2000, help="documents per stage micro-benchmark")
    ap.add_argument("--skip-stages", action="store_true")
    a = ap.parse_args()
    corpus = scale_corpus(a.docs)
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "processor": platform.processor()},
              "corpus": {"path": str(corpus), "docs": a.docs, "bytes": corpus.stat().st_size},
              "pipeline": {}, "stages": {}}
    for scenario in a.scenarios.split(","):
        overrides = passthrough_overrides() if scenario == "passthrough" else full_overrides()
        for w in (int(x) for x in a.workers.split(",")):
            res = run_pipeline(corpus, w, overrides, scenario)
            report["pipeline"][f"{scenario}/w{w}"] = res
            print(f"{scenario:<12} workers={w}: " + (f"{res['docs_per_s']:>8.1f} docs/s, {res['docs_per_s_per_core']:>8.1f} "
                  f"docs/s/core, {res['text_mb_per_s_per_core']:.2f} MB/s/core, peak {res['peak_rss_mb_per_process']} MB"
                  if "error" not in res else f"FAILED {res['error'][-300:]}"), flush=True)
        runs = [report["pipeline"].get(f"{scenario}/w{w}", {}) for w in (1, 2)]
        if all("docs_per_s" in r for r in runs):
            report["pipeline"][f"{scenario}/speedup_2_vs_1"] = round(runs[1]["docs_per_s"] / runs[0]["docs_per_s"], 2)
    if not a.skip_stages:
        report["stages"] = stage_benchmarks(corpus, a.stage_limit)
        for name, res in report["stages"].items():
            print(f"stage {name:<20} {json.dumps(res)[:300]}")
    out = RESULTS / "bench.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
