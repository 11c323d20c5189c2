#!/usr/bin/env python3
"""Sequence writers' throughput per core: Parquet (sequences/), Megatron .bin/.idx, MDS shards.

    python benchmarks/bench_writers.py --docs CORPUS.jsonl.gz [--limit 2000]

The documents are tokenized and cut into bucketed rows once, outside the clock; then each writer
turns the same rows into one shard on local disk, as one worker does with the shard it holds:

- ``parquet``: the ``ParquetRowSink`` of ``WriteSequences`` (row dicts, zstd);
- ``megatron``: the shuffle key and compact row (:func:`train_row`), the shard's sort, the
  ``.bin``, ``.idx`` and provenance sidecar of ``WriteMegatron``;
- ``mds``: the same key, row and sort, then mosaicml-streaming's ``MDSWriter`` (skipped when the
  package is not installed: it is the optional ``mds`` extra).

Figures are CPU seconds (``time.process_time``, one process), so they are per core on a shared
machine; MB/s is of the documents' text, as the pipeline benchmarks count it. Prints one JSON line
(read by benchmarks/run_bench.py). A benchmark reports; it never fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from corpus import read_texts  # benchmarks/corpus.py (this script's folder is on sys.path)

from corpusforge.schemas import arrow
from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import sequence_row
from corpusforge.transforms.tokenize.bucket import split_document
from corpusforge.transforms.tokenize.loading import inspect_tokenizer
from corpusforge.transforms.tokenize.megatron import _WriteShardFn, token_dtype
from corpusforge.transforms.tokenize.order import train_row
from corpusforge.transforms.tokenize.sequences_sink import ParquetRowSink
from corpusforge.transforms.tokenize.spill_sort import sorted_rows
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer


def best_cpu(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=2000)
    a = ap.parse_args()
    texts = read_texts(a.docs, a.limit)
    text_mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    cfg = TokenizeConfig()
    info = inspect_tokenizer(cfg.tokenizer, cfg.add_bos, cfg.bos, cfg.add_eos, cfg.eos)
    tok = DocumentTokenizer(cfg.tokenizer, info.bos_id, info.eos_id, word_cache=cfg.word_cache)
    rows = [kv for i, ids in enumerate(tok.encode(texts)) for kv in split_document(f"d{i}", ids, cfg.buckets)]
    tokens = sum(r.length for _, r in rows)
    dtype = token_dtype(info.vocab_size)
    schema = arrow.sequence_schema(info.vocab_size, False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-writers-"))

    def parquet() -> None:
        sink = ParquetRowSink(schema)
        with open(tmp / "part.parquet", "wb") as fh:
            sink.open(fh)
            for _, r in rows:
                sink.write(sequence_row(r))
            sink.flush()

    def shard_rows():
        # a shard as its writer receives it (GroupShards' group, in no order): the writers sort
        return [train_row(0, b, r, dtype) for b, r in rows]

    def megatron() -> None:
        fn = _WriteShardFn(str(tmp / "megatron"), dtype)
        fn.setup()
        list(fn.process((0, shard_rows())))

    writers = {"parquet": parquet, "megatron": megatron}
    if importlib.util.find_spec("streaming") is not None:
        import shutil

        from corpusforge.transforms.tokenize.mds import write_partition

        def mds() -> None:
            shutil.rmtree(tmp / "mds", ignore_errors=True)
            write_partition(str(tmp / "mds"), sorted_rows(shard_rows()), dtype)

        writers["mds"] = mds
    out: dict = {
        "docs": len(texts),
        "rows": len(rows),
        "tokens": tokens,
        "text_mb": round(text_mb, 3),
        "dtype": np.dtype(dtype).name,
    }
    for name, fn in writers.items():
        cpu = best_cpu(fn)
        out[name] = {
            "cpu_s": round(cpu, 4),
            "text_mb_per_s_per_core": round(text_mb / cpu, 1),
            "tokens_per_s_per_core": round(tokens / cpu),
        }
    for name in writers:
        if name != "parquet":
            out[name]["vs_parquet"] = round(out["parquet"]["cpu_s"] / out[name]["cpu_s"], 2)
    if "mds" not in writers:
        out["mds"] = "skipped: mosaicml-streaming not installed (pip install 'corpusforge[mds]')"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
