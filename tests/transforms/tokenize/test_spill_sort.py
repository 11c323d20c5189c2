"""A shard's rows sorted in bounded memory: the same order as an in-memory sort, spilling to disk."""

from __future__ import annotations

import os
import random
import tempfile

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq

from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import SequenceRow
from corpusforge.transforms.tokenize import spill_sort
from corpusforge.transforms.tokenize.order import sort_rows, train_row
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from corpusforge.transforms.tokenize.spill_sort import SortedRows, row_bytes
from tests.helpers import local_test_pipeline


def _train_rows(n: int, seed: int = 0):
    rnd = random.Random(seed)
    rows = [
        train_row(
            7,
            64,
            SequenceRow([rnd.randrange(1000) for _ in range(rnd.randrange(1, 40))], 0, f"d{i}", i % 3),
            np.uint16,
        )
        for i in range(n)
    ]
    rnd.shuffle(rows)
    return rows


def _identity(rows):
    return [(r.doc_ids, r.chunk_indices, r.ids.tolist()) for r in rows]


def test_a_shard_larger_than_the_buffer_spills_and_comes_out_in_the_in_memory_order():
    rows = _train_rows(500)
    budget = 20 * row_bytes(rows[0])  # a few rows a run: dozens of spill files
    ordered = SortedRows(rows, budget)
    got = list(ordered)
    assert ordered.spills >= 10
    assert _identity(got) == _identity(sort_rows(rows))


def test_a_shard_within_the_buffer_never_touches_the_disk_and_spill_files_are_removed(monkeypatch):
    rows = _train_rows(50)
    small = SortedRows(rows, 1 << 30)
    assert _identity(small) == _identity(sort_rows(rows)) and small.spills == 0
    made: list[str] = []
    real = tempfile.TemporaryDirectory

    def recording(*a, **k):
        d = real(*a, **k)
        made.append(d.name)
        return d

    monkeypatch.setattr(spill_sort.tempfile, "TemporaryDirectory", recording)
    assert len(list(SortedRows(rows, 1))) == 50
    assert made and not any(os.path.exists(d) for d in made)


def test_writers_with_a_tiny_sort_buffer_write_the_same_shards(tmp_path):
    rows = [(16, SequenceRow(list(range(d, d + 3 + d % 5)), 3 + d % 5, f"doc{d:03d}", 0)) for d in range(120)]

    def write(sub: str, mb_bytes: int | None):
        cfg = TokenizeConfig(buckets=[16], formats=["parquet", "megatron"], shards=2, shuffle_seed=1)
        step = WriteTrainerFormats(cfg, str(tmp_path / sub), 1000, cfg.shards)
        if mb_bytes is not None:
            step.sort_bytes = mb_bytes  # below the config's MB granularity: force many spills
        with local_test_pipeline() as p:
            _ = p | beam.Create(rows) | step
        out = tmp_path / sub
        files = sorted(f for f in out.glob("sequences_megatron/*") if f.name != "index.json")
        files += sorted(out.glob("sequences/bucket=16/*.parquet"))
        return {
            f.relative_to(out).as_posix(): (
                f.read_bytes() if f.suffix in (".bin", ".idx") else pq.read_table(f).to_pylist()
            )
            for f in files
        }

    assert write("tiny", 2000) == write("roomy", None)
