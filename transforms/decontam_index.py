"""Benchmark test sets: reading them (JSONL, JSON, Parquet, CSV) and indexing their word n-grams.

The index is built once per worker (in ``setup``), never pickled into the graph: only the config
(paths, fields, thresholds) travels. It holds

* every word n-gram of every benchmark text as a sorted ``uint64`` array of hashes, with the global
  item number owning each hash in a parallel ``int32`` array (about 12 bytes per n-gram);
* for texts shorter than n words but with at least ``min_words`` words, the hash of the whole word
  sequence, per length, matched as a run of words inside a document;
* nothing for n-grams found in more than ``max_item_frequency`` distinct texts (or whole short texts
  found in more than that many records): answer templates and shared boilerplate would otherwise
  flag pages on their own, while a passage repeated verbatim for several questions counts once;
* nothing for n-grams made only of numbers (test vectors, tables): they say nothing of a benchmark.

Which text of a record counts: by default every string value, including strings inside lists and
nested objects (question, passage, choices, ...), so benchmark files never seen before work without
naming fields. Each string is indexed on its own (n-grams never span two fields).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from corpusforge.transforms.decontam_text import gram_hashes, gram_prefix, normalize_for_matching, word_hashes

FORMAT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
                   ".pq": "parquet", ".csv": "csv"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst")
FILTER_BITS = 25  # 4 MiB bitmap: under 5% of slots set for a million n-grams


@dataclass(frozen=True)
class BenchmarkSource:
    """One benchmark file: its name (in reasons and counters), path, and fields (None: all strings)."""

    name: str
    path: str
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Item:
    """One indexed benchmark text (a field value), kept for ``detail`` and attribution."""

    benchmark: str
    index: int  # position of its record in the benchmark file
    text: str


@dataclass
class IndexStats:
    items: int = 0
    texts: int = 0
    texts_ngram: int = 0  # at least n words: indexed as n-grams
    texts_whole: int = 0  # min_words..n-1 words: matched whole
    texts_ignored_short: int = 0  # fewer than min_words words
    ngrams: int = 0
    ngrams_boilerplate: int = 0
    whole_boilerplate: int = 0
    items_by_benchmark: dict[str, int] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        out = {f"index:{k}": v for k, v in vars(self).items() if isinstance(v, int)}
        out.update({f"index:items:{b}": n for b, n in self.items_by_benchmark.items()})
        return out


def benchmark_name(path: str) -> str:
    """The file's stem: ``/x/gsm8k.jsonl.gz`` is ``gsm8k``."""
    base = posixpath.basename(path)
    for suffix in COMPRESSION_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    stem, ext = posixpath.splitext(base)
    return (stem if ext.lower() in FORMAT_SUFFIXES else base).lower()


def resolve_sources(specs: Iterable[Any]) -> list[BenchmarkSource]:
    """Expand globs and entries (``{name, path, fields}``; ``path`` may be a glob) into files."""
    out: list[BenchmarkSource] = []
    for spec in specs:
        if isinstance(spec, str):
            pattern, name, fields = spec, None, None
        else:
            get = spec.get if isinstance(spec, dict) else lambda k, s=spec: getattr(s, k)
            pattern, name, fields = get("path"), get("name"), get("fields")
        matched = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        if not matched:
            raise FileNotFoundError(f"decontamination.benchmarks: no file matches {pattern!r}")
        for path in matched:
            out.append(BenchmarkSource(name or benchmark_name(path), path, tuple(fields) if fields else None))
    return out


def _format_of(path: str) -> str:
    base = path.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    ext = posixpath.splitext(base)[1]
    if ext not in FORMAT_SUFFIXES:
        raise ValueError(f"decontamination.benchmarks: unknown format of {path} (jsonl, json, parquet, csv)")
    return FORMAT_SUFFIXES[ext]


def read_records(path: str) -> Iterator[Any]:
    """Records of a benchmark file: JSONL lines, a JSON list (or the first list in a JSON object),
    Parquet rows, CSV rows (the header names the fields)."""
    fmt = _format_of(path)
    with FileSystems.open(path) as f:  # decompresses by suffix
        raw = f.read()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(io.BytesIO(raw)).to_pylist()
        return
    text = raw.decode("utf-8-sig")
    if fmt == "csv":
        yield from csv.DictReader(io.StringIO(text))
    elif fmt == "jsonl":
        for line in text.split("\n"):  # not splitlines: JSON strings may hold U+2028
            if line.strip():
                yield json.loads(line)
    else:
        data = json.loads(text)
        if isinstance(data, dict):  # {"data": [...]} or {"id": record, ...}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if lists else list(data.values())
        yield from data if isinstance(data, list) else [data]


