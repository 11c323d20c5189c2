"""Near-duplicate removal (stage ``dedup_near``): MinHash, LSH banding as a shuffle, verified edges,
distributed connected components, one document kept per cluster.

Data flow (every step a ParDo or a shuffle; nothing is collected on one worker, except the bounded
single-worker path of :class:`ConnectedComponents` for small graphs):

1. ``Signatures``: per document, a MinHash signature (:class:`MinHasher`, built in ``setup``), its
   band keys, and the document keyed by its node key (stable id hash + id).
2. ``GroupByBand``: node keys sharing a band are grouped (only ``(band key, node)`` travels, once
   per band); the members of every bucket of two or more are then given their verification
   fingerprints by a join (``JoinFingerprints``: a document's 256-byte fingerprint travels once,
   plus once per shared bucket, not once per band: 2-3.4x less shuffled, see benchmarks/RESULTS.md)
   and grouped again by bucket. In each bucket, members (sorted by node key) are linked to a
   representative they verify against (estimated Jaccard at least ``verify_threshold``), not to
   every other member: a bucket of k members yields at most k - 1 edges and
   ``max_bucket_reps * k`` comparisons, never k^2. A bucket is sorted in memory for a
   deterministic choice of representatives: about 300 bytes per member at 128 permutations (a
   16-bit fingerprint per position plus the node key), so 1M pages sharing one band need ~0.3 GB
   on one worker; exact dedup runs first and removes the usual cause (identical boilerplate pages).
   With ``exact_verify``, :class:`ExactVerify` then checks each edge's exact shingle Jaccard.
3. ``ConnectedComponents``: clusters from the verified edges; a chain A~B~C is one cluster even
   when A and C are not similar.
4. ``JoinRoots``, ``GroupByRoot``: the documents joined with their cluster root (one join by node
   key), then each cluster's members grouped by its root: the root (smallest node key) is kept with
   ``duplicate_count`` increased by everything its cluster removed (so it counts every copy, exact
   or near, removed in its favour); the others are rejected as ``dedup:near`` with
   ``duplicate_of`` the root's id. The counts travel with the join's documents, so a cluster's
   credits need no join and sum of their own (three shuffles were two).

With a ``work_dir`` (the pipeline gives one), step 1 parks each bundle's documents in a file
instead of sending them to step 4's join (:class:`~corpusforge.transforms.dedup.exact.BundleFile`:
on the local runner that join held every document in the driver's memory); step 4 then joins only
``(node, (count, file))`` with the roots, every decision of a cluster is made where its root's
members meet, and each parked file is read back and its documents kept or rejected in place, from
the decisions keyed by file (a side input).

The signatures of step 1 are also a by-product of the stage (:attr:`DeduplicateNear.signatures`):
the dedup index stores them (and the band keys they derive) for every kept document, and MinHash is most of this stage's CPU, so the index takes them from here instead of
hashing every text a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam import pvalue

from corpusforge.schemas.config import DedupNearConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.dedup.components import ConnectedComponents
from corpusforge.transforms.dedup.exact import BundleFile, DecideParked, id_of, node_key
from corpusforge.transforms.dedup.minhash import MinHasher, band_keys, exact_jaccard

STAGE = "dedup_near"
REASON = "dedup:near"
DOC_TAG, COUNT_TAG, SIGNATURE_TAG, FILES_TAG = "doc", "count", "signature", "files"
FINGERPRINT_TAG = "fingerprint"
# (document id, signature as little-endian uint32 bytes): the index derives the band keys from it
Signed = tuple[str, bytes]


def near_rejection(root_id: str, stage: str = STAGE) -> RejectReason:
    return RejectReason(
        reason=REASON, stage=stage, detail=f"near-duplicate cluster kept {root_id}", duplicate_of=root_id
    )


def verification_fingerprint(signature: np.ndarray) -> bytes:
    """The low 16 bits of every signature value, as bytes: what a bucket member carries for verification.

    Every document travels once per band, so this halves the largest shuffle of the stage. Two
    different values agree on their low 16 bits with probability 1/65536, which moves an estimated
    Jaccard by about 0.00002 (1 - J): nothing next to the estimate's own spread (about 0.03).
    """
    return (signature & np.uint32(0xFFFF)).astype(np.uint16).tobytes()


def link_bucket(
    members: Iterable[tuple[bytes, np.ndarray]], verify_threshold: float, max_reps: int
) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """Verified edges of one LSH bucket: each member to the first representative it matches.

    Members are taken in node-key order (deterministic whatever order the shuffle delivers). A
    member that matches no representative becomes one (up to ``max_reps``), so a bucket holding two
    unrelated clusters that collided on a band still links both. Returns ``(edges, comparisons,
    unlinked)`` where ``unlinked`` counts members dropped because every representative slot was taken.
    """
    ordered = sorted(members, key=lambda m: m[0])
    reps: list[tuple[bytes, np.ndarray]] = []
    edges: list[tuple[bytes, bytes]] = []
    need = int(np.ceil(verify_threshold * (len(ordered[0][1]) if ordered else 0) - 1e-9))
    comparisons = unlinked = 0
    previous: bytes | None = None
    for node, sig in ordered:
        if node == previous:  # the same document twice (duplicate ids): nothing to link
            continue
        previous = node
        for rep_node, rep_sig in reps:
            comparisons += 1
            if np.count_nonzero(rep_sig == sig) >= need:
                edges.append((rep_node, node))
                break
        else:
            if len(reps) < max_reps:
                reps.append((node, sig))
            else:
                unlinked += 1
    return edges, comparisons, unlinked


class _HashingFn(beam.DoFn):
    """A DoFn that shingles text the way the signatures do: the hasher is built once per worker."""

    def __init__(self, cfg: DedupNearConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        c = self.cfg
        self.hasher = MinHasher(c.num_perm, c.ngram, c.seed)
        self.bands, self.rows = c.band_rows
        self.counters = StageCounters(STAGE)


class _Signatures(_HashingFn):
    """Signature and ``(band key, node)`` per band per document; the document, its existing count,
    its verification fingerprint (once) and its signature (for the dedup index) go to side
    outputs. With a ``work_dir`` the document is parked in its bundle's file instead (paths to
    ``FILES_TAG``, counts as ``(count, file)``), and sent on under ``DOC_TAG`` only when
    ``keep_docs`` (exact verification reads the texts)."""

    def __init__(self, cfg: DedupNearConfig, work_dir: str | None = None, keep_docs: bool = True) -> None:
        super().__init__(cfg)
        self.work_dir = work_dir
        self.keep_docs = keep_docs

    def start_bundle(self) -> None:
        self.file = None if self.work_dir is None else BundleFile(self.work_dir)

    def process(self, doc: Document) -> Iterable[Any]:
        self.counters.saw(doc)
        node = node_key(doc.id)
        sig = self.hasher.signature(doc.text)
        fingerprint = verification_fingerprint(sig)
        if self.keep_docs:
            yield pvalue.TaggedOutput(DOC_TAG, (node, doc))
        if self.file is None:
            yield pvalue.TaggedOutput(COUNT_TAG, (node, doc.duplicate_count or 0))
        else:
            yield pvalue.TaggedOutput(COUNT_TAG, (node, (doc.duplicate_count or 0, self.file.write(doc))))
        yield pvalue.TaggedOutput(SIGNATURE_TAG, (doc.id, sig.astype("<u4").tobytes()))
        yield pvalue.TaggedOutput(FINGERPRINT_TAG, (node, fingerprint))
        for key in band_keys(sig, self.bands, self.rows):
            yield key, node

    def finish_bundle(self) -> Iterable[Any]:
        if self.file is not None:
            for path in self.file.close():
                yield pvalue.TaggedOutput(FILES_TAG, path)


class _SharedBuckets(beam.DoFn):
    """``(band key, nodes)`` -> ``(node, band key)`` for every distinct member of a bucket of two or
    more: the only documents whose fingerprints verification needs."""

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[bytes]]) -> Iterable[tuple[bytes, bytes]]:
        key, nodes = element
        members = set(nodes)  # a document twice (duplicate ids) is one member
        if len(members) < 2:
            return
        self.counters.inc("lsh_buckets_shared")
        for node in sorted(members):
            yield node, key


def _fingerprinted(
    element: tuple[bytes, dict[str, list[Any]]],
) -> Iterable[tuple[bytes, tuple[bytes, bytes]]]:
    """``node -> {fingerprint, bucket}`` -> ``(band key, (node, fingerprint))`` per shared bucket.

    With duplicate ids a node has several fingerprints: the smallest stands for it, so the choice
    does not depend on the order the shuffle delivers them in."""
    node, joined = element
    if not joined["bucket"] or not joined["fingerprint"]:
        return
    fingerprint = min(joined["fingerprint"])
    for key in joined["bucket"]:
        yield key, (node, fingerprint)


class _LinkBuckets(beam.DoFn):
    def __init__(self, cfg: DedupNearConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[tuple[bytes, bytes]]]) -> Iterable[tuple[bytes, bytes]]:
        _, members = element
        members = [(node, np.frombuffer(raw, dtype=np.uint16)) for node, raw in members]
        edges, comparisons, unlinked = link_bucket(members, self.cfg.verify_at, self.cfg.max_bucket_reps)
        self.counters.inc("candidate_comparisons", comparisons)
        self.counters.inc("verified_edges", len(edges))
        self.counters.inc("rejected_candidates", comparisons - len(edges))
        if unlinked:
            self.counters.inc("bucket_members_unlinked", unlinked)
        yield from edges


class _VerifyExact(_HashingFn):
    """Keep an edge only if the exact shingle Jaccard of its two texts reaches ``threshold``."""

    def process(self, element: tuple[bytes, dict[str, list[Any]]]) -> Iterable[tuple[bytes, bytes]]:
        rep, joined = element
        if not joined["text"] or not joined["pair"]:
            return
        rep_shingles = self.hasher.shingles(joined["text"][0])
        for member, text in joined["pair"]:
            if exact_jaccard(rep_shingles, self.hasher.shingles(text)) >= self.cfg.threshold:
                self.counters.inc("exact_verified_edges")
                yield rep, member
            else:
                self.counters.inc("exact_rejected_edges")


class ExactVerify(beam.PTransform):
    """Edges -> the edges whose texts really have shingle Jaccard >= threshold.

    Two joins bring each edge both texts (keyed by member, then by representative); duplicate
    edges found in several bands are removed first. Costs two shuffles of the texts of linked
    documents, hence optional (``dedup.near.exact_verify``).
    """

    def __init__(self, cfg: DedupNearConfig, keyed_docs: beam.PCollection) -> None:
        super().__init__()
        self.cfg = cfg
        self.keyed_docs = keyed_docs

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        texts = self.keyed_docs | "Texts" >> beam.Map(lambda kv: (kv[0], kv[1].text))
        by_member = (
            {
                "rep": edges | "Distinct" >> beam.Distinct() | "ByMember" >> beam.Map(lambda e: (e[1], e[0])),
                "text": texts,
            }
            | "JoinMemberText" >> beam.CoGroupByKey()
            | "ToRep"
            >> beam.FlatMap(
                lambda kv: [(rep, (kv[0], kv[1]["text"][0])) for rep in kv[1]["rep"]] if kv[1]["text"] else []
            )
        )
        return (
            {"pair": by_member, "text": texts}
            | "JoinRepText" >> beam.CoGroupByKey()
            | "Verify" >> beam.ParDo(_VerifyExact(self.cfg))
        )


ROOT_TAG, HOME, CREDIT, LOST = "to_root", "home", "credit", "lost"


def cluster_decision(node: bytes, roots: list[bytes]) -> str | None:
    """A document's side of its cluster, from its join with its cluster root: ``None`` when it is
    kept (it is its cluster's root, or in no cluster), the root's id when it is a near duplicate of
    it. The one rule of both paths (parked or whole)."""
    root = roots[0] if roots else node
    return None if root == node else id_of(root)


class _JoinRoots(beam.DoFn):
    """Per node, its documents (``doc``: whole ones, or ``info``: ``(count, file)`` of parked ones)
    joined with its cluster root. A whole document is settled here when it can be: a near
    duplicate rejected for its root, a document in no cluster kept (a parked one in no cluster
    needs no decision at all). Each cluster's root needs what its cluster removed, so ``ROOT_TAG``
    carries ``(root, (CREDIT, copies))`` from every removed member (itself and the copies it
    absorbed earlier), ``(root, (HOME, member))`` from the root itself and, parked, ``(root, (LOST,
    (node, file)))`` from each near duplicate, to :class:`_RootOutcome`, which then emits every
    decision of the cluster (no Flatten of two decision collections before the side input). One
    join by node and one group by root (the counts travel with the documents' join instead of a
    join, a sum and a join of their own)."""

    def __init__(self, parked: bool, member_tag: str) -> None:
        self.parked = parked
        self.member_tag = member_tag

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, dict[str, list[Any]]]) -> Iterable[Any]:
        node, joined = element
        roots, members = joined["root"], joined[self.member_tag]
        lost_to = cluster_decision(node, roots)
        if lost_to is not None:
            copies = sum(1 + _count(m, self.parked) for m in members)
            if members:
                yield pvalue.TaggedOutput(ROOT_TAG, (roots[0], (CREDIT, copies)))
            for member in members:
                if self.parked:  # decided with its root's, so that one step emits every decision
                    yield pvalue.TaggedOutput(ROOT_TAG, (roots[0], (LOST, (node, member[1]))))
                else:
                    rejection = near_rejection(lost_to)
                    self.counters.rejected(rejection)
                    yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(member, rejection))
        elif roots:  # a cluster's root: kept, once its cluster's credits are summed
            for member in members:
                yield pvalue.TaggedOutput(ROOT_TAG, (node, (HOME, member)))
        elif not self.parked:  # in no cluster: kept, with a count (0 when none: the stage ran on it)
            for doc in members:
                kept = replace(doc, duplicate_count=doc.duplicate_count or 0)
                self.counters.kept(kept)
                yield kept


def _count(member: Any, parked: bool) -> int:
    """The copies a document already absorbed (exact dedup, earlier releases)."""
    return member[0] if parked else (member.duplicate_count or 0)


class _RootOutcome(beam.DoFn):
    """Per cluster root: its documents kept with ``duplicate_count`` increased by everything its
    cluster removed; parked, ``(file, decision)`` for the root and for each of its near duplicates."""

    def __init__(self, parked: bool) -> None:
        self.parked = parked

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[bytes, Iterable[tuple[str, Any]]]) -> Iterable[Any]:
        node, values = element
        added, homes = 0, []
        for kind, value in values:
            if kind == CREDIT:
                added += value
            elif kind == HOME:
                homes.append(value)
            else:  # a parked near duplicate of this root
                member, path = value
                yield path, (member, id_of(node), 0)
        if added:
            self.counters.inc("clusters")
        for member in homes:
            if self.parked:
                if added:  # else kept unchanged: no decision needed
                    yield member[1], (node, None, added)
            else:
                kept = replace(member, duplicate_count=(member.duplicate_count or 0) + added)
                self.counters.kept(kept)
                yield kept


class DeduplicateNear(beam.PTransform):
    """Stage ``dedup_near`` from its section (``cfg.dedup.near``): documents -> ``(kept, rejected)``;
    rejected ones carry ``dedup:near`` and ``duplicate_of``. Banding and the verification threshold
    are the section's derived values (:attr:`DedupNearConfig.band_rows`, ``verify_at``).

    Once applied, :attr:`signatures` holds every input document's ``(id, signature bytes)``
    (:data:`Signed`) for the dedup index; left unconsumed it costs nothing but the tuples."""

    def __init__(self, cfg: DedupNearConfig, label: str | None = None, work_dir: str | None = None) -> None:
        super().__init__(label)
        self.cfg = cfg
        self.signatures: beam.PCollection | None = None
        self.work_dir = work_dir  # where documents are parked; None: joined whole with their roots

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        p = self.cfg
        parked = self.work_dir is not None
        signer = _Signatures(p, self.work_dir, keep_docs=not parked or p.exact_verify)
        sig = docs | "Signatures" >> beam.ParDo(signer).with_outputs(
            DOC_TAG, COUNT_TAG, SIGNATURE_TAG, FILES_TAG, FINGERPRINT_TAG, main="bands"
        )
        self.signatures = sig[SIGNATURE_TAG]
        shared = (
            sig["bands"]
            | "GroupByBand" >> beam.GroupByKey()
            | "SharedBuckets" >> beam.ParDo(_SharedBuckets())
        )
        edges = (
            {"fingerprint": sig[FINGERPRINT_TAG], "bucket": shared}
            | "JoinFingerprints" >> beam.CoGroupByKey()
            | "ToBuckets" >> beam.FlatMap(_fingerprinted)
            | "GroupBucketMembers" >> beam.GroupByKey()
            | "LinkBuckets" >> beam.ParDo(_LinkBuckets(p))
        )
        if p.exact_verify:
            edges = edges | "ExactVerify" >> ExactVerify(p, sig[DOC_TAG])
        roots = edges | "Clusters" >> ConnectedComponents(STAGE, p.max_rounds, p.single_worker_max_edges)
        # parked: (count, file) per document, and decisions by file for DecideParked; else the documents
        member_tag = "info" if parked else "doc"
        members = sig[COUNT_TAG] if parked else sig[DOC_TAG]
        joined = (
            {member_tag: members, "root": roots}
            | "JoinRoots" >> beam.CoGroupByKey()
            | "Settle"
            >> beam.ParDo(_JoinRoots(parked, member_tag)).with_outputs(ROOT_TAG, REJECTED_TAG, main="settled")
        )
        by_root = (
            joined[ROOT_TAG]
            | "GroupByRoot" >> beam.GroupByKey()
            | "RootOutcome" >> beam.ParDo(_RootOutcome(parked))
        )
        if parked:
            # every decision comes from RootOutcome (Settle decides nothing alone for parked documents):
            # no Flatten, which the local runner would run as a stage of its own
            results = sig[FILES_TAG] | "Decide" >> beam.ParDo(
                DecideParked(STAGE, near_rejection, count_seen=False), beam.pvalue.AsMultiMap(by_root)
            ).with_outputs(REJECTED_TAG, main=KEPT_TAG)
            return results[KEPT_TAG], results[REJECTED_TAG]
        kept = (joined["settled"], by_root) | "Kept" >> beam.Flatten()
        return kept, joined[REJECTED_TAG]
