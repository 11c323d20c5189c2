"""Exact deduplication (stage ``dedup_exact``): one document per normalized-text hash survives.

Documents are keyed by a stable 128-bit digest of their comparison form (NFKC, case-folded,
whitespace collapsed; see :func:`corpusforge.transforms.dedup.minhash.exact_hash`) and grouped with one
shuffle. In each group the document with the smallest :func:`node_key` (a stable hash of its id,
then the id) is kept, whatever order the runner delivers the group in, so 1 and N workers keep the
same documents. The group is read twice, never held as a list: a key shared by millions of
boilerplate pages costs memory for one document, not for all of them.

With a ``work_dir`` (the pipeline gives one: ``OUT/_run/work/dedup_exact``) no document is shuffled.
On the local runner every shuffle and every PCollection that crosses a stage boundary is held in
the driver's memory, so grouping whole documents put every document that reached dedup there.
Instead each bundle's documents are *parked*: written by the worker to one file of
``work_dir`` (:class:`BundleFile`), while only ``(text hash, (node key, file))`` is shuffled. The
decisions for the groups of two or more (the kept node with the copies it absorbed, every copy with
the id it lost to) are keyed by file and given as a side input to the step that reads each file
back and keeps or rejects its documents in place. Reading a file costs far less than a shuffle of
its documents through one process; the files are removed with ``_run/work`` when the run ends.
"""

from __future__ import annotations

import pickle
import posixpath
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, BinaryIO

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from corpusforge.schemas.config import DedupExactConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.dedup.minhash import exact_hash
from corpusforge.transforms.hashing import ID_DIGEST_BYTES, id_digest

STAGE = "dedup_exact"
REASON = "dedup:exact"
KEYS_TAG = "keys"
_LENGTH = struct.Struct("<I")
# (node key, id it lost to or None for the kept one, copies it absorbed): one document's decision
Decision = tuple[bytes, "str | None", int]


def node_key(doc_id: str) -> bytes:
    """The document's sort and join key: 8 bytes of a stable hash of its id, then the id itself.

    Ordering by it is "smallest id hash first" (ties, which need equal hashes, by id), and the id
    can be read back from it (:func:`id_of`) without another join.
    """
    return id_digest(doc_id) + doc_id.encode("utf-8")


def id_of(node: bytes) -> str:
    return node[ID_DIGEST_BYTES:].decode("utf-8")


def exact_rejection(kept_id: str, stage: str = STAGE) -> RejectReason:
    return RejectReason(
        reason=REASON, stage=stage, detail=f"same normalized text as {kept_id}", duplicate_of=kept_id
    )


# ---- parking documents in files between a stage's key extraction and its decision --------------


class BundleFile:
    """The file a bundle's documents are parked in: opened at the bundle's first document, one
    length-prefixed pickle per document, closed (and its path handed on) at the bundle's end."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path: str | None = None
        self._file: BinaryIO | None = None

    def write(self, doc: Document) -> str:
        """Park ``doc``; returns the path of the file it is in."""
        if self._file is None:
            self.path = posixpath.join(self.work_dir, f"{uuid.uuid4().hex}.pickles")
            self._file = FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED)
        payload = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(_LENGTH.pack(len(payload)))
        self._file.write(payload)
        assert self.path is not None
        return self.path

    def close(self) -> Iterator[WindowedValue]:
        """The finished file's path, as finish_bundle must emit it (nothing for an empty bundle)."""
        if self._file is not None:
            self._file.close()
            yield WindowedValue(self.path, MIN_TIMESTAMP, [GlobalWindow()])
        self._file = self.path = None


