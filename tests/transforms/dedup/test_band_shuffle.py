"""The LSH band shuffle carries node keys only: a document's 256-byte verification fingerprint
travels once (joined to the buckets that need it), not once per band, and the clusters found are
the ones every member's fingerprint gives."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.schemas.config import DedupNearConfig
from corpusforge.transforms.dedup.exact import node_key
from corpusforge.transforms.dedup.near import FINGERPRINT_TAG, DeduplicateNear, _Signatures
from tests.helpers import local_test_pipeline
from tests.transforms.dedup.test_stages import outcome, sample_docs


def test_band_outputs_are_node_keys_and_fingerprints_go_out_once():
    cfg = DedupNearConfig()
    bands, _ = cfg.band_rows
    docs = sample_docs()
    with local_test_pipeline() as p:
        sig = p | beam.Create(docs) | beam.ParDo(_Signatures(cfg)).with_outputs(FINGERPRINT_TAG, main="bands")
        per_doc = sig["bands"] | "Nodes" >> beam.Values() | "PerNode" >> beam.combiners.Count.PerElement()
        assert_that(per_doc, equal_to([(node_key(d.id), bands) for d in docs]), label="one node per band")
        fingerprints = sig[FINGERPRINT_TAG] | "Sizes" >> beam.MapTuple(lambda node, fp: (node, len(fp)))
        assert_that(
            fingerprints, equal_to([(node_key(d.id), 2 * cfg.num_perm) for d in docs]), label="fingerprints"
        )


def test_a_document_given_twice_links_once():
    """Duplicate ids (the stage used outside the pipeline, which rejects them first) are one bucket
    member: the copy of a node is neither an edge nor a second representative."""
    docs = [d for d in sample_docs() if d.id in ("dedup-original", "dedup-near-edit")]
    with local_test_pipeline() as p:
        kept, rejected = p | beam.Create([*docs, docs[0]]) | DeduplicateNear(DedupNearConfig())
        kept_rows, rejected_rows = outcome(kept, rejected)
        # dedup-original has the smaller id hash: both of its copies are the kept root
        assert node_key("dedup-original") < node_key("dedup-near-edit")
        assert_that(kept_rows, equal_to([("dedup-original", 1)] * 2), label="kept")
        assert_that(
            rejected_rows,
            equal_to([("dedup-near-edit", "dedup:near", "dedup_near", "dedup-original")]),
            label="rejected",
        )
