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

from corpusforge.transforms.decontam.text import (
    _grams,
    gram_hashes,
    gram_hashes_at,
    gram_prefix,
    word_hashes_many,
)

FORMAT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst")
# The prefilter bitmap has about 32 bits per indexed hash (under 4% of its bits set, so ~96% of a
# clean page's grams never reach the binary search), between 1 MiB and 32 MiB.
MIN_FILTER_BITS, MAX_FILTER_BITS = 23, 28


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
            # names are lower case, like the reasons they end up in (contamination:<name>)
            out.append(
                BenchmarkSource(
                    (name or benchmark_name(path)).lower(), path, tuple(fields) if fields else None
                )
            )
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


@dataclass
class _Accumulator:
    """What index building collects over the text batches."""

    grams: list[np.ndarray] = field(default_factory=list)
    gram_items: list[np.ndarray] = field(default_factory=list)
    whole_len: list[np.ndarray] = field(default_factory=list)
    whole_hash: list[np.ndarray] = field(default_factory=list)
    whole_item: list[np.ndarray] = field(default_factory=list)
    item_bench: list[int] = field(default_factory=list)
    count_key: list[int] = field(default_factory=list)
    first_with_hash: dict[int, int] = field(default_factory=dict)


class BenchmarkIndex:
    """Hashed n-grams and short whole texts of a set of benchmarks; see the module docstring."""

    def __init__(self, n: int, min_words: int, max_item_frequency: int) -> None:
        self.n = n
        self.min_words = min_words
        self.max_item_frequency = max_item_frequency
        self.items: list[Item] = []  # indexed texts
        self.benchmarks: list[str] = []
        self.item_benchmark = np.zeros(0, dtype=np.int32)
        self.filter_bits = MIN_FILTER_BITS
        self.filter = np.zeros(0, dtype=np.uint8)  # bitmap over the top filter_bits of every hash
        self.ngrams = np.zeros(0, dtype=np.uint64)
        self.ngram_items = np.zeros(0, dtype=np.int32)
        self.whole: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # length -> (sorted hashes, items)
        self.stats = IndexStats()
        self._compiled_tables: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, int]] | None = None

    @classmethod
    def build(
        cls,
        sources: Iterable[BenchmarkSource],
        n: int,
        min_words: int,
        max_item_frequency: int,
        chunk: int = 4096,
    ) -> BenchmarkIndex:
        index = cls(n, min_words, max_item_frequency)
        stats = index.stats
        bench_ids: dict[str, int] = {}
        pending: list[tuple[int, int, int, str]] = []  # (benchmark, record position, record no, text)
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
                    else:
                        pending.append((b, pos, record_no, text))
        index.benchmarks = sorted(bench_ids, key=bench_ids.__getitem__)
        acc = _Accumulator()
        for start in range(0, len(pending), chunk):
            index._add_texts(pending[start : start + chunk], acc)
        index.item_benchmark = np.asarray(acc.item_bench, dtype=np.int32)
        keys = np.asarray(acc.count_key, dtype=np.int32)
        if acc.grams:
            index.ngrams, index.ngram_items, dropped = _frequent_dropped(
                np.concatenate(acc.grams), np.concatenate(acc.gram_items), keys, max_item_frequency
            )
            stats.ngrams, stats.ngrams_boilerplate = int(index.ngrams.size), dropped
        whole_len = np.concatenate(acc.whole_len) if acc.whole_len else np.zeros(0, dtype=np.int64)
        whole_hash = np.concatenate(acc.whole_hash) if acc.whole_hash else np.zeros(0, dtype=np.uint64)
        whole_item = np.concatenate(acc.whole_item) if acc.whole_item else np.zeros(0, dtype=np.int32)
        for length in np.unique(whole_len).tolist():
            sel = whole_len == length
            hashes, items, dropped = _frequent_dropped(
                whole_hash[sel], whole_item[sel], keys, max_item_frequency
            )
            stats.whole_boilerplate += dropped
            if hashes.size:
                index.whole[int(length)] = (hashes, items)
        tables = (index.ngrams, *(h for h, _ in index.whole.values()))
        total = sum(t.size for t in tables)
        index.filter_bits = min(
            MAX_FILTER_BITS, max(MIN_FILTER_BITS, int(np.ceil(np.log2(max(1, total) * 32))))
        )
        index.filter = _bitmap(np.concatenate(tables), index.filter_bits)
        return index

    def _add_texts(self, batch: list[tuple[int, int, int, str]], acc: _Accumulator) -> None:
        """Hash a batch of texts in one pass and collect their n-grams and whole-text hashes."""
        n, stats = self.n, self.stats
        wb = word_hashes_many([t for *_, t in batch])
        prefix = gram_prefix(wb.hashes)
        # each text with enough words becomes an item (its id is what the hash arrays point to)
        is_item = wb.n_words >= self.min_words
        item_of_text = np.full(len(batch), -1, dtype=np.int32)
        item_of_text[is_item] = np.arange(
            len(self.items), len(self.items) + int(is_item.sum()), dtype=np.int32
        )
        long = wb.n_words >= n
        whole_of_text = gram_hashes_at(prefix, wb.first_word, wb.n_words)
        for k in np.flatnonzero(is_item).tolist():
            b, pos, record_no, text = batch[k]
            self.items.append(Item(self.benchmarks[b], pos, text))
            acc.item_bench.append(b)
            # the boilerplate rule counts distinct long texts, and records for short ones
            acc.count_key.append(
                acc.first_with_hash.setdefault(int(whole_of_text[k]), int(item_of_text[k]))
                if long[k]
                else record_no
            )
        numeric_run = np.concatenate(([0], np.cumsum(wb.numeric)))
        # n-grams: those inside one text, and not made only of numbers
        g = gram_hashes(prefix, n)
        if g.size:
            i = np.arange(g.size)
            ok = (wb.text_of_word[i] == wb.text_of_word[i + n - 1]) & (
                (numeric_run[i + n] - numeric_run[i]) < n
            )
            acc.grams.append(g[ok])
            acc.gram_items.append(item_of_text[wb.text_of_word[i[ok]]])
        stats.texts_ngram += int(long.sum())
        # shorter texts: matched whole, unless they are only numbers
        short = is_item & ~long
        first = wb.first_word[short]
        lengths = wb.n_words[short]
        informative = (numeric_run[first + lengths] - numeric_run[first]) < lengths
        stats.texts_whole += int(informative.sum())
        stats.texts_ignored_short += int((~is_item).sum() + (~informative).sum())
        acc.whole_len.append(lengths[informative])
        acc.whole_hash.append(whole_of_text[short][informative])
        acc.whole_item.append(item_of_text[short][informative])

    @property
    def nbytes(self) -> int:
        """Memory of the hash arrays (the items' texts for ``detail`` come on top)."""
        return int(
            self.ngrams.nbytes
            + self.ngram_items.nbytes
            + self.filter.nbytes
            + sum(h.nbytes + i.nbytes for h, i in self.whole.values())
        )

    def lookup(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matches in a document's word hashes: (start word, length in words, item) per hit."""
        prefix = gram_prefix(words)
        starts, lengths, items = [], [], []
        for length, (table, owners) in ((self.n, (self.ngrams, self.ngram_items)), *self.whole.items()):
            if words.size < length or table.size == 0:
                continue
            g = gram_hashes(prefix, length)
            # the bitmap rules out almost every gram of a clean page before the binary search
            slot = g >> np.uint64(64 - self.filter_bits)
            maybe = np.flatnonzero(
                (self.filter[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1
            )
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

    def _tables_per_length(self) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, int]]:
        """(length, hashes, owners, bitmap, bits) per table in :meth:`lookup`'s order, for
        ``_grams.lookup``. Each table gets its own bitmap (about 32 bits per hash, as the shared one):
        the short whole texts' few thousand hashes then fit a few KiB that stay in cache, where
        probing the shared bitmap (MiBs, sized for the n-grams) at every start for every length
        missed the cache; the n-grams keep the shared one. A bitmap only rules grams out; the binary
        search decides, as in lookup."""
        out = [
            (
                self.n,
                np.ascontiguousarray(self.ngrams),
                np.ascontiguousarray(self.ngram_items, dtype=np.int32),
                self.filter,
                self.filter_bits,
            )
        ]  # the shared bitmap: sized for the n-grams already
        for length, (hashes, owners) in self.whole.items():
            bits = min(MAX_FILTER_BITS, max(13, int(np.ceil(np.log2(max(1, hashes.size) * 32)))))
            bitmap = _bitmap(hashes, bits)
            out.append(
                (
                    length,
                    np.ascontiguousarray(hashes),
                    np.ascontiguousarray(owners, dtype=np.int32),
                    bitmap,
                    bits,
                )
            )
        return out

    def lookup_docs(
        self, words: np.ndarray, n_words: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lookup` on each document of a batch (``words`` concatenated, ``n_words`` per
        document): (document, start word in it, length, item) per hit, by document, then in
        :meth:`lookup`'s order. Compiled where ``_grams`` was built (one loop per document and gram
        length, the bitmap probed as the gram hash rolls on); else :meth:`lookup` per document."""
        if _grams is not None:
            if self._compiled_tables is None:
                self._compiled_tables = self._tables_per_length()
            parts = _grams.lookup(
                np.ascontiguousarray(words, dtype=np.uint64),
                np.ascontiguousarray(n_words, dtype=np.int64),
                self._compiled_tables,
            )
            return tuple(np.frombuffer(p, dtype=np.int64) for p in parts)  # type: ignore[return-value]
        out: list[list[np.ndarray]] = [[], [], [], []]
        first = 0
        for d, m in enumerate(np.asarray(n_words).tolist()):
            starts, lengths, items = self.lookup(words[first : first + m])
            first += m
            if starts.size:
                for part, values in zip(out, (np.full(starts.size, d), starts, lengths, items), strict=True):
                    part.append(values.astype(np.int64))
        empty = np.zeros(0, dtype=np.int64)
        return tuple(np.concatenate(p) if p else empty for p in out)  # type: ignore[return-value]


def _bitmap(hashes: np.ndarray, bits: int) -> np.ndarray:
    """A bitmap of ``2**bits`` bits with the bit of each hash's top ``bits`` bits set."""
    bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
    slot = hashes >> np.uint64(64 - bits)
    np.bitwise_or.at(
        bitmap,
        slot >> np.uint64(3),
        np.left_shift(1, (slot & np.uint64(7)).astype(np.uint8)).astype(np.uint8),
    )
    return bitmap


def _frequent_dropped(
    hashes: np.ndarray, owners: np.ndarray, records: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, int]:
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
