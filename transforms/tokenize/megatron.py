"""``tokenize.formats: [megatron]``: Megatron-LM's indexed dataset, one ``.bin``/``.idx`` per shard.

The layout (``MMIDIDX`` version 1, as megatron-core's ``indexed_dataset.py`` reads it), little endian:

    .idx: b"MMIDIDX\\x00\\x00" | u64 version = 1 | u8 dtype code | u64 sequence count S
          | u64 document count D | int32[S] sequence lengths | int64[S] byte offsets into .bin
          | int64[D] document indices (0, then the sequence index that ends each document)
    .bin: the token ids of every sequence, back to back, in the dtype of the code

Dtype codes are Megatron's (uint16 = 8, int32 = 4); like Megatron's ``preprocess_data.py`` the
dtype follows the vocabulary size (uint16 below 65,500 ids). Each row of ``sequences/`` is one
sequence and one document, so ``D = S + 1``. Megatron takes a list of weighted prefixes
(``--data-path w1 p1 w2 p2``): ``index.json`` beside the shards lists them with their token counts.

Every shard is written by the worker holding it (no driver step but the small listing), with a
provenance sidecar (:mod:`provenance`). :func:`read_shard` reads the layout back for tests and tools.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from corpusforge.transforms.base import StageCounters
from corpusforge.transforms.io.staged import StagedFiles, write_staged
from corpusforge.transforms.tokenize.order import TrainRow
from corpusforge.transforms.tokenize.provenance import SIDECAR_SUFFIX, Provenance
from corpusforge.transforms.tokenize.spill_sort import DEFAULT_BUFFER_BYTES, sorted_rows

HEADER = b"MMIDIDX\x00\x00"
VERSION = 1
# megatron.core.datasets.indexed_dataset.DType: the numeric code of each dtype in the .idx header
DTYPE_CODES: dict[str, int] = {
    "uint8": 1,
    "int8": 2,
    "int16": 3,
    "int32": 4,
    "int64": 5,
    "float64": 6,
    "float32": 7,
    "uint16": 8,
}
FOLDER = "sequences_megatron"
LISTING = "index.json"
# Megatron's own rule (DType.optimal_dtype): uint16 for a vocabulary below this many ids
MEGATRON_UINT16_BELOW = 65500


def token_dtype(vocab_size: int, requested: str = "auto") -> np.dtype:
    """The dtype of the trainer formats' token ids; a vocabulary the dtype cannot hold is refused.

    ``auto`` follows Megatron (uint16 below 65,500 ids, else int32). Ids are never wrapped: a
    uint16 chosen for a larger vocabulary raises (``tokenize.token_dtype`` in the message).
    """
    if requested == "auto":
        return np.dtype(np.uint16 if vocab_size < MEGATRON_UINT16_BELOW else np.int32)
    dtype = np.dtype(requested)
    limit = int(np.iinfo(dtype).max) + 1
    if vocab_size > limit:
        raise ValueError(
            f"tokenize.token_dtype: {requested} holds ids below {limit}, "
            f"the tokenizer has {vocab_size} (ids would wrap)"
        )
    return dtype


def index_bytes(lengths: Sequence[int], dtype: np.dtype) -> bytes:
    """The ``.idx`` file of sequences of ``lengths`` (one document per sequence)."""
    n = len(lengths)
    lens = np.asarray(lengths, dtype="<i4")
    pointers = np.zeros(n, dtype="<i8")
    if n:
        np.cumsum(lens[:-1].astype("<i8") * dtype.itemsize, out=pointers[1:])
    doc_index = np.arange(n + 1, dtype="<i8")
    head = HEADER + struct.pack("<QBQQ", VERSION, DTYPE_CODES[dtype.name], n, n + 1)
    return head + lens.tobytes() + pointers.tobytes() + doc_index.tobytes()


@dataclass
class MegatronShard:
    """One shard read back from its bytes: what Megatron's ``IndexedDataset`` would see."""

    dtype: np.dtype
    lengths: np.ndarray
    pointers: np.ndarray
    document_indices: np.ndarray
    data: np.ndarray  # the whole .bin as a flat array of ``dtype``

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self.data[start : start + int(self.lengths[i])]


def parse_shard(idx: bytes, bin_: bytes) -> MegatronShard:
    """Read the documented layout (header checked, every array sized from the counts)."""
    if idx[: len(HEADER)] != HEADER:
        raise ValueError("not a Megatron MMIDIDX index (bad header)")
    version, code, n, docs = struct.unpack_from("<QBQQ", idx, len(HEADER))
    if version != VERSION:
        raise ValueError(f"unsupported MMIDIDX version {version}")
    names = {v: k for k, v in DTYPE_CODES.items()}
    dtype = np.dtype(names[code])
    off = len(HEADER) + struct.calcsize("<QBQQ")
    lengths = np.frombuffer(idx, "<i4", n, off)
    pointers = np.frombuffer(idx, "<i8", n, off + 4 * n)
    document_indices = np.frombuffer(idx, "<i8", docs, off + 12 * n)
    if off + 12 * n + 8 * docs != len(idx):
        raise ValueError("MMIDIDX index size does not match its counts")
    return MegatronShard(
        dtype, lengths, pointers, document_indices, np.frombuffer(bin_, dtype.newbyteorder("<"))
    )


def read_shard(prefix: str) -> MegatronShard:
    """``<prefix>.idx`` and ``<prefix>.bin`` from any Beam filesystem."""
    with FileSystems.open(prefix + ".idx") as f:
        idx = f.read()
    with FileSystems.open(prefix + ".bin") as f:
        bin_ = f.read()
    return parse_shard(idx, bin_)


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


