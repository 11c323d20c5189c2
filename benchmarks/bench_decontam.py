"""Decontamination throughput (documents/s on one core) and index memory, written as JSON.

    python benchmarks/bench_decontam.py [--benchmarks GLOB ...] [--docs CORPUS.jsonl.gz] [--limit N]
                                        [--out FILE.json]

(the calling convention of ``run_bench.py``, which runs every ``bench_<stage>.py`` and reads the
last line of output, one JSON object).

Defaults: the eight dev benchmark files (``../shared/data/dev/benchmarks/*.jsonl``, about 18k items)
against the dev pages (``docs.jsonl.gz``; a corpus from ``make_scale_corpus.py`` works the same).
The stage logic runs in this one process, without Beam, so the figure is per core. A benchmark
reports; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    dev_benchmarks = DEV / "benchmarks"
    default = (
        dev_benchmarks if dev_benchmarks.is_dir() else REPO / "samples" / "benchmarks"
    )  # shared data absent
    ap.add_argument("--benchmarks", nargs="+", default=[str(default / "*.jsonl")])
    ap.add_argument("--docs", default=str(DEV / "docs.jsonl.gz"), help="the corpus (JSONL, optionally .gz)")
    ap.add_argument(
        "--limit", type=int, default=5000, help="documents to time (the corpus repeats if shorter)"
    )
    ap.add_argument("--batch", type=int, default=64, help="documents per batch, as in the stage")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--compare-reference",
        action="store_true",
        help="also time the plain NFKC + casefold code points (text._codepoints_reference), "
        "interleaved with the table path in 3 rounds, best of each",
    )
    a = ap.parse_args(argv)

    from corpusforge.schemas.config import DecontaminationConfig
    from corpusforge.schemas.records import Document
    from corpusforge.transforms.decontam.stage import Decontaminator
    from corpusforge.transforms.decontam.text import word_hashes

    opener = gzip.open if a.docs.endswith(".gz") else open
    with opener(a.docs, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line, _ in zip(f, range(a.limit), strict=False)]
    docs = [Document(id=str(r.get("id", i)), text=r["text"]) for i, r in enumerate(rows)]
    while len(docs) < a.limit:
        docs += docs[: a.limit - len(docs)]
    word_hashes("warm up the code point table")  # a per-process cost, not a per-document one

    rss0 = rss_mib()
    t0 = time.perf_counter()
    logic = Decontaminator(DecontaminationConfig(benchmarks=a.benchmarks))
    logic.ready()
    build_s = time.perf_counter() - t0
    rss1 = rss_mib()
    index = logic.index
    assert index is not None

    from corpusforge.transforms.decontam import text as text_module

    def timed() -> tuple[float, int, list]:
        t0 = time.process_time()
        flagged, verdicts = 0, []
        for start in range(0, len(docs), a.batch):  # as the Beam stage does (BatchElements)
            out = logic.check_batch(docs[start : start + a.batch])
            verdicts += [(v.rejection.reason if v.rejection else None) for v in out]
            flagged += sum(v.rejection is not None for v in out)
        return time.process_time() - t0, flagged, verdicts

    cpu_s, flagged, verdicts = timed()
    compare = {}
    if a.compare_reference:
        fast = text_module._codepoints
        best = {"table": cpu_s, "reference": float("inf")}
        for _ in range(3):
            text_module._codepoints = text_module._codepoints_reference
            t_ref, _, ref_verdicts = timed()
            text_module._codepoints = fast
            t_new, _, _ = timed()
            best["reference"] = min(best["reference"], t_ref)
            best["table"] = min(best["table"], t_new)
        cpu_s = best["table"]
        compare = {
            "reference_cpu_s": round(best["reference"], 3),
            "speedup_vs_reference": round(best["reference"] / best["table"], 2),
            "same_verdicts_as_reference": ref_verdicts == verdicts,
        }
    mb = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    result = {
        "stage": "decontamination",
        "benchmarks": a.benchmarks,
        "index_items": index.stats.items,
        "index_ngrams": index.stats.ngrams,
        "index_build_s": round(build_s, 2),
        "index_hash_arrays_mib": round(index.nbytes / 2**20, 1),
        "index_build_peak_rss_growth_mib": round(rss1 - rss0, 1),
        "process_max_rss_mib": round(rss_mib(), 1),
        "docs": len(docs),
        "batch": a.batch,
        "mb": round(mb, 1),
        "flagged": flagged,
        "cpu_s": round(cpu_s, 2),
        "docs_per_s_per_core": round(len(docs) / cpu_s),
        "mb_per_s_per_core": round(mb / cpu_s, 2),
        **compare,
    }
    text = json.dumps(result)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)  # one line: run_bench.py reads the last JSON line
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
