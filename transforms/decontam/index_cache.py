"""The benchmark index on disk: built once per machine, benchmark files and settings, then loaded.

Why: every SDK worker of every run built the same :class:`~.index.BenchmarkIndex` from the same
benchmark files before its first document (reading, hashing and sorting ~8 MB of test sets: ~0.9 s
of CPU per worker on the eight dev benchmarks, ~5 % of a whole 8k-document run on two workers).
Loading the finished arrays takes a few hundredths of that.

Never stale: the key (``transforms/derived_cache.py``) is a SHA-256 over the benchmark files'
*contents* (as read, decompressed), each source's name and fields, the settings that shape the
index (n, min_words, max_item_frequency), the source of the modules that derive it (this one,
``index.py``, ``text.py``: the hashing) and the runtime. A changed file, setting or hashing code is
a new key. A corrupt, truncated or foreign entry is rebuilt (with a warning), and
``CORPUSFORGE_CACHE_DIR=off`` builds every time, as before.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from apache_beam.io.filesystems import FileSystems

from corpusforge.transforms import derived_cache
from corpusforge.transforms.decontam import index as index_module
from corpusforge.transforms.decontam import text as text_module
from corpusforge.transforms.decontam.index import BenchmarkIndex, BenchmarkSource, IndexStats, Item

KIND = "decontam-benchmark-index-v1"
# Entries kept: one per benchmark set and settings in use on this machine (one config per corpus, a
# test suite's several sets), not per code version as for the other kinds; each is a few MB (the
# eight dev benchmarks: 19 MB). With the default 3, four sets used in turn rebuilt at every run.
KEEP_INDEXES = 12
_FORMAT = 1
_ARRAYS = ("item_benchmark", "filter", "ngrams", "ngram_items")


def index_key(sources: Sequence[BenchmarkSource], n: int, min_words: int, max_item_frequency: int) -> str:
    """The cache key of the index of ``sources`` with these settings (reads every file once)."""
    parts: list[str | bytes | Path] = [
        json.dumps([n, min_words, max_item_frequency, _FORMAT]),
        derived_cache.runtime_fingerprint(),
        unicodedata.unidata_version,
        Path(__file__),
        Path(index_module.__file__),
        Path(text_module.__file__),
    ]
    for src in sources:
        parts.append(json.dumps([src.name, list(src.fields) if src.fields is not None else None]))
        with FileSystems.open(src.path) as f:  # decompressed by suffix, as read_records reads it
            parts.append(f.read())
    return derived_cache.content_key(KIND, parts)


def cached_index(
    sources: Sequence[BenchmarkSource], n: int, min_words: int, max_item_frequency: int
) -> BenchmarkIndex:
    """:meth:`BenchmarkIndex.build` of ``sources``, from the disk cache when this machine built it
    before from the same contents and settings."""
    sources = list(sources)

    def build() -> BenchmarkIndex:
        return BenchmarkIndex.build(sources, n, min_words, max_item_frequency)

    if derived_cache.cache_dir() is None:
        return build()
    key = index_key(sources, n, min_words, max_item_frequency)
    return derived_cache.load_or_build(KIND, key, ".npz", build, save_index, load_index, keep=KEEP_INDEXES)


def save_index(index: BenchmarkIndex, path: Path) -> None:
    """Every array of ``index`` and its items (texts as one UTF-8 buffer with offsets) in one npz."""
    texts = [item.text.encode("utf-8", "surrogatepass") for item in index.items]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    lengths = sorted(index.whole)
    meta = {
        "format": _FORMAT,
        "n": index.n,
        "min_words": index.min_words,
        "max_item_frequency": index.max_item_frequency,
        "benchmarks": index.benchmarks,
        "filter_bits": index.filter_bits,
        "whole_lengths": lengths,
        "stats": vars(index.stats),
    }
    arrays = {name: getattr(index, name) for name in _ARRAYS}
    for length in lengths:
        arrays[f"whole_hashes_{length}"], arrays[f"whole_items_{length}"] = index.whole[length]
    with open(path, "wb") as f:
        np.savez(
            f,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            item_pos=np.asarray([item.index for item in index.items], dtype=np.int64),
            item_text=np.frombuffer(b"".join(texts), dtype=np.uint8),
            item_offsets=offsets,
            **arrays,
        )


def load_index(path: Path) -> BenchmarkIndex:
    """The index :func:`save_index` wrote; raises on anything else (the caller then rebuilds)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a benchmark index of format {_FORMAT}")
        index = BenchmarkIndex(meta["n"], meta["min_words"], meta["max_item_frequency"])
        index.benchmarks = list(meta["benchmarks"])
        index.filter_bits = int(meta["filter_bits"])
        index.stats = IndexStats(**meta["stats"])
        for name in _ARRAYS:
            setattr(index, name, z[name])
        index.whole = {
            int(length): (z[f"whole_hashes_{length}"], z[f"whole_items_{length}"])
            for length in meta["whole_lengths"]
        }
        pos = z["item_pos"].tolist()
        blob = z["item_text"].tobytes()
        offsets = z["item_offsets"].tolist()
    names = [index.benchmarks[b] for b in index.item_benchmark.tolist()]
    if not len(pos) == len(names) == len(offsets) - 1 or offsets[-1] != len(blob):
        raise ValueError(f"{path}: the items do not agree with their arrays")
    index.items = [
        Item(name, p, blob[a:b].decode("utf-8", "surrogatepass"))
        for name, p, a, b in zip(names, pos, offsets[:-1], offsets[1:], strict=True)
    ]
    return index
