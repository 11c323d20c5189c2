#!/usr/bin/env python3
"""Peak memory of writing one large shuffled shard: the whole shard sorted in memory, or spilled.

    python benchmarks/bench_sort_memory.py --rows 100000 --tokens 1024 [--buffer-mb 64]

Each mode runs in its own child process (its peak RSS is its own, ``ru_maxrss``), writing one
Megatron shard from rows that arrive one at a time in no order, as a runner that pages a group's
values in (Dataflow, state-backed iterables) delivers them:

- ``in-memory``: what ``GroupShards`` did before: the shard's rows gathered in one list and sorted
  (:func:`sort_rows`), then written;
- ``spilled``: today's writer: :func:`sorted_rows` holds at most ``--buffer-mb`` of rows, spills
  sorted runs to temporary files and merges them.

Both write the same bytes (checked: the ``.bin`` digests must agree). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def rows(n: int, tokens: int):
    from corpusforge.schemas.records import SequenceRow
    from corpusforge.transforms.tokenize.order import train_row

    rng = np.random.default_rng(0)
    for i in range(n):
        ids = rng.integers(0, 50_000, size=tokens).tolist()
        yield train_row(1, tokens, SequenceRow(ids, tokens, f"doc-{i:08d}", 0), np.dtype(np.uint16))


def child(mode: str, n: int, tokens: int, buffer_mb: int) -> None:
    from corpusforge.transforms.tokenize.megatron import _WriteShardFn
    from corpusforge.transforms.tokenize.order import sort_rows

    out = Path(tempfile.mkdtemp(prefix="bench-sort-"))
    fn = _WriteShardFn(str(out), np.dtype(np.uint16), buffer_mb << 20)
    fn.setup()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0 = time.process_time()
    shard = sort_rows(rows(n, tokens)) if mode == "in-memory" else rows(n, tokens)
    list(fn.process((0, shard)))
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = hashlib.blake2b((out / "shard-00000.bin").read_bytes(), digest_size=8).hexdigest()
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak / 1024),
                "before_mb": round(base / 1024),
                "cpu_s": round(cpu, 1),
                "bin": digest,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--child", choices=["in-memory", "spilled"])
    a = ap.parse_args()
    if a.child:
        child(a.child, a.rows, a.tokens, a.buffer_mb)
        return
    out = {
        "rows": a.rows,
        "tokens_per_row": a.tokens,
        "ids_mb": round(a.rows * a.tokens * 2 / 2**20),
        "buffer_mb": a.buffer_mb,
    }
    for mode in ("in-memory", "spilled"):
        args = [sys.executable, __file__, "--child", mode, "--rows", str(a.rows), "--tokens", str(a.tokens)]
        res = subprocess.run(
            [*args, "--buffer-mb", str(a.buffer_mb)], capture_output=True, text=True, check=True
        )
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    out["same_bytes"] = out["in-memory"]["bin"] == out["spilled"]["bin"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
