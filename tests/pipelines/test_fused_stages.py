"""How many fused stages the local runner runs for the default graph's writes.

The FnApiRunner runs fused stages one after the other, each a round trip to every worker (20-50 ms
on the 2-core machine), most of them after the last document stage. The rejected records of every
stage are finalized by one shared step (``transforms/io/part_files.py``), not by one Beam sink per
stage (four fused stages each).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import fn_runner

from corpusforge.pipelines.build import WRITE_REJECTED, build_pipeline
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
from tests.helpers import SAMPLE_DIR


def fused_stages(overrides: list[str]) -> list[list[str]]:
    """The transform names of each fused stage the local runner makes of the CLI's graph (buffer
    reads and writes left out)."""
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    p = beam.Pipeline()
    build_pipeline(p, load_config(None, overrides), files, "/tmp/unused", local_runner=True)
    _, stages = fn_runner.FnApiRunner().create_stages(p.to_runner_api())
    return [
        [t.unique_name for t in s.transforms if not t.unique_name.startswith("ref_PCollection")]
        for s in stages
    ]


def test_rejected_records_of_every_stage_are_finalized_by_one_stage():
    stages = fused_stages([])
    writes_only = [s for s in stages if s and all(n.startswith(f"{WRITE_REJECTED}/") for n in s)]
    # one Flatten of the written files' names feeding the finalize (thirteen sinks were 39 such stages)
    assert len(writes_only) <= 2, writes_only
    # each stage's rows are still written inside the stage that rejected them (nothing waits in the driver)
    for stage in ("language", "dedup_near", "pii"):
        (home,) = [s for s in stages if f"{WRITE_REJECTED}/Files/{stage}/WriteFiles" in s]
        assert any(n.startswith(f"{stage}/") for n in home), (stage, home)


def test_presidio_is_prefetched_from_the_first_stage_only_when_pii_runs():
    """The idle-time import of presidio (transforms/pii/prefetch.py) is armed in the stage that
    reads and validates, so every worker that reads arms it, long before the pii stage."""
    stages = fused_stages([])
    (home,) = [s for s in stages if "PrefetchPii/Arm" in s]
    assert any(n.startswith("Validate/") for n in home) and any(n.startswith("normalize/") for n in home)
    assert not any("PrefetchPii/Arm" in s for s in fused_stages(["pii.enabled=false"]))


def test_every_output_is_finalized_by_the_one_step_of_the_rejected_records():
    """documents/, dedup_index/, sequences/bucket=N/ and the unreadable list join the rejected
    records' finalize on the local runner: no Beam sink of their own (each was three or four fused
    stages: 75 fused stages in all were 45), and each output is written inside the stage that makes it."""
    stages = fused_stages([])
    sink_only = [
        s
        for s in stages
        if s
        and all(
            n.startswith(
                (
                    "WriteDocuments",
                    "WriteDedupIndex",
                    "WriteSequences",
                    "WriteUnreadable",
                    "UnreadableJson",
                    f"{WRITE_REJECTED}/Files",
                )
            )
            for n in s
        )
    ]
    assert len(sink_only) <= 4, sink_only  # the finalize, the Flatten of names, the index's join
    names = [n for s in stages for n in s]
    assert not any(
        n.startswith(("WriteDocuments/Write/", "WriteSequences/Write512", "WriteUnreadable/Write/"))
        for n in names
    )
    (home,) = [s for s in stages if f"{WRITE_REJECTED}/Files/documents/WriteFiles" in s]
    assert any(n.startswith("WriteDocuments/ToRow") for n in home) and any(
        n.startswith("bias/") for n in home
    )
    (home,) = [s for s in stages if "WriteSequences/WriteFiles" in s]
    assert any(n.startswith("bucket/") for n in home), home
    assert len(stages) <= 50, len(stages)


def test_near_dedup_runs_two_shuffles_from_its_clusters_to_its_decisions():
    """A cluster's credits and decisions need one join by node and one group by root (a join of
    counts, a sum and a join of clusters were three), with no Flatten before the side input."""
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    p = beam.Pipeline()
    build_pipeline(p, load_config(None, []), files, "/tmp/unused", local_runner=True)
    transforms = p.to_runner_api().components.transforms.values()
    shuffles = sorted(
        t.unique_name.removeprefix("dedup_near/")
        for t in transforms
        if t.spec.urn == "beam:transform:group_by_key:v1" and t.unique_name.startswith("dedup_near/")
    )
    after_clusters = [
        n
        for n in shuffles
        if not n.startswith(("GroupByBand", "JoinFingerprints", "GroupBucketMembers", "Clusters/"))
    ]
    assert after_clusters == ["GroupByRoot", "JoinRoots/CoGroupByKeyImpl/GroupByKey"], shuffles
    flattens = [t.unique_name for t in transforms if t.spec.urn == "beam:transform:flatten:v1"]
    assert not any(
        n.startswith("dedup_near/") and not n.startswith(("dedup_near/Join", "dedup_near/Clusters/"))
        for n in flattens
    ), flattens
