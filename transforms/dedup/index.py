"""The dedup index (``OUT/dedup_index/``): one row per kept document, so later runs can dedup against it.

A row holds the document's id, the release it belongs to, its exact-text hash, its LSH band keys and
its MinHash signature (:class:`corpusforge.schemas.records.IndexRow`). The parameters that made
those values (normal form, n-gram, permutations, seed, bands, rows) are written beside the shards
as ``_params.json``: a hash or a band key means nothing under other parameters, so an index is only
read by a run whose parameters are the same, and a mismatch is refused at start-up, naming it.
(``_params.json`` lives inside the folder so that an index folder is self-contained; the leading
underscore keeps ``pyarrow.dataset`` and ``datasets`` from taking it for data.)

Reading happens in :mod:`corpusforge.transforms.dedup.previous`; here are the pure pieces (rows,
parameters, locating and checking an index on the driver) and the transform that writes one.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from corpusforge.schemas import arrow
from corpusforge.schemas.config import DedupNearConfig
from corpusforge.schemas.records import Document, IndexRow
from corpusforge.transforms.dedup.minhash import (
    SCHEME,
    MinHasher,
    band_keys,
    comparison_text,
    exact_hash,
    exact_hash_of_comparison_text,
)

if TYPE_CHECKING:
    from corpusforge.transforms.io.part_files import PartTarget

INDEX_DIR = "dedup_index"
PARAMS_FILE = "_params.json"
FORMAT = "corpusforge-dedup-index/1"
# The comparison form of minhash.normalize_for_dedup / comparison_text: change it, change this name.
NORMAL_FORM = "nfkc-casefold-collapse-whitespace/1"


@dataclass(frozen=True)
class NearParams:
    """The MinHash/LSH parameters an index is built and matched with, resolved from the run's
    ``dedup.near`` section (bands and rows derived there, the verification threshold filled in)."""

    num_perm: int
    ngram: int
    seed: int
    threshold: float
    verify_threshold: float
    bands: int
    rows: int

    @classmethod
    def of(cls, near: DedupNearConfig) -> NearParams:
        bands, rows = near.band_rows
        return cls(near.num_perm, near.ngram, near.seed, near.threshold, near.verify_at, bands, rows)

    @classmethod
    def resolve(cls, **settings: Any) -> NearParams:
        """From ``dedup.near`` keys (the section's defaults for the others): for tests and tools."""
        return cls.of(DedupNearConfig(**settings))


class DedupIndexError(ValueError):
    """An index that cannot be used: missing, unreadable, or built with other parameters."""


@dataclass(frozen=True)
class IndexParams:
    """What an index's hashes and band keys depend on; two indexes agree only if all of it does."""

    normal_form: str
    ngram: int
    num_perm: int
    seed: int
    bands: int
    rows: int
    scheme: str

    @classmethod
    def of(cls, near: NearParams) -> IndexParams:
        return cls(NORMAL_FORM, near.ngram, near.num_perm, near.seed, near.bands, near.rows, SCHEME)

    def mismatches(self, other: IndexParams, exact_only: bool = False) -> list[str]:
        """``name: theirs != ours`` for every parameter that differs (only the normal form matters
        to exact dedup)."""
        names = ["normal_form"] if exact_only else list(asdict(self))
        return [
            f"{n}: index has {getattr(other, n)!r}, this run uses {getattr(self, n)!r}"
            for n in names
            if getattr(self, n) != getattr(other, n)
        ]


def params_document(params: IndexParams, release: str, version: str) -> dict[str, Any]:
    return {"format": FORMAT, "release": release, "corpusforge_version": version, "params": asdict(params)}


def write_params(folder: str, params: IndexParams, release: str, version: str) -> None:
    with FileSystems.create(posixpath.join(folder, PARAMS_FILE)) as f:
        f.write(json.dumps(params_document(params, release, version), indent=2).encode("utf-8"))


class IndexRowMaker:
    """Index rows for documents: the hasher is built once per worker (call :meth:`setup`)."""

    def __init__(self, params: NearParams, release: str) -> None:
        self.params = params
        self.release = release
        self.hasher: MinHasher | None = None

    def setup(self) -> None:
        p = self.params
        self.hasher = MinHasher(p.num_perm, p.ngram, p.seed)

    def row(self, doc: Document) -> dict[str, Any]:
        assert self.hasher is not None, "setup() first"
        norm = comparison_text(doc.text)  # once for both hashes: it costs as much as the signature
        sig = self.hasher.signature_of_comparison_text(norm)
        return self.signed_row(doc.id, exact_hash_of_comparison_text(norm), sig)

    def signed_row(self, doc_id: str, text_hash: bytes, sig: np.ndarray) -> dict[str, Any]:
        """The row of a document whose signature is already known (``dedup_near`` computed it)."""
        return vars(
            IndexRow(
                id=doc_id,
                release=self.release,
                exact_hash=text_hash,
                band_keys=band_keys(sig, self.params.bands, self.params.rows),
                signature=sig.astype("<u4").tobytes(),
            )
        )


def signature_of(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


class _MakeRows(beam.DoFn):
    def __init__(self, maker: IndexRowMaker) -> None:
        self.maker = maker

    def setup(self) -> None:
        self.maker.setup()

    def process(self, doc: Document) -> Iterable[tuple[str, dict[str, Any]]]:
        yield doc.id, self.maker.row(doc)


def _rows_of_kept(element: tuple[str, dict[str, list[Any]]]) -> Iterable[dict[str, Any]]:
    _, joined = element
    if joined["kept"]:
        yield from joined["row"]


class _SignedRowsOfKept(beam.DoFn):
    """``id -> {hash, signature, kept}`` -> the index row of a kept document, from ``dedup_near``'s
    signature (ids are unique after validation, so one hash and one signature per kept id)."""

    def __init__(self, maker: IndexRowMaker) -> None:
        self.maker = maker

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterable[dict[str, Any]]:
        doc_id, joined = element
        if not joined.get("kept", joined["hash"]):  # no "kept": every document dedup saw was kept
            return
        if not joined["signature"] or not joined["hash"]:
            # dedup_docs are dedup_near's kept documents, each of which it signed: never reached
            raise ValueError(f"dedup index: no dedup_near signature for kept document {doc_id!r}")
        sig = signature_of(joined["signature"][0])
        for text_hash in joined["hash"]:
            yield self.maker.signed_row(doc_id, text_hash, sig)


class WriteIndex(beam.PTransform):
    """``(dedup_docs, kept_ids)`` -> ``<output_dir>/dedup_index/part-*.parquet``.

    ``dedup_docs`` are the documents as deduplication compared them (before PII scrubbing changes
    their text); ``kept_ids`` are the ids that reached ``documents/``. The join keeps the index to
    the kept documents even when a later stage (a toxicity filter) rejects some. ``dedup_docs``
    alone says that no stage after deduplication can reject (pass-through runs): the rows are written
    as they are made, in the same fused stage, without the join's shuffle.

    ``signatures`` (``dedup_near``'s :attr:`~corpusforge.transforms.dedup.near.DeduplicateNear.signatures`,
    when near dedup ran) saves hashing every text a second time: the rows are then built from them
    and a digest of each text (one join by id), and are the same rows, byte for byte. ``hashes``
    (``dedup_exact``'s :attr:`~corpusforge.transforms.dedup.exact.DeduplicateExact.hashes`, when
    exact dedup ran too) are those digests: then no text is hashed here at all. They cover every
    document exact dedup saw, so the join then always names the kept ids (from ``dedup_docs`` when
    no ``kept_ids`` are given).
    """

    def __init__(
        self,
        output_dir: str,
        params: NearParams,
        release: str,
        num_shards: int,
        codec: str = "zstd",
        signatures: beam.PCollection | None = None,
        hashes: beam.PCollection | None = None,
        tables_only: bool = False,
    ) -> None:
        super().__init__()
        self.tables_only = tables_only  # Arrow tables out, for a shared finalize (index_target)
        self.folder = posixpath.join(output_dir.rstrip("/"), INDEX_DIR)
        self.params = params
        self.release = release
        self.num_shards = num_shards
        self.codec = codec
        self.signatures = signatures
        self.hashes = hashes

    def expand(
        self, pcolls: tuple[beam.PCollection, beam.PCollection] | beam.PCollection
    ) -> beam.pvalue.PDone | beam.PCollection:
        from corpusforge.transforms.io.write import RowsToTables, WriteParquet

        dedup_docs, kept_ids = pcolls if isinstance(pcolls, tuple) else (pcolls, None)
        maker = IndexRowMaker(self.params, self.release)
        kept = None if kept_ids is None else kept_ids | "KeyKept" >> beam.Map(lambda i: (i, True))
        if self.signatures is not None:
            if self.hashes is not None:  # a superset of the kept documents: the kept ids say which
                hashes = self.hashes
                if kept is None:
                    kept = dedup_docs | "KeyKept" >> beam.Map(lambda d: (d.id, True))
            else:
                hashes = dedup_docs | "TextHashes" >> beam.Map(lambda d: (d.id, exact_hash(d.text)))
            joined = {"hash": hashes, "signature": self.signatures}
            if kept is not None:
                joined["kept"] = kept
            kept_rows = (
                joined
                | "JoinKept" >> beam.CoGroupByKey()
                | "OnlyKept" >> beam.ParDo(_SignedRowsOfKept(maker))
            )
        else:
            rows = dedup_docs | "IndexRows" >> beam.ParDo(_MakeRows(maker))
            if kept is None:  # every document dedup saw was kept: no join (and no shuffle) needed
                kept_rows = rows | "Rows" >> beam.Values()
            else:
                kept_rows = (
                    {"row": rows, "kept": kept}
                    | "JoinKept" >> beam.CoGroupByKey()
                    | "OnlyKept" >> beam.FlatMap(_rows_of_kept)
                )
        if self.tables_only:
            return kept_rows | "ToArrow" >> beam.ParDo(RowsToTables(arrow.index_schema()))
        return kept_rows | "Write" >> WriteParquet(
            self.folder, arrow.index_schema(), self.num_shards, self.codec
        )


def index_target(output_dir: str) -> PartTarget:
    """``dedup_index/part-SSSSS-of-NNNNN.parquet`` as a part of a shared finalize
    (:class:`~corpusforge.transforms.io.part_files.PartTarget`); one empty file when nothing is
    kept, as Beam's sink writes."""
    from corpusforge.transforms.io.part_files import PartTarget

    return PartTarget(
        posixpath.join(output_dir.rstrip("/"), INDEX_DIR), "part", arrow.index_schema(), required=True
    )


# ---- locating and checking an index on the driver --------------------------------------------------


@dataclass(frozen=True)
class IndexSource:
    """One index folder to read: where, its release, its parameters and its shard files."""

    folder: str
    release: str
    params: IndexParams
    files: tuple[str, ...]


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:
        return False


def _part_folders(folder: str) -> list[str]:
    """``folder/part=NNNNN`` subfolders holding an index each (an incremental run's), in part order."""
    try:
        matched = FileSystems.match([posixpath.join(folder, "part=*", PARAMS_FILE)])[0].metadata_list
    except Exception:
        return []
    return sorted(posixpath.dirname(m.path) for m in matched)


def index_folders(path: str) -> list[str]:
    """The index folders an entry of ``dedup.previous`` names, earliest first.

    The entry may be an index folder or a run's output folder (its ``dedup_index/``); an incremental
    run's index holds one folder per part, returned in part order (earlier parts win ties).
    """
    path = path.rstrip("/")
    for folder in (path, posixpath.join(path, INDEX_DIR)):
        if _exists(posixpath.join(folder, PARAMS_FILE)):
            return [folder]
        parts = _part_folders(folder)
        if parts:
            return parts
    if not _exists(path):
        raise DedupIndexError(f"{path}: no such folder")
    raise DedupIndexError(
        f"{path}: holds no dedup index ({PARAMS_FILE} not found in it or in {path}/{INDEX_DIR}); a run "
        "writes one only with output.dedup_index=true, or auto (the default) and dedup.exact or "
        "dedup.near on: rerun that release with --set output.dedup_index=true, or leave it out of "
        "dedup.previous"
    )


def load_source(folder: str, ours: IndexParams, exact_only: bool = False) -> IndexSource:
    """Read ``_params.json`` and the shard footers of one index folder; refuse what cannot be used."""
    import pyarrow.parquet as pq

    params_path = posixpath.join(folder, PARAMS_FILE)
    try:
        with FileSystems.open(params_path) as f:
            doc = json.loads(f.read().decode("utf-8"))
        theirs = IndexParams(**doc["params"])
        release = str(doc["release"])
    except Exception as exc:
        raise DedupIndexError(
            f"{params_path}: not a corpusforge index description ({type(exc).__name__}: {exc})"
        ) from None
    if doc.get("format") != FORMAT:
        raise DedupIndexError(f"{params_path}: format {doc.get('format')!r}, expected {FORMAT!r}")
    wrong = ours.mismatches(theirs, exact_only)
    if wrong:
        raise DedupIndexError(f"{folder} was built with other parameters: " + "; ".join(wrong))
    try:
        files = sorted(
            m.path for m in FileSystems.match([posixpath.join(folder, "*.parquet")])[0].metadata_list
        )
    except Exception:
        files = []
    want = set(arrow.index_schema().names)
    for path in files:
        try:
            with FileSystems.open(path) as f:
                names = set(pq.ParquetFile(f).schema_arrow.names)
        except Exception as exc:
            raise DedupIndexError(f"{path}: unreadable index shard ({type(exc).__name__}: {exc})") from None
        if not want <= names:
            raise DedupIndexError(f"{path}: index shard lacks column(s) {sorted(want - names)}")
    return IndexSource(folder, release, theirs, tuple(files))


def resolve_previous(entries: list[str], ours: IndexParams, exact_only: bool = False) -> list[IndexSource]:
    """Every index ``dedup.previous`` names, in its order (the earliest release first)."""
    out = []
    for i, entry in enumerate(entries):
        try:
            out.extend(load_source(folder, ours, exact_only) for folder in index_folders(entry))
        except DedupIndexError as exc:
            raise DedupIndexError(f"dedup.previous[{i}]: {exc}") from None
    return out