class _WriteShardFn(beam.DoFn):
    """Writes one shard's ``.bin``, ``.idx`` and provenance sidecar; yields its listing entry.

    Rows stream in training order (:func:`sorted_rows`, bounded memory) straight into the ``.bin``;
    only their lengths and doc ids are kept for the index and the sidecar. All three files are
    staged and renamed into place once complete, the ``.idx`` last, so a killed worker leaves no
    shard that looks finished.
    """

    def __init__(self, folder: str, dtype: np.dtype, sort_buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.folder, self.dtype, self.sort_buffer_bytes = folder, np.dtype(dtype), sort_buffer_bytes

    def setup(self) -> None:
        self.counters = StageCounters("megatron")

    def process(self, element: tuple[int, Iterable[TrainRow]]) -> Iterable[dict[str, Any]]:
        shard, rows = element
        prefix = f"{self.folder}/{shard_name(shard)}"
        dtype = self.dtype.newbyteorder("<")
        provenance = Provenance()
        with StagedFiles() as staged:
            with staged.create(prefix + ".bin") as f:
                for r in sorted_rows(rows, self.sort_buffer_bytes):
                    f.write(r.ids.astype(dtype, copy=False).tobytes())
                    provenance.add(r)
            buf = io.BytesIO()
            pq.write_table(provenance.table(), buf, compression="zstd")
            with staged.create(prefix + SIDECAR_SUFFIX) as f:
                f.write(buf.getvalue())
            with staged.create(prefix + ".idx") as f:
                f.write(index_bytes(provenance.lengths, self.dtype))
        tokens = sum(provenance.lengths)
        n = len(provenance.lengths)
        self.counters.inc("shards")
        self.counters.inc("rows", n)
        self.counters.inc("tokens", tokens)
        yield {
            "prefix": shard_name(shard),
            "sequences": n,
            "tokens": tokens,
            "provenance": shard_name(shard) + SIDECAR_SUFFIX,
        }


def data_path(folder: str, shards: Iterable[dict[str, Any]]) -> list[str]:
    """Megatron's ``--data-path``: ``weight prefix`` pairs, the weight a shard's token count."""
    out: list[str] = []
    for e in shards:
        out += [str(e["tokens"]), f"{folder}/{e['prefix']}"]
    return out


def listing(
    folder: str, dtype: np.dtype, vocab_size: int, entries: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """``index.json``: the shards in order, their token counts, and a ready ``--data-path``."""
    shards = sorted(entries, key=lambda e: e["prefix"])
    return {
        "format": "megatron MMIDIDX v1 (one document per sequence)",
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "sequences": sum(e["sequences"] for e in shards),
        "tokens": sum(e["tokens"] for e in shards),
        "shards": shards,
        # weights are token counts: Megatron's blend then samples every token equally often
        "data_path": data_path(folder, shards),
    }


def relocated(doc: dict[str, Any], folder: str) -> dict[str, Any]:
    """A listing whose shards moved to ``folder`` (an incremental part moved into place): the
    ``--data-path`` names them where they are now."""
    return dict(doc, data_path=data_path(folder, doc["shards"]))


def parts_listing(folder: str, parts: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The one ``index.json`` of an incremental run's ``folder``: every part's shards (``parts`` are
    ``(part folder name, its listing)``, in part order), so one ``--data-path`` trains on them all.

    The parts come from one config, so they share a dtype and a vocabulary; a listing that does
    not is refused rather than blended (Megatron would read its ids in the wrong width).
    """
    parts = list(parts)
    if not parts:
        raise ValueError(f"{folder}: no part listings to combine")
    first = parts[0][1]
    entries = []
    for name, doc in parts:
        if (doc["dtype"], doc["vocab_size"]) != (first["dtype"], first["vocab_size"]):
            raise ValueError(
                f"{folder}/{name}: dtype {doc['dtype']} / vocabulary {doc['vocab_size']} differ from "
                f"the first part's ({first['dtype']} / {first['vocab_size']})"
            )
        for e in doc["shards"]:
            entries.append(dict(e, prefix=f"{name}/{e['prefix']}", provenance=f"{name}/{e['provenance']}"))
    out = listing(folder, np.dtype(first["dtype"]), first["vocab_size"], entries)
    out["parts"] = [name for name, _ in parts]
    return out


class WriteMegatron(beam.PTransform):
    """Shards from :class:`GroupShards` (``(shard, its rows)``) to
    ``<output>/sequences_megatron/shard-NNNNN.{bin,idx,docs.parquet}`` plus ``index.json``."""

    def __init__(
        self, output_dir: str, vocab_size: int, dtype: np.dtype, sort_buffer_bytes: int = DEFAULT_BUFFER_BYTES
    ) -> None:
        super().__init__()
        self.folder = f"{output_dir.rstrip('/')}/{FOLDER}"
        self.vocab_size, self.dtype, self.sort_buffer_bytes = vocab_size, np.dtype(dtype), sort_buffer_bytes

    def expand(self, shards: beam.PCollection) -> beam.pvalue.PDone:
        folder, dtype, vocab = self.folder, self.dtype, self.vocab_size

        def write_listing(entries: list[dict[str, Any]]) -> None:
            body = json.dumps(listing(folder, dtype, vocab, entries), indent=1).encode()
            write_staged(f"{folder}/{LISTING}", body)

        _ = (
            shards
            | "WriteShard" >> beam.ParDo(_WriteShardFn(folder, dtype, self.sort_buffer_bytes))
            | "Entries" >> beam.combiners.ToList()
            | "WriteListing" >> beam.Map(write_listing)
        )
        return beam.pvalue.PDone(shards.pipeline)
