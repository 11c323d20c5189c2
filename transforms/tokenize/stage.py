"""Stages ``tokenize`` and ``bucket``: kept documents into token ids, grouped into training rows.

:class:`DocumentTokenizer` is the pure logic (a batch of texts in, token ids with BOS/EOS out).
:class:`Tokenize` is the composite transform the pipeline uses after the last filtering stage:

    docs, tokens = docs | "tokenize" >> Tokenize(cfg.tokenize)
    sequences = tokens | "bucket" >> Bucket(cfg.tokenize)

``docs`` are the same documents with ``n_tokens`` set (the tokens of the document's rows, BOS/EOS
included, so that the sum over kept documents equals the tokens in ``sequences/``); ``sequences``
are ``(bucket, SequenceRow | PackedRow)`` pairs for :class:`WriteSequences`.

In the pipeline the two stages are applied one after the other (``Tokenize`` then ``Bucket``, so
each is a named step of the graph); :class:`TokenizeAndBucket` chains them for tests and tools.

The tokenizer is inspected once on the driver (the output schema depends on the vocabulary size, and
a missing EOS should fail before any worker starts), then loaded again once per worker in ``setup``;
it is never pickled with the graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam import pvalue
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.value_provider import StaticValueProvider

from corpusforge.schemas import arrow
from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import Document, PackedRow, SequenceRow, sequence_row
from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.tokenize.bucket import Packer, bucket_for, padding, split_document
from corpusforge.transforms.tokenize.control import COUNTER_PREFIX, ControlTokens, build_control
from corpusforge.transforms.tokenize.loading import (
    TokenizerInfo,
    inspect_tokenizer,
    library_encoder,
    load_tokenizer,
)
from corpusforge.transforms.tokenize.word_cache import word_cache_encoder

TOKENS_TAG = "tokens"


class DocumentTokenizer:
    """Batched encoding with the configured BOS/EOS around every document.

    Special tokens of the tokenizer's own post-processor are not used (``add_special_tokens=False``):
    BOS/EOS are exactly what the config says, whatever template the tokenizer.json carries.
    """

    name = "tokenize"

    def __init__(self, spec: str | None, bos_id: int | None, eos_id: int | None, word_cache: bool = True) -> None:
        self.spec = spec
        self.prefix = [bos_id] if bos_id is not None else []
        self.suffix = [eos_id] if eos_id is not None else []
        self.word_cache = word_cache
        self._tok: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # the tokenizer is rebuilt by setup() on each worker, never shipped with the graph
        dropped = ("_tok", "_encode", "_cached")
        return {k: v for k, v in self.__dict__.items() if k not in dropped} | {"_tok": None}

    def setup(self) -> None:
        self._tok = load_tokenizer(self.spec)
        # the library's ids, 2-4x faster for byte-level BPE (see transforms/word_cache.py)
        self._cached = word_cache_encoder(self._tok) if self.word_cache else None
        if self._cached is not None:
            self._encode = self._cached.encode_batch
        else:
            self._encode = library_encoder(self._tok)

    @property
    def uses_word_cache(self) -> bool:
        if self._tok is None:
            self.setup()
        return self._cached is not None

    @property
    def library_docs(self) -> int:
        """Documents the word cache handed to the library so far (0 without the cache)."""
        return self._cached.library_docs if self._tok is not None and self._cached is not None else 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self._tok is None:
            self.setup()
        all_ids = self._encode(list(texts))
        prefix, suffix = self.prefix, self.suffix
        if not prefix and not suffix:
            return all_ids
        return [prefix + ids + suffix for ids in all_ids]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with the special tokens left out (for checks and tests)."""
        if self._tok is None:
            self.setup()
        return self._tok.decode(list(ids), skip_special_tokens=True)


class _TokenizeFn(beam.DoFn):
    def __init__(self, logic: DocumentTokenizer, control: ControlTokens | None = None) -> None:
        self.logic = logic
        self.control = control  # control tokens go right after BOS (transforms/tokenize/control.py)

    def setup(self) -> None:
        self.logic.setup()
        if self.control is not None:
            self.control.setup()
        self.counters = StageCounters(self.logic.name)

    def process(self, batch: Sequence[Document]) -> Iterable[Any]:
        before = self.logic.library_docs
        all_ids = self.logic.encode([d.text for d in batch])
        counters = self.counters
        if self.logic.library_docs > before:  # documents the word cache could not take
            counters.inc("word_cache_fallback", self.logic.library_docs - before)
        total = 0
        for doc, ids in zip(batch, all_ids, strict=True):
            counters.saw(doc)
            if self.control is not None:
                ids, tokens = self.control.insert(doc, ids, len(self.logic.prefix))
                for token in tokens:
                    counters.inc(COUNTER_PREFIX + token)
            out = dataclasses.replace(doc, n_tokens=len(ids))
            counters.kept(out)
            total += len(ids)
            yield out
            yield pvalue.TaggedOutput(TOKENS_TAG, (doc.id, ids))
        counters.inc("tokens", total)


