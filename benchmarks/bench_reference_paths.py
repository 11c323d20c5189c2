#!/usr/bin/env python3
"""Language identification and decontamination per core: the compiled paths against their references.

    python benchmarks/bench_reference_paths.py --docs CORPUS.jsonl.gz [--benchmarks GLOB] [--rounds 3]

In this one process, on every document of the corpus, interleaved in ``--rounds`` rounds (the machine
drifts), process CPU time:

* language: ``NaiveBayesLanguageDetector.detect`` (``score_words``: normalisation and a word memo in
  C) against ``_detect_compiled_reference`` (the walk over ``str.translate``'s output, no memo), on
  the stage's 1,500-character samples;
* decontamination: ``Decontaminator.check_batch`` in batches of 64 with ``_grams`` (compiled hashing,
  NFKC spans and look-up) against the same with the numpy path.

Both must give identical answers (language and posterior float; every verdict), which the output
says (``same_answers``). Prints one JSON line. A benchmark reports; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO.parent / "shared" / "data" / "dev"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default=str(DEV / "docs.jsonl.gz"), help="JSONL(.gz) with a text field")
    ap.add_argument("--benchmarks", default=str(DEV / "benchmarks" / "*.jsonl"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    from corpusforge.schemas.config import DecontaminationConfig, LanguageConfig
    from corpusforge.schemas.records import Document
    from corpusforge.transforms.decontam import text as text_module
    from corpusforge.transforms.decontam.stage import Decontaminator
    from corpusforge.transforms.language.naive_bayes import NaiveBayesLanguageDetector
    from corpusforge.transforms.language.stage import sample_text

    opener = gzip.open if a.docs.endswith(".gz") else open
    with opener(a.docs, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    lang_cfg = LanguageConfig()
    samples = [sample_text(t, lang_cfg.sample_chars, lang_cfg.sample_chunks) for t in texts]
    detector = NaiveBayesLanguageDetector()
    logic = Decontaminator(DecontaminationConfig(benchmarks=sorted(glob.glob(a.benchmarks))))
    logic.ready()
    docs = [Document(id=str(i), text=t) for i, t in enumerate(texts)]
    batches = [docs[s : s + 64] for s in range(0, len(docs), 64)]
    compiled = text_module._grams

    def decontam(with_compiled: bool) -> list:
        text_module._grams = compiled if with_compiled else None
        try:
            return [v for b in batches for v in logic.check_batch(b)]
        finally:
            text_module._grams = compiled

    cases = {
        "language": (
            lambda: [detector.detect(s) for s in samples],
            lambda: [detector._detect_compiled_reference(s) for s in samples],
        ),
        "decontamination": (lambda: decontam(True), lambda: decontam(False)),
    }
    result: dict = {
        "docs": len(texts),
        "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 1),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    for name, (new, ref) in cases.items():
        new(), ref()  # warm: memo, tables, caches
        t_new = t_ref = 0.0
        same = True
        for _ in range(a.rounds):
            t0 = time.process_time()
            ref_out = ref()
            t_ref += time.process_time() - t0
            t0 = time.process_time()
            new_out = new()
            t_new += time.process_time() - t0
            same = same and new_out == ref_out
        result[name] = {
            "reference_cpu_s": round(t_ref / a.rounds, 3),
            "new_cpu_s": round(t_new / a.rounds, 3),
            "speedup": round(t_ref / t_new, 2),
            "new_docs_per_s_per_core": round(len(texts) * a.rounds / t_new),
            "same_answers": same,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
