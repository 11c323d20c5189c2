#!/usr/bin/env python3
"""Throughput of the language and quality stages' logic, per core, on a JSONL(.gz) corpus.

    python benchmarks/bench_language_quality.py --docs ../shared/data/dev/docs.jsonl.gz --limit 2000

Runs the pure logic in this process (no Beam), timing with process CPU time so that other load on
the machine does not count, and prints one JSON line: documents/s and MB/s per core for ``language``,
``quality`` (on every document, language unknown) and ``both`` (quality on what language keeps,
as in the pipeline). A benchmark reports; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

from corpusforge.schemas.config import load_config
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.language import naive_bayes
from corpusforge.transforms.language.stage import LanguageFilter
from corpusforge.transforms.quality.stage import QualityFilter


def read_docs(path: Path, limit: int) -> list[Document]:
    opener = gzip.open if path.suffix == ".gz" else open
    docs = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit and i >= limit:
                break
            rec = json.loads(line)
            docs.append(Document(id=str(rec.get("id", i)), text=rec["text"]))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, required=True, help="JSONL or JSONL.gz with a text field")
    ap.add_argument("--limit", type=int, default=2000, help="documents to use (0: all)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument(
        "--compare-reference",
        action="store_true",
        help="also time quality with the pure-Python signals (signals.compute_signals_reference, the "
        "fallback where _signals.c is not built) and with the reference word split and n-gram "
        "signals (signals.*_reference), interleaved with the current path in 3 rounds, best of each",
    )
    a = ap.parse_args()
    cfg = load_config(a.config)
    docs = read_docs(a.docs, a.limit)
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    lang = LanguageFilter(cfg.language)
    # langdetect's sampling walk, the evaluation before naive_bayes: measured alongside for the ratio
    walk = LanguageFilter(cfg.language.model_copy(update={"method": "sampling"}))
    qual = QualityFilter(cfg.quality)
    t0 = time.process_time()
    lang.ready()
    qual.ready()
    setup_s = time.process_time() - t0
    walk.ready()

    # interleaved in halves (the machine drifts): configured method, walk, configured, walk
    t_lang = t_walk = 0.0
    lang_out = []
    half = len(docs) // 2
    for part in (docs[:half], docs[half:]):
        t0 = time.process_time()
        lang_out += [lang.process(d) for d in part]
        t_lang += time.process_time() - t0
        t0 = time.process_time()
        for d in part:
            walk.process(d)
        t_walk += time.process_time() - t0
    t0 = time.process_time()
    for d in docs:
        qual.process(d)
    t_qual = time.process_time() - t0
    survivors = [o for o in lang_out if not isinstance(o, RejectedDocument)]
    t0 = time.process_time()
    for d in survivors:
        qual.process(d)
    t_both = t_lang + time.process_time() - t0

    compare = {}
    if a.compare_reference:
        from corpusforge.transforms.quality import signals

        compiled = signals._signals
        fast = (signals._split_words_python, signals.ngram_signals)
        reference = (
            signals.split_words_reference,
            lambda words, total, counts=None: signals.ngram_signals_reference(words, total),
        )
        # (compiled module or None, word split and n-gram functions the Python path uses)
        paths = {"python_reference": (None, reference), "python": (None, fast), "current": (compiled, fast)}
        best = dict.fromkeys(paths, float("inf"))
        outputs = {}
        for _ in range(3):
            for name, (module, (split, ngrams)) in paths.items():
                signals._signals = module
                signals._split_words_python, signals.ngram_signals = split, ngrams
                t0 = time.process_time()
                outputs[name] = [qual.process(d) for d in docs]
                best[name] = min(best[name], time.process_time() - t0)
        signals._signals = compiled
        signals._split_words_python, signals.ngram_signals = fast

        def sigs(outs: list) -> list:
            return [getattr(o, "doc", o).quality_signals for o in outs]

        compare = {
            "quality_compiled": compiled is not None,
            **{f"quality_{name}_cpu_s": round(best[name], 3) for name in paths},
            "quality_speedup_vs_python": round(best["python"] / best["current"], 2),
            "quality_speedup_vs_reference": round(best["python_reference"] / best["current"], 2),
            "quality_same_signals_as_reference": all(
                sigs(outputs[name]) == sigs(outputs["current"]) for name in paths
            ),
        }

    def rate(seconds: float) -> dict[str, float]:
        return {
            "docs_per_s_per_core": round(len(docs) / seconds, 1),
            "mb_per_s_per_core": round(mb / seconds, 3),
        }

    print(
        json.dumps(
            {  # one line: benchmarks/run_bench.py reads the last line of stdout
                "docs": len(docs),
                "mb": round(mb, 2),
                "setup_s": round(setup_s, 2),
                "language": rate(t_lang),
                "language_method": cfg.language.method,
                # naive_bayes: the compiled n-gram walk (_ngrams.c) or the pure-Python fallback
                "language_compiled": naive_bayes._ngrams is not None,
                "language_sampling_walk": rate(t_walk),
                "language_speedup_vs_walk": round(t_walk / t_lang, 2),
                "quality": rate(t_qual),
                "both": rate(t_both),
                "language_kept": len(survivors),
                **compare,
            }
        )
    )


if __name__ == "__main__":
    main()