class _BucketCounters(StageCounters):
    """Per-bucket rows, tokens and the padding a fixed-length batch of that bucket would waste."""

    def row(self, bucket: int, length: int) -> None:
        self.inc(f"rows:bucket={bucket}")
        self.inc(f"tokens:bucket={bucket}", length)
        self.inc(f"padding:bucket={bucket}", padding(bucket, length))


class _SplitFn(beam.DoFn):
    def __init__(self, bounds: Sequence[int]) -> None:
        self.bounds = list(bounds)

    def setup(self) -> None:
        self.counters = _BucketCounters("bucket")

    def process(self, element: tuple[str, list[int]]) -> Iterable[tuple[int, SequenceRow]]:
        doc_id, ids = element
        rows = split_document(doc_id, ids, self.bounds)
        self.counters.inc("in")
        self.counters.inc("kept")
        if len(rows) > 1:
            self.counters.inc("docs_split")
        for bucket, row in rows:
            self.counters.row(bucket, row.length)
        yield from rows


# Documents of roughly this much input text are packed together in one group (one worker).
PACK_GROUP_MB = 32


def _id_digest(doc_id: str) -> bytes:
    """A stable hash of a document id (never Python's salted ``hash()``)."""
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()


def pack_group(doc_id: str, groups: int) -> int:
    """The pack group of a document, from :func:`_id_digest`."""
    return int.from_bytes(_id_digest(doc_id), "big") % groups


class _PackGroupFn(beam.DoFn):
    """Packs the documents of one group in a fixed order (stable hash of the id, then the id), so
    the rows, and the group's one shorter tail row, are the same on any runner and worker count."""

    def __init__(self, bounds: Sequence[int]) -> None:
        self.bounds = list(bounds)

    def setup(self) -> None:
        self.counters = _BucketCounters("bucket")

    def _keyed(self, row: PackedRow) -> tuple[int, PackedRow]:
        bucket = bucket_for(row.length, self.bounds)
        self.counters.row(bucket, row.length)
        return bucket, row

    def process(self, element: tuple[int, Iterable[tuple[str, list[int]]]]) -> Iterable[tuple[int, PackedRow]]:
        _, members = element
        ordered = sorted(members, key=lambda kv: (_id_digest(kv[0]), kv[0]))
        packer = Packer(self.bounds[-1])
        for doc_id, ids in ordered:
            self.counters.inc("in")
            self.counters.inc("kept")
            for row in packer.add(doc_id, ids):
                yield self._keyed(row)
        for row in packer.flush():
            yield self._keyed(row)


class Tokenize(beam.PTransform):
    """Stage ``tokenize``: documents in; ``(documents with n_tokens, (doc_id, token ids))`` out."""

    def __init__(self, cfg: TokenizeConfig, info: TokenizerInfo | None = None) -> None:
        super().__init__(label="tokenize")
        self.cfg = cfg
        self.info = info or inspect_tokenizer(cfg.tokenizer, cfg.add_bos, cfg.bos, cfg.add_eos, cfg.eos)
        self.control = build_control(cfg)
        if self.control is not None:  # the added tokens widen the vocabulary the schema must hold
            self.info = dataclasses.replace(self.info, vocab_size=max(self.info.vocab_size, self.control.vocab_size))

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        logic = DocumentTokenizer(cfg.tokenizer, self.info.bos_id, self.info.eos_id, cfg.word_cache)
        results = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=max(1, cfg.batch_size // 4), max_batch_size=cfg.batch_size)
            | "Encode" >> beam.ParDo(_TokenizeFn(logic, self.control)).with_outputs(TOKENS_TAG, main="docs")
        )
        return results["docs"], results[TOKENS_TAG]


class Bucket(beam.PTransform):
    """Stage ``bucket``: ``(doc_id, token ids)`` in; ``(bucket, SequenceRow | PackedRow)`` out."""

    def __init__(self, cfg: TokenizeConfig, pack_groups: int = 1) -> None:
        super().__init__(label="bucket")
        self.cfg = cfg
        self.pack_groups = max(1, pack_groups)  # pack mode: documents are packed in this many groups

    def expand(self, tokens: beam.PCollection) -> beam.PCollection:
        if not self.cfg.pack:
            return tokens | "Split" >> beam.ParDo(_SplitFn(self.cfg.buckets))
        groups = self.pack_groups
        return (
            tokens
            | "PackGroup" >> beam.Map(lambda kv: (pack_group(kv[0], groups), kv))
            | "GroupForPacking" >> beam.GroupByKey()
            | "Pack" >> beam.ParDo(_PackGroupFn(self.cfg.buckets))
        )


class TokenizeAndBucket(beam.PTransform):
    """Both stages in one: documents in; ``(documents with n_tokens, (bucket, row) pairs)`` out."""

    def __init__(self, cfg: TokenizeConfig, info: TokenizerInfo | None = None) -> None:
        super().__init__()
        self.tokenize = Tokenize(cfg, info)
        self.bucket = Bucket(cfg)

    @property
    def info(self) -> TokenizerInfo:
        return self.tokenize.info

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        docs, tokens = docs | "tokenize" >> self.tokenize
        return docs, tokens | "bucket" >> self.bucket


