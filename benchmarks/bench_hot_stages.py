#!/usr/bin/env python3
"""Per-stage CPU of the per-document work, on the documents as they reach each stage (one process).

    python benchmarks/bench_hot_stages.py --docs /tmp/8k.jsonl.gz \\
        --benchmarks '/work/shared/data/dev/benchmarks/*.jsonl'

Why: the end-to-end run spreads the stages over two forked workers, so a profile of it says which
stage costs what only as a share of samples. Here the chain of per-document logic runs in order in
one process (normalize, decontamination, language, quality, prompt, the exact-dedup key and the
MinHash signature of what survives the filters, pii, toxicity, bias, and bias's count over every
record rejected before it), each stage fed the documents the previous one kept, and each timed in
CPU seconds (best of ``--repeat`` passes over the same input). Dedup only hashes here (no shuffle):
every document goes on, so the later stages see a few more documents than in a real run.

Run it with two environments' pythons (main's ``.venv`` and a branch's) interleaved to compare
before and after on the same documents. Prints one JSON line. Reports only.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from corpus import read_docs  # benchmarks/corpus.py (this script's folder is on sys.path)

from corpusforge.schemas.config import Config
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.bias.stage import _holder as bias_holder
from corpusforge.transforms.decontam.stage import Decontaminator
from corpusforge.transforms.dedup.exact import _text_key
from corpusforge.transforms.dedup.minhash import MinHasher
from corpusforge.transforms.language.stage import LanguageFilter
from corpusforge.transforms.normalize.stage import TextNormalizer
from corpusforge.transforms.pii.stage import PiiRedactor
from corpusforge.transforms.prompt.stage import TagPromptSignals
from corpusforge.transforms.quality.stage import QualityFilter
from corpusforge.transforms.toxicity.stage import ToxicityTagger


def _batches(docs: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [docs[i : i + size] for i in range(0, len(docs), size)]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def _run_stage(logic: Any, docs: list[Document], batch: int) -> tuple[list[Document], list[Any]]:
    kept: list[Document] = []
    rejected: list[Any] = []
    for chunk in _batches(docs, batch):
        for doc, out in zip(chunk, logic.process_batch(chunk), strict=True):
            if isinstance(out, RejectedDocument):
                rejected.append(out)
            elif isinstance(out, RejectReason):
                rejected.append(RejectedDocument(doc, out))
            else:
                kept.append(out)
    return kept, rejected


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", required=True, help="JSONL(.gz) corpus, e.g. the 8k scale corpus")
    ap.add_argument("--limit", type=int, default=8000)
    ap.add_argument("--benchmarks", default="", help="decontamination benchmark glob")
    ap.add_argument("--repeat", type=int, default=3, help="best of N passes per stage")
    ap.add_argument("--batch-size", type=int, default=256)
    a = ap.parse_args()
    section: dict[str, Any] = {}
    if a.benchmarks:
        section = {"decontamination": {"benchmarks": sorted(glob.glob(a.benchmarks))}}
    cfg = Config.model_validate(section)
    docs = read_docs(a.docs, a.limit)
    cpu: dict[str, float] = {}
    counts: dict[str, list[int]] = {}
    all_rejected: list[Any] = []

    def stage(name: str, logic: Any, inp: list[Document]) -> list[Document]:
        logic.ready()
        s, (kept, rejected) = _best(lambda: _run_stage(logic, inp, a.batch_size), a.repeat)
        cpu[name] = round(s, 3)
        counts[name] = [len(inp), len(kept)]
        all_rejected.extend(rejected)
        return kept

    docs = stage("normalize", TextNormalizer(), docs)
    decontam = Decontaminator(cfg.decontamination).ready()

    def decontaminate() -> tuple[list[Document], list[Any]]:
        kept, rejected = [], []
        for chunk in _batches(docs, a.batch_size):
            for v in decontam.check_batch(chunk):
                (kept if v.rejection is None else rejected).append(
                    v.doc if v.rejection is None else RejectedDocument(v.doc, v.rejection)
                )
        return kept, rejected

    s, (kept, rejected) = _best(decontaminate, a.repeat)
    cpu["decontamination"], counts["decontamination"] = round(s, 3), [len(docs), len(kept)]
    all_rejected.extend(rejected)
    docs = stage("language", LanguageFilter(cfg.language), kept)
    docs = stage("quality", QualityFilter(cfg.quality), docs)
    docs = stage("prompt", TagPromptSignals(cfg.prompt).logic, docs)
    cpu["dedup_exact_key"], _ = _best(lambda: [next(_text_key(d, "")) for d in docs], a.repeat)
    near = cfg.dedup.near
    hasher = MinHasher(near.num_perm, near.ngram, near.seed)
    cpu["dedup_near_signature"], _ = _best(lambda: [hasher.signature(d.text) for d in docs], a.repeat)
    docs = stage("pii", PiiRedactor(cfg.pii), docs)
    docs = stage("toxicity", ToxicityTagger(cfg.toxicity), docs)
    holder = bias_holder(cfg.bias, cfg.toxicity)

    def tag(texts: list[str]) -> Callable[[], None]:
        def run() -> None:
            holder.tagger.clear_cache()
            for chunk in _batches(texts, cfg.bias.batch_size):
                holder.tag_many(chunk)

        return run

    cpu["bias"], _ = _best(tag([d.text or "" for d in docs]), a.repeat)
    rejected_texts = [r.doc.text or "" for r in all_rejected]
    cpu["bias_rejected"], _ = _best(tag(rejected_texts), a.repeat)
    counts["bias_rejected"] = [len(rejected_texts), 0]
    cpu = {k: round(v, 3) for k, v in cpu.items()}
    print(
        json.dumps(
            {"docs": a.limit, "cpu_s": cpu, "total_cpu_s": round(sum(cpu.values()), 3), "in_kept": counts}
        )
    )


if __name__ == "__main__":
    main()
