"""What a pass-through run shuffles: only read tasks and ids, never a document or an index row."""

from __future__ import annotations

import sys
from pathlib import Path

import apache_beam as beam

from corpusforge.pipelines.build import build_pipeline
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
from tests.helpers import SAMPLE_DIR

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from run_bench import passthrough_overrides  # noqa: E402

GBK = "beam:transform:group_by_key:v1"


def shuffles(overrides: list[str]) -> set[str]:
    """The GroupByKey steps of the graph the CLI builds (the local runner's layout)."""
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    p = beam.Pipeline()
    build_pipeline(p, load_config(None, overrides), files, "/tmp/unused", local_runner=True)
    transforms = p.to_runner_api().components.transforms.values()
    return {t.unique_name for t in transforms if t.spec.urn == GBK}


def test_pass_through_shuffles_only_read_tasks_and_ids():
    found = shuffles(passthrough_overrides())
    # Beam's file sinks group the names of the files their bundles wrote, to finalize them
    found = {name for name in found if not name.endswith("/WriteImpl/GroupByKey")}
    assert all(name.startswith(("ReadDocuments/", "Validate/GroupIds")) for name in found), found
    assert any(name.startswith("Validate/GroupIds") for name in found)


def test_index_joins_the_kept_ids_when_a_later_stage_can_reject():
    assert any(name.startswith("WriteDedupIndex/JoinKept") for name in shuffles([]))
    mixed = passthrough_overrides() + ["tokenize.enabled=true", "mix.enabled=true", "mix.targets={web: 1.0}"]
    mixed.append("output.dedup_index=true")  # dedup is off: asked for explicitly
    assert any(name.startswith("WriteDedupIndex/JoinKept") for name in shuffles(mixed))


def test_full_run_shuffles_no_document_in_dedup_and_flattens_no_rejected_record():
    """On the local runner every shuffle and every runner-executed Flatten lives in the driver: dedup
    groups only keys of documents parked in files, and each stage writes its own rejected records."""
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    p = beam.Pipeline()
    build_pipeline(p, load_config(None, []), files, "/tmp/unused", local_runner=True)
    names = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    for stage in ("dedup_exact", "dedup_near"):
        assert f"{stage}/Decide" in names  # parked files read back and decided in place
    assert "dedup_exact/KeepSmallestId" not in names  # the grouping of whole documents
    # near dedup joins its clusters' roots with the parked documents' (count, file), not the documents
    assert "dedup_near/JoinRoots/CoGroupByKeyImpl/Tag[info]" in names
    assert not any(n.startswith("dedup_near/JoinRoots") and "doc" in n for n in names)
    assert not any(n.startswith(("AllRejected", "WriteRejected/All")) for n in names)
    assert {"WriteRejected/language/Write", "WriteRejected/dedup_exact/Write"} <= names