class ParquetRowSink(fileio.FileSink):
    """A ``fileio`` sink writing dict rows as one Parquet file (row groups of ~``row_group_tokens``).

    ``fileio.WriteToFiles`` only creates files that receive rows, unlike ``WriteToParquet`` with a
    fixed shard count: an empty Parquet file (no row group) breaks ``datasets.load_dataset``.
    """

    def __init__(self, schema: pa.Schema, codec: str = "zstd", row_group_tokens: int = 1 << 20) -> None:
        self.schema = schema
        self.codec = codec
        # Buffered rows are Python lists of ints (~36 bytes a token): bound the buffer by tokens,
        # not rows, or a writer per bucket holding 8192-token rows grows to hundreds of MB.
        self.row_group_tokens = row_group_tokens

    def create_metadata(self, destination: str, full_file_name: str) -> fileio.FileMetadata:
        return fileio.FileMetadata(mime_type="application/vnd.apache.parquet",
                                   compression_type=CompressionTypes.UNCOMPRESSED)

    def open(self, fh: Any) -> None:
        self._writer = pq.ParquetWriter(fh, self.schema, compression=self.codec)
        self._rows: list[dict[str, Any]] = []
        self._tokens = 0

    def write(self, record: dict[str, Any]) -> None:
        self._rows.append(record)
        self._tokens += record["length"]
        if self._tokens >= self.row_group_tokens:
            self._write_rows()

    def _write_rows(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows, self._tokens = [], 0

    def flush(self) -> None:
        # fileio calls flush right before closing the file: write the footer here
        self._write_rows()
        self._writer.close()


class WriteSequences(beam.PTransform):
    """``(bucket, row)`` pairs to ``<output>/sequences/bucket=N/part-*.parquet`` (hive layout).

    One ``WriteToFiles`` per bucket, so a bucket without rows gets no folder and no empty file.
    """

    def __init__(self, output_dir: str, bounds: Sequence[int], vocab_size: int, packed: bool,
                 num_shards: int, codec: str = "zstd") -> None:
        super().__init__()
        self.output_dir = output_dir.rstrip("/")
        self.bounds = list(bounds)
        self.schema = arrow.sequence_schema(vocab_size, packed)
        self.num_shards = num_shards
        self.codec = None if codec == "none" else codec

    def expand(self, rows: beam.PCollection) -> beam.pvalue.PDone:
        index = {b: i for i, b in enumerate(self.bounds)}
        parts = rows | "ByBucket" >> beam.Partition(lambda kv, n: index[kv[0]], len(self.bounds))
        schema, codec = self.schema, self.codec
        for bucket, part in zip(self.bounds, parts, strict=True):
            _ = (
                part
                | f"ToRow{bucket}" >> beam.Map(lambda kv: sequence_row(kv[1]))
                | f"Write{bucket}" >> fileio.WriteToFiles(
                    f"{self.output_dir}/sequences/bucket={bucket}",
                    file_naming=fileio.default_file_naming("part", ".parquet"),
                    sink=lambda _dest: ParquetRowSink(schema, codec),
                    shards=self.num_shards,
                    # keep Beam's temporary folders out of the hive tree that loaders scan
                    # (a ValueProvider: WriteToFiles does not wrap a plain string itself)
                    temp_directory=StaticValueProvider(str, f"{self.output_dir}/_run/tmp-sequences-{bucket}"),
                )
            )
        return beam.pvalue.PDone(rows.pipeline)


def sequence_summary(counters: dict[str, dict[str, int]]) -> dict[str, Any] | None:
    """The ``sequences`` section of stats.json, from the ``tokenize`` and ``bucket`` counters.

    Per bucket: rows, tokens, the pad tokens a batch padded to the bucket's bound would spend, and
    that waste as a fraction of the padded batch; ``tokens_conserved`` says whether every token of
    the kept documents (``tokenize`` counted them) landed in exactly one row.
    """
    bucket_counters = counters.get("bucket")
    if not bucket_counters:
        return None
    per: dict[int, dict[str, int]] = {}
    for key, value in bucket_counters.items():
        kind, sep, bound = key.partition(":bucket=")
        if sep and kind in ("rows", "tokens", "padding"):
            per.setdefault(int(bound), {"rows": 0, "tokens": 0, "padding": 0})[kind] = value
    buckets = {}
    for bound in sorted(per):
        b = per[bound]
        padded = b["tokens"] + b["padding"]
        buckets[str(bound)] = {**b, "padding_frac": round(b["padding"] / padded, 4) if padded else 0.0}
    tokens = sum(b["tokens"] for b in per.values())
    padding_total = sum(b["padding"] for b in per.values())
    return {
        "rows": sum(b["rows"] for b in per.values()),
        "tokens": tokens,
        "padding": padding_total,
        "padding_frac": round(padding_total / (tokens + padding_total), 4) if tokens else 0.0,
        "tokens_conserved": tokens == counters.get("tokenize", {}).get("tokens", 0),
        "buckets": buckets,
    }