def strings_of(value: Any) -> Iterator[str]:
    """Every string inside ``value``: itself, or those in its lists and nested objects, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_of(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings_of(v)
    elif isinstance(value, np.ndarray):
        yield from strings_of(value.tolist())


def _field(record: Any, path: str) -> Any:
    """``record[path]``; a dotted path descends into nested objects (``question.stem``)."""
    if isinstance(record, dict) and path in record:
        return record[path]
    node = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def record_texts(record: Any, fields: tuple[str, ...] | None) -> list[str]:
    """The texts of a record to index: every string in it, or every string under ``fields``."""
    if fields is None or not isinstance(record, dict):
        return list(strings_of(record))
    return [s for name in fields for s in strings_of(_field(record, name))]


class BenchmarkIndex:
    """Hashed n-grams and short whole texts of a set of benchmarks; see the module docstring."""

    def __init__(self, n: int, min_words: int, max_item_frequency: int) -> None:
        self.n = n
        self.min_words = min_words
        self.max_item_frequency = max_item_frequency
        self.items: list[Item] = []  # indexed texts
        self.benchmarks: list[str] = []
        self.item_benchmark = np.zeros(0, dtype=np.int32)
        self.filter = np.zeros(0, dtype=np.uint8)  # bitmap over the top FILTER_BITS of every hash
        self.ngrams = np.zeros(0, dtype=np.uint64)
        self.ngram_items = np.zeros(0, dtype=np.int32)
        self.whole: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # length -> (sorted hashes, items)
        self.stats = IndexStats()

    @classmethod
    def build(cls, sources: Iterable[BenchmarkSource], n: int, min_words: int,
              max_item_frequency: int) -> BenchmarkIndex:
        index = cls(n, min_words, max_item_frequency)
        grams: list[np.ndarray] = []
        gram_items: list[np.ndarray] = []
        whole: dict[int, list[tuple[int, int]]] = {}
        bench_ids: dict[str, int] = {}
        item_bench: list[int] = []
        # text id -> what the boilerplate rule counts: for long texts the distinct text (a passage
        # repeated verbatim in many records, one per question, is still one text), for short texts
        # matched whole the record (a stock answer repeated over many records is boilerplate)
        count_key: list[int] = []
        first_with_hash: dict[int, int] = {}
        stats = index.stats
        for src in sources:
            b = bench_ids.setdefault(src.name, len(bench_ids))
            for pos, record in enumerate(read_records(src.path)):
                texts = [t for t in record_texts(record, src.fields) if t.strip()]
                if not texts:
                    continue
                record_no = stats.items
                stats.items += 1
                stats.items_by_benchmark[src.name] = stats.items_by_benchmark.get(src.name, 0) + 1
                for text in texts:
                    stats.texts += 1
                    if len(text.split()) < min_words:  # never more words once punctuation is gone
                        stats.texts_ignored_short += 1
                        continue
                    words = word_hashes(text)
                    item = len(index.items)
                    if words.size >= min_words:
                        prefix = gram_prefix(words)
                        index.items.append(Item(src.name, pos, text))
                        item_bench.append(b)
                        if words.size >= n:
                            whole_hash = int(gram_hashes(prefix, words.size)[0])
                            count_key.append(first_with_hash.setdefault(whole_hash, item))
                        else:
                            count_key.append(record_no)
                    if words.size >= n:
                        stats.texts_ngram += 1
                        g = np.unique(gram_hashes(prefix, n)[_informative(text, n)])
                        grams.append(g)
                        gram_items.append(np.full(g.size, item, dtype=np.int32))
                    elif words.size >= min_words and _informative(text, words.size).any():
                        stats.texts_whole += 1
                        h = int(gram_hashes(prefix, words.size)[0])
                        whole.setdefault(int(words.size), []).append((h, item))
                    else:
                        stats.texts_ignored_short += 1
        index.benchmarks = sorted(bench_ids, key=bench_ids.__getitem__)
        index.item_benchmark = np.asarray(item_bench, dtype=np.int32)
        records = np.asarray(count_key, dtype=np.int32)
        if grams:
            index.ngrams, index.ngram_items, dropped = _frequent_dropped(
                np.concatenate(grams), np.concatenate(gram_items), records, max_item_frequency)
            stats.ngrams, stats.ngrams_boilerplate = int(index.ngrams.size), dropped
        for length, pairs in sorted(whole.items()):
            arr = np.asarray(pairs, dtype=np.uint64)
            hashes, items, dropped = _frequent_dropped(
                arr[:, 0], arr[:, 1].astype(np.int32), records, max_item_frequency)
            stats.whole_boilerplate += dropped
            if hashes.size:
                index.whole[length] = (hashes, items)
        index.filter = np.zeros(1 << (FILTER_BITS - 3), dtype=np.uint8)
        for table in (index.ngrams, *(h for h, _ in index.whole.values())):
            slot = table >> np.uint64(64 - FILTER_BITS)
            np.bitwise_or.at(index.filter, slot >> np.uint64(3),
                             np.left_shift(1, (slot & np.uint64(7)).astype(np.uint8)).astype(np.uint8))
        return index

    @property
    def nbytes(self) -> int:
        """Memory of the hash arrays (the items' texts for ``detail`` come on top)."""
        return int(self.ngrams.nbytes + self.ngram_items.nbytes + self.filter.nbytes
                   + sum(h.nbytes + i.nbytes for h, i in self.whole.values()))

    def lookup(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matches in a document's word hashes: (start word, length in words, item) per hit."""
        prefix = gram_prefix(words)
        starts, lengths, items = [], [], []
        for length, (table, owners) in ((self.n, (self.ngrams, self.ngram_items)), *self.whole.items()):
            if words.size < length or table.size == 0:
                continue
            g = gram_hashes(prefix, length)
            # the bitmap rules out almost every gram of a clean page before the binary search
            slot = g >> np.uint64(64 - FILTER_BITS)
            maybe = np.flatnonzero((self.filter[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1)
            if maybe.size == 0:
                continue
            pos = np.searchsorted(table, g[maybe])
            np.minimum(pos, table.size - 1, out=pos)
            found = table[pos] == g[maybe]
            hit, pos = maybe[found], pos[found]
            if hit.size:
                starts.append(hit)
                lengths.append(np.full(hit.size, length, dtype=np.int64))
                items.append(owners[pos])
        if not starts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty.astype(np.int32)
        return np.concatenate(starts), np.concatenate(lengths), np.concatenate(items)


def _informative(text: str, length: int) -> np.ndarray:
    """Per gram of ``length`` words: False when all its words are numbers. Runs such as
    ``1 2 3 4 5 6 7 8 9 10 11 12 13`` (test cases, tables) say nothing about a benchmark."""
    alpha = np.fromiter((not w.isdigit() for w in normalize_for_matching(text).split()), dtype=np.int32)
    if alpha.size < length:
        return np.zeros(0, dtype=bool)
    c = np.concatenate(([0], np.cumsum(alpha)))
    return (c[length:] - c[:-length]) > 0


def _frequent_dropped(hashes: np.ndarray, owners: np.ndarray, records: np.ndarray,
                      limit: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Unique sorted hashes with their first owning text, minus those found under more than
    ``limit`` distinct count keys (texts or records, see ``build``); also returns how many distinct
    hashes were dropped."""
    items = records[owners]
    order = np.lexsort((owners, items, hashes))
    hashes, items, owners = hashes[order], items[order], owners[order]
    # distinct (hash, item) pairs, then items per hash
    pair_new = np.ones(hashes.size, dtype=bool)
    pair_new[1:] = (hashes[1:] != hashes[:-1]) | (items[1:] != items[:-1])
    hashes, items, owners = hashes[pair_new], items[pair_new], owners[pair_new]
    first = np.ones(hashes.size, dtype=bool)
    first[1:] = hashes[1:] != hashes[:-1]
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, hashes.size))
    keep = counts <= limit
    sel = starts[keep]
    return hashes[sel], owners[sel], int((~keep).sum())
