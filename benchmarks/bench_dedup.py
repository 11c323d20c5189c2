"""Deduplication benchmark: MinHash signature docs/s per core, and the whole dedup stage's time.

    python benchmarks/bench_dedup.py [--docs DOCS.jsonl.gz] [--stage-docs 20000 100000] [--out FILE.json]
    python benchmarks/bench_dedup.py --docs CORPUS --limit N     # as run_bench.py calls it


1. Signatures: one process, CPU time (``time.process_time``), over the documents of ``--docs``
   (default: ../shared/data/dev/docs.jsonl.gz), repeated until ``--min-seconds``; the time is split
   into normalisation, word hashing, shingling and permutation so that a regression shows where.
   ``--baseline`` also times datasketch's ``MinHash.bulk`` with Python shingling on a sample.
2. Stage: for each ``--stage-docs`` size, a corpus from ../shared/tools/make_scale_corpus.py (10%
   near or exact copies) is run through DeduplicateExact then DeduplicateNear on one in-process
   worker; wall and CPU time are reported with docs/s, so growth can be checked for linearity.
   With ``--limit N`` (the ``make bench`` harness) the stage runs once, on the first N documents
   of ``--docs``, instead of on generated corpora.

A benchmark reports; it does not fail on a slow machine. Results are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared"))


def load_texts(path: Path, limit: int | None = None) -> list[str]:
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if limit and len(texts) >= limit:
                break
    return texts


def bench_signatures(texts: list[str], min_seconds: float) -> dict:
    from corpusforge.transforms.dedup.minhash import MinHasher, comparison_text, shingle_hashes, word_hashes

    hasher = MinHasher()
    parts = {"normalize": 0.0, "word_hashes": 0.0, "shingles": 0.0, "permute": 0.0}
    docs = 0
    chars = 0
    start = time.process_time()
    while True:
        for text in texts:
            t0 = time.process_time()
            norm = comparison_text(text)
            t1 = time.process_time()
            words = word_hashes(norm, hasher.powers)
            t2 = time.process_time()
            sh = shingle_hashes(words, hasher.ngram)
            t3 = time.process_time()
            hasher.perms.signature(sh)
            t4 = time.process_time()
            parts["normalize"] += t1 - t0
            parts["word_hashes"] += t2 - t1
            parts["shingles"] += t3 - t2
            parts["permute"] += t4 - t3
            chars += len(text)
        docs += len(texts)
        if time.process_time() - start >= min_seconds:
            break
    cpu = time.process_time() - start
    return {
        "docs": docs,
        "cpu_s": round(cpu, 3),
        "docs_per_s_per_core": round(docs / cpu, 1),
        "mb_per_s_per_core": round(chars / cpu / 1e6, 2),
        "share": {k: round(v / cpu, 3) for k, v in parts.items()},
    }


def bench_datasketch_baseline(texts: list[str]) -> dict:
    """datasketch's own path: Python word 5-gram strings, MinHash.bulk (sha1 per shingle)."""
    from datasketch import MinHash

    from corpusforge.transforms.dedup.minhash import dedup_comparison_form

    start = time.process_time()
    sets = []
    for text in texts:
        w = dedup_comparison_form(text).split()
        sets.append([" ".join(w[i : i + 5]).encode() for i in range(max(1, len(w) - 4))])
    MinHash.bulk(sets, num_perm=128)
    cpu = time.process_time() - start
    return {"docs": len(texts), "cpu_s": round(cpu, 3), "docs_per_s_per_core": round(len(texts) / cpu, 1)}


