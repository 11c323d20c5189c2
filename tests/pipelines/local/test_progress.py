"""Progress lines (pure, with a fake clock) and the pass-through length observation transform."""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.local import progress as progress_module
from corpusforge.pipelines.local.progress import Progress, process_started_at, stages_in
from corpusforge.pipelines.report.stats import counters_from_result
from corpusforge.schemas.records import Document
from corpusforge.transforms.io.observe import LENGTH_EDGES, ObserveOutput
from tests.helpers import local_test_pipeline

STAGES = ["read", "validate", "normalize", "dedup_exact"]


def test_stages_in_reads_fused_beam_stage_names():
    fused = (
        "((((((((((Validate/GroupById/Read)+(ref_AppliedPTransform_Validate-ResolveIds-ParDo-_ResolveIdsFn-_33))"
        "+(ref_AppliedPTransform_normalize-Apply-ParDo-_ApplyStageFn-_37))+(Validate/Rejected/Write/1))"
        "+(ref_AppliedPTransform_ObserveOutput-Observe-ParDo-_ObserveFn-_40))"
    )
    assert stages_in(fused, STAGES) == ["validate", "normalize", "output"]
    assert stages_in(
        "(ref_AppliedPTransform_dedup_exact-Key_12)+(ref_AppliedPTransform_UnreadableJson_79)", STAGES
    ) == ["dedup_exact", "write"]
    assert stages_in("(ref_PCollection_PCollection_33/Read)", STAGES) == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_logs_stage_changes_and_running_totals():
    clock, lines = FakeClock(), []
    p = Progress(STAGES, every_s=30, log=lines.append, clock=clock)
    clock.now = 2
    p.bundle_done("(ref_AppliedPTransform_ReadDocuments-Files_4)", {("read", "in"): 10, ("read", "kept"): 10})
    clock.now = 2.5  # same stage again, soon: quiet
    p.bundle_done("(ref_AppliedPTransform_ReadDocuments-Files_4)", {("read", "in"): 5, ("read", "kept"): 5})
    clock.now = 4
    p.bundle_done(
        "(ref_AppliedPTransform_Validate-Parse_9)",
        {("validate", "in"): 15, ("validate", "kept"): 12, ("validate", "rejected:invalid:empty"): 3},
    )
    assert len(lines) == 2
    assert lines[0].endswith("running: read | read 10 in/10 kept")
    assert "running: validate | read 15 in/15 kept; validate 15 in/12 kept/3 rej" in lines[1]
    clock.now = 40  # no change, but every_s has passed: a heartbeat line with the same totals
    p.bundle_done("(ref_AppliedPTransform_Validate-Parse_9)", {})
    assert len(lines) == 3 and lines[2].startswith("[    40s]")


def test_first_stage_running_is_the_first_bundle_with_counts():
    p = Progress(STAGES, every_s=0, log=lambda line: None)
    p.bundle_done("(ref_PCollection_PCollection_3/Read)", {})  # a bundle of Beam's own: not a stage
    p.bundle_done("(ref_AppliedPTransform_ReadDocuments-Files_4)", {("read", "in"): 0})
    assert p.first_stage_at is None
    before = time.time()
    p.bundle_done("(ref_AppliedPTransform_ReadDocuments-Files_4)", {("read", "in"): 3})
    first = p.first_stage_at
    assert first is not None and before <= first <= time.time() and p.first_stage_cpu_s > 0
    p.bundle_done("(ref_AppliedPTransform_Validate-Parse_9)", {("validate", "in"): 3})
    assert p.first_stage_at == first  # later stages do not move it


def test_process_start_is_before_now():
    started = process_started_at()
    assert time.time() - 3600 * 24 * 30 < started <= progress_module._IMPORTED_AT <= time.time()


def test_heartbeat_thread_and_final_line():
    lines: list[str] = []
    with Progress(STAGES, every_s=0.05, log=lines.append) as p:
        time.sleep(0.3)
        p.counts["read"]["in"] += 3
    assert any("running: starting" in line for line in lines)
    assert "pipeline done" in lines[-1] and "read 3 in" in lines[-1]


def test_observe_output_passes_documents_through_and_counts_lengths():
    docs = [
        Document(id="a", text="x" * 10),
        Document(id="b", text="y" * 700),
        Document(id="c", text="z" * 150),
    ]
    p = local_test_pipeline()
    out = p | beam.Create(docs) | ObserveOutput("output_test")
    assert_that(out, equal_to(docs))
    result = p.run()
    result.wait_until_finish()
    counters = counters_from_result(result)["output_test"]
    assert counters["in"] == counters["kept"] == 3 and counters["chars_kept"] == 860
    assert {k: v for k, v in counters.items() if k.startswith("hist:")} == {
        "hist:chars:0.0": 1,
        "hist:chars:500.0": 1,
        "hist:chars:100.0": 1,
    }
    assert list(LENGTH_EDGES) == sorted(LENGTH_EDGES)
