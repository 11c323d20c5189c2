"""The dedup index takes its MinHash signatures from ``dedup_near`` and its text hashes from
``dedup_exact`` instead of hashing every text again: the rows are the ones a fresh computation
gives, and the run's graph hashes texts once."""

from __future__ import annotations

import random

import apache_beam as beam
import pyarrow.dataset as ds

from corpusforge.pipelines.build import build_pipeline
from corpusforge.schemas.config import DedupNearConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.dedup.exact import DeduplicateExact
from corpusforge.transforms.dedup.index import IndexRowMaker, NearParams, WriteIndex
from corpusforge.transforms.dedup.near import DeduplicateNear
from corpusforge.transforms.io.read import InputFile
from tests.helpers import local_test_pipeline

WORDS = [f"w{i}" for i in range(2000)]


def _docs() -> list[Document]:
    rng = random.Random(3)
    base = [" ".join(rng.choice(WORDS) for _ in range(150)) for _ in range(12)]
    docs = [Document(id=f"d{i:02d}", text=t) for i, t in enumerate(base)]
    # near copies (one word in 60 changed), so dedup_near rejects some and keeps the rest
    for i, t in enumerate(base[:5]):
        words = t.split()
        docs.append(
            Document(id=f"n{i:02d}", text=" ".join("x" if k % 60 == 7 else w for k, w in enumerate(words)))
        )
    return docs


def test_rows_from_dedup_near_signatures_equal_recomputed_rows(tmp_path):
    docs = _docs()
    near = DeduplicateNear(DedupNearConfig())
    params = NearParams.of(DedupNearConfig())
    with local_test_pipeline() as p:
        kept, _ = p | beam.Create(docs) | near
        _ = (kept, kept | beam.Map(lambda d: d.id)) | WriteIndex(
            str(tmp_path), params, "r1", 1, signatures=near.signatures
        )
    rows = ds.dataset(str(tmp_path / "dedup_index"), format="parquet").to_table().to_pylist()
    maker = IndexRowMaker(params, "r1")
    maker.setup()
    by_id = {d.id: d for d in docs}
    assert 12 <= len(rows) < len(docs)  # the near copies were rejected, every base page kept
    assert sorted(rows, key=lambda r: r["id"]) == sorted(
        (maker.row(by_id[r["id"]]) for r in rows), key=lambda r: r["id"]
    )


def test_rows_from_dedup_exact_hashes_equal_recomputed_rows(tmp_path):
    """Exact dedup's hashes cover documents it rejected too (an exact copy here): only the kept
    documents get rows, each with the hash a fresh computation gives."""
    docs = [*_docs(), Document(id="copy-of-d03", text=_docs()[3].text.upper())]
    exact, near = DeduplicateExact(work_dir=str(tmp_path / "work")), DeduplicateNear(DedupNearConfig())
    params = NearParams.of(DedupNearConfig())
    with local_test_pipeline() as p:
        kept, _ = p | beam.Create(docs) | exact
        kept, _ = kept | near
        # dedup_docs alone (nothing after dedup rejects): the kept ids come from them
        _ = kept | WriteIndex(str(tmp_path), params, "r1", 1, signatures=near.signatures, hashes=exact.hashes)
    rows = ds.dataset(str(tmp_path / "dedup_index"), format="parquet").to_table().to_pylist()
    maker = IndexRowMaker(params, "r1")
    maker.setup()
    by_id = {d.id: d for d in docs}
    ids = {r["id"] for r in rows}
    assert len(rows) == len(ids) and 12 <= len(ids) < len(docs) - 1
    assert len(ids & {"copy-of-d03", "d03"}) == 1  # one of the exact pair, never both
    assert sorted(rows, key=lambda r: r["id"]) == sorted(
        (maker.row(by_id[r["id"]]) for r in rows), key=lambda r: r["id"]
    )


def _labels(overrides: list[str]) -> set[str]:
    cfg = load_config(overrides=overrides)
    p = beam.Pipeline(runner="DirectRunner")  # built, never run
    build_pipeline(p, cfg, [InputFile("/nonexistent/x.jsonl", 10, "jsonl", "none")], "/tmp/unused-out")
    labels: set[str] = set()

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            labels.add(node.full_label)

        def visit_transform(self, node):
            labels.add(node.full_label)

    p.visit(Visitor())
    return labels


def test_the_index_hashes_texts_again_only_when_a_dedup_stage_is_off():
    on = _labels(["tokenize.enabled=false"])
    assert "WriteDedupIndex/TextHashes" not in on and "WriteDedupIndex/IndexRows" not in on
    no_exact = _labels(["tokenize.enabled=false", "dedup.exact.enabled=false"])
    assert "WriteDedupIndex/TextHashes" in no_exact and "WriteDedupIndex/IndexRows" not in no_exact
    off = _labels(["tokenize.enabled=false", "dedup.near.enabled=false"])
    assert "WriteDedupIndex/IndexRows" in off and "WriteDedupIndex/TextHashes" not in off