def scale_corpus(n_docs: int, workdir: Path) -> Path:
    corpus = workdir / f"scale-{n_docs}.jsonl.gz"
    if not corpus.exists():
        subprocess.run(
            [
                sys.executable,
                str(SHARED / "tools" / "make_scale_corpus.py"),
                "--docs",
                str(n_docs),
                "--out",
                str(corpus),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return corpus


def head_corpus(source: Path, n_docs: int, workdir: Path) -> Path:
    """The first ``n_docs`` records of ``source`` as a corpus of their own."""
    out = workdir / f"head-{n_docs}.jsonl.gz"
    with gzip.open(source, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n_docs:
                break
            dst.write(line)
    return out


def bench_stage(corpus: Path, workdir: Path) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from corpusforge.pipelines.local.runner import LocalRunner
    from corpusforge.schemas.config import DedupNearConfig
    from corpusforge.schemas.records import Document
    from corpusforge.transforms.dedup.exact import DeduplicateExact
    from corpusforge.transforms.dedup.near import DeduplicateNear

    counts = workdir / f"counts-{corpus.name.split('.')[0]}.jsonl"

    def parse(line: str) -> Document:
        r = json.loads(line)
        return Document(id=r["id"], text=r["text"], source=r.get("source"), url=r.get("url"))

    wall0, cpu0 = time.time(), time.process_time()
    options = PipelineOptions(["--direct_running_mode=in_memory"])
    with beam.Pipeline(runner=LocalRunner(), options=options) as p:
        docs = p | beam.io.ReadFromText(str(corpus)) | beam.Map(parse)
        kept, rej_exact = docs | "Exact" >> DeduplicateExact()
        kept, rej_near = kept | "Near" >> DeduplicateNear(DedupNearConfig())
        _ = (
            (
                kept | "K" >> beam.Map(lambda d: ("kept", 1)),
                rej_exact | "E" >> beam.Map(lambda r: ("exact", 1)),
                rej_near | "N" >> beam.Map(lambda r: ("near", 1)),
            )
            | beam.Flatten()
            | beam.CombinePerKey(sum)
            | beam.Map(json.dumps)
            | beam.io.WriteToText(str(counts), shard_name_template="")
        )
    wall, cpu = time.time() - wall0, time.process_time() - cpu0
    outcome = dict(json.loads(line) for line in counts.read_text().splitlines())
    n_docs = sum(outcome.values())
    return {
        "docs": n_docs,
        "wall_s": round(wall, 1),
        "cpu_s_driver": round(cpu, 1),
        "docs_per_s": round(n_docs / wall, 1),
        "outcome": outcome,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--docs", "--corpus", dest="corpus", type=Path, default=SHARED / "data" / "dev" / "docs.jsonl.gz"
    )
    ap.add_argument(
        "--limit", type=int, help="use the first N documents of --docs (signatures and one stage run)"
    )
    ap.add_argument("--min-seconds", type=float, default=5.0)
    ap.add_argument("--baseline", action="store_true", help="also time datasketch MinHash.bulk (slow)")
    ap.add_argument("--stage-docs", type=int, nargs="*", default=[20_000, 100_000])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "corpusforge-bench-dedup")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dedup.json")
    a = ap.parse_args(argv)
    results: dict = {}
    texts = load_texts(a.corpus, a.limit)
    results["signatures"] = bench_signatures(texts, a.min_seconds)
    print("signatures:", json.dumps(results["signatures"]), flush=True)
    if a.baseline:
        results["datasketch_bulk_baseline"] = bench_datasketch_baseline(texts[:300])
        print("datasketch baseline:", json.dumps(results["datasketch_bulk_baseline"]), flush=True)
    a.workdir.mkdir(parents=True, exist_ok=True)
    results["stage"] = []
    corpora = (
        [head_corpus(a.corpus, a.limit, a.workdir)]
        if a.limit
        else [scale_corpus(n, a.workdir) for n in a.stage_docs]
    )
    for corpus in corpora:
        r = bench_stage(corpus, a.workdir)
        results["stage"].append(r)
        print("stage:", json.dumps(r), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results), flush=True)  # last line: what run_bench.py reads
    return 0


if __name__ == "__main__":
    sys.exit(main())