def read_parked(path: str) -> Iterator[Document]:
    """The documents of one parked file, in the order they were written."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        while header := f.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(header)
            yield pickle.loads(f.read(size))


class Park(beam.DoFn):
    """Documents -> the paths of the files they are parked in (main output, one per bundle) and
    ``keys(doc, path)`` for each document (``KEYS_TAG``)."""

    def __init__(self, work_dir: str, keys: Callable[[Document, str], Iterable[Any]]) -> None:
        self.work_dir = work_dir
        self.keys = keys

    def start_bundle(self) -> None:
        self.file = BundleFile(self.work_dir)

    def process(self, doc: Document) -> Iterator[Any]:
        path = self.file.write(doc)
        for key in self.keys(doc, path):
            yield pvalue.TaggedOutput(KEYS_TAG, key)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        yield from self.file.close()


class DecideParked(beam.DoFn):
    """A parked file's documents kept or rejected in place, from the decisions keyed by its path
    (a side input: only documents with a decision are in it; the others are kept unchanged)."""

    def __init__(self, stage: str, reject: Callable[[str], RejectReason], count_seen: bool = True) -> None:
        self.stage = stage
        self.reject = reject
        self.count_seen = count_seen  # False where the parking step counted the documents in

    def setup(self) -> None:
        self.counters = StageCounters(self.stage)

    def process(self, path: str, decisions: Any) -> Iterator[Any]:
        mine = {node: (lost_to, absorbed) for node, lost_to, absorbed in decisions[path]}
        for doc in read_parked(path):
            if self.count_seen:
                self.counters.saw(doc)
            lost_to, absorbed = mine.get(node_key(doc.id), (None, 0))
            if lost_to is None:  # a count, 0 when nothing was absorbed: the stage ran on it
                kept = replace(doc, duplicate_count=(doc.duplicate_count or 0) + absorbed)
                self.counters.kept(kept)
                yield kept
            else:
                rejection = self.reject(lost_to)
                self.counters.rejected(rejection)
                yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


def _text_key(doc: Document, path: str) -> Iterator[tuple[bytes, tuple[bytes, str]]]:
    yield exact_hash(doc.text), (node_key(doc.id), path)


class _GroupDecisions(beam.DoFn):
    """Per hash group of ``(node, file)``: ``(file, decision)`` for every member of a group of two or
    more (the smallest node kept, absorbing the others; each other one lost to it)."""

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[tuple[bytes, str]]]) -> Iterator[tuple[str, Decision]]:
        _, members = element
        best: tuple[bytes, str] | None = None
        size = 0
        for member in members:
            size += 1
            if best is None or member < best:
                best = member
        if size < 2:
            return
        assert best is not None
        self.counters.inc("duplicate_groups")
        kept_id = id_of(best[0])
        kept_once = False
        for node, path in members:
            if not kept_once and (node, path) == best:
                kept_once = True
                yield path, (node, None, size - 1)
            else:
                yield path, (node, kept_id, 0)


class _KeepSmallest(beam.DoFn):
    """Per hash group: keep the smallest node key, reject the rest as copies of it."""

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[Document]]) -> Iterable[Any]:
        _, docs = element
        best: bytes | None = None
        size = 0
        for doc in docs:
            key = node_key(doc.id)
            size += 1
            if best is None or key < best:
                best = key
        assert best is not None
        kept_id = id_of(best)
        if size > 1:
            self.counters.inc("duplicate_groups")
        kept_once = False
        for doc in docs:
            self.counters.saw(doc)
            if not kept_once and doc.id == kept_id:
                kept_once = True
                kept = replace(doc, duplicate_count=(doc.duplicate_count or 0) + size - 1)
                self.counters.kept(kept)
                yield kept
            else:
                rejection = exact_rejection(kept_id)
                self.counters.rejected(rejection)
                yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


class DeduplicateExact(beam.PTransform):
    """Stage ``dedup_exact`` from its section (``cfg.dedup.exact``, which has no setting beyond
    ``enabled`` yet): documents -> ``(kept, rejected)``; rejected ones carry ``dedup:exact`` and
    ``duplicate_of``.

    Once applied, :attr:`hashes` holds ``(id, exact hash)`` of every input document: the dedup
    index stores the same hash for each kept document and takes it from here rather than
    normalizing and hashing every text a second time."""

    def __init__(
        self, cfg: DedupExactConfig | None = None, label: str | None = None, work_dir: str | None = None
    ) -> None:
        super().__init__(label)
        self.cfg = cfg or DedupExactConfig()
        self.work_dir = work_dir  # where documents are parked; None: grouped whole instead
        self.hashes: beam.PCollection | None = None

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        if self.work_dir is not None:
            return self._parked(docs)
        keyed = docs | "KeyByTextHash" >> beam.Map(lambda d: (exact_hash(d.text), d))
        self.hashes = keyed | "Hashes" >> beam.Map(lambda kv: (kv[1].id, kv[0]))
        results = (
            keyed
            | "GroupByTextHash" >> beam.GroupByKey()
            | "KeepSmallestId" >> beam.ParDo(_KeepSmallest()).with_outputs(REJECTED_TAG, main=KEPT_TAG)
        )
        return results[KEPT_TAG], results[REJECTED_TAG]

    def _parked(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        parked = docs | "Park" >> beam.ParDo(Park(self.work_dir, _text_key)).with_outputs(
            KEYS_TAG, main="files"
        )
        self.hashes = parked[KEYS_TAG] | "Hashes" >> beam.Map(lambda kv: (id_of(kv[1][0]), kv[0]))
        decisions = (
            parked[KEYS_TAG]
            | "GroupByTextHash" >> beam.GroupByKey()
            | "Decisions" >> beam.ParDo(_GroupDecisions())
        )
        results = parked["files"] | "Decide" >> beam.ParDo(
            DecideParked(STAGE, exact_rejection), beam.pvalue.AsMultiMap(decisions)
        ).with_outputs(REJECTED_TAG, main=KEPT_TAG)
        return results[KEPT_TAG], results[REJECTED_TAG]
