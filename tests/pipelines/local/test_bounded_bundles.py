"""The local runner cuts every stage input into bounded bundles: same output, bounded worker input."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam import coders
from apache_beam.coders.coder_impl import create_InputStream, create_OutputStream
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import execution
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.local import bounded_bundles
from corpusforge.pipelines.local.bounded_bundles import (
    BoundedBundlesFnApiRunner,
    _bundles,
    bounded_bundles_supported,
)
from corpusforge.pipelines.local.runner import LocalRunner, local_options
from tests.helpers import SAMPLE_RUN_SETTINGS, run_cli, table_rows


def test_this_beam_has_what_the_bounded_bundles_need():
    assert bounded_bundles_supported()


def _list_buffer(values_per_chunk: list[list[bytes]]) -> execution.ListBuffer:
    """A ListBuffer of encoded chunks, as the runner holds a stage's output (nested bytes values)."""
    impl = coders.BytesCoder().get_impl()
    buffer = execution.ListBuffer(impl)
    for values in values_per_chunk:
        out = create_OutputStream()
        for v in values:
            impl.encode_to_stream(v, out, True)
        buffer.append(out.get())
    return buffer


def _decoded(bundles: list[dict[str, list[bytes]]], name: str) -> list[bytes]:
    impl = coders.BytesCoder().get_impl()
    values = []
    for bundle in bundles:
        for chunk in bundle[name]:
            stream = create_InputStream(chunk)
            while stream.size() > 0:
                values.append(impl.decode_from_stream(stream, True))
    return values


def test_a_list_input_is_cut_into_bundles_of_bounded_size_and_nothing_is_lost():
    values = [bytes([i % 251]) * (100 + i) for i in range(400)]
    buffer = _list_buffer([values[i : i + 10] for i in range(0, 400, 10)])  # 40 chunks of ~1.5-5.5 kB
    bundles = _bundles({"in": buffer}, workers=2, bundle_bytes=8000)
    sizes = [sum(map(len, b["in"])) for b in bundles]
    assert len(bundles) >= 15 and max(sizes) <= 8000 + 5600  # at most one chunk over the bound
    assert sorted(_decoded(bundles, "in")) == sorted(values)


def test_a_small_input_is_still_spread_over_the_workers():
    values = [b"v%d" % i for i in range(100)]
    bundles = _bundles({"in": _list_buffer([values])}, workers=2, bundle_bytes=64 << 20)
    assert len(bundles) == 2 * bounded_bundles.BUNDLES_PER_WORKER
    assert sorted(_decoded(bundles, "in")) == sorted(values)


def test_every_bundle_names_every_input_even_when_it_holds_none_of_its_data():
    bundles = _bundles({"a": _list_buffer([[b"x" * 100]]), "b": execution.ListBuffer(None)}, 2, 1000)
    assert all(set(b) == {"a", "b"} and b["b"] == [] for b in bundles)
    assert _decoded(bundles, "a") == [b"x" * 100]
    assert _bundles({"a": execution.ListBuffer(None)}, 2, 10) == [{"a": []}]


class _CountBundles(beam.DoFn):
    def start_bundle(self) -> None:
        Metrics.counter("test", "bundles").inc()

    def process(self, element):  # noqa: ANN001, ANN201
        yield element


# The cutting is the driver's (BoundedBundleManager splits a stage's input by the number of worker
# handlers the runner holds): with the in-memory running mode and two workers the runner holds two
# in-process handlers and cuts exactly as for two worker processes (same bundle counts, measured),
# without starting two SDK worker processes per pipeline (~2.5 CPU s each). The sample through the
# CLI with tiny bundles on two worker processes (below) keeps the multi-process path under test.
TWO_IN_PROCESS_WORKERS = ["--direct_running_mode=in_memory"]


def _bundles_seen(monkeypatch, bundle_bytes: int, workers: int) -> int:
    """Runs a GroupByKey and the stage after it; checks the groups; returns that stage's bundles."""
    monkeypatch.setattr(BoundedBundlesFnApiRunner, "bundle_bytes", bundle_bytes)
    pipeline = beam.Pipeline(runner=LocalRunner(), options=local_options(workers, TWO_IN_PROCESS_WORKERS))
    groups = (
        pipeline
        | beam.Create([(i % 97, i) for i in range(5000)])
        | beam.GroupByKey()  # a shuffled input: the stage after it is cut by key groups
        | beam.ParDo(_CountBundles())
        | beam.Map(lambda kv: (kv[0], sorted(kv[1])))
    )
    assert_that(groups, equal_to([(k, list(range(k, 5000, 97))) for k in range(97)]))
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("bundles"))["counters"]
    return sum(c.committed for c in counters)


@pytest.mark.slow  # multi-process pipeline runs / the whole dev corpus
def test_a_grouped_input_is_processed_in_many_bundles_with_the_same_result(monkeypatch):
    monkeypatch.setattr(bounded_bundles, "VALUES_PER_PIECE", 50)
    assert _bundles_seen(monkeypatch, bundle_bytes=500, workers=2) >= 20
    # big bundles: a few per worker, so that the two share the work (greedy packing may add one)
    assert (
        _bundles_seen(monkeypatch, bundle_bytes=64 << 20, workers=2)
        <= 2 * bounded_bundles.BUNDLES_PER_WORKER + 1
    )


@pytest.mark.slow
def test_the_sample_gives_the_same_output_with_tiny_bundles(sample_run, monkeypatch, tmp_path):
    default, tiny = sample_run, tmp_path / "tiny"  # the shared two-worker run has the default bundles
    monkeypatch.setattr(BoundedBundlesFnApiRunner, "bundle_bytes", 2_000)
    monkeypatch.setattr(bounded_bundles, "VALUES_PER_PIECE", 3)
    assert run_cli(tiny, *SAMPLE_RUN_SETTINGS, workers=2) == 0
    for folder in ("documents", "rejected", "sequences"):
        assert table_rows(tiny / folder) == table_rows(default / folder), folder
    # That the cutting really happens is counted above (>= 20 bundles for a grouped input). The
    # documents/ file count no longer shows it: dedup parks documents in files and writes them per
    # parked file, whatever the bundles before it were.


class _Recorder:
    """Collects what the runner reports, like corpusforge.pipelines.local.progress.Progress does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def bundle_done(self, fused_name: str, deltas: dict) -> None:
        self.calls.append((fused_name, deltas))


@pytest.mark.slow  # multi-process pipeline runs / the whole dev corpus
def test_progress_is_reported_after_every_bundle_and_adds_up(monkeypatch):
    from corpusforge.transforms.base import StageCounters

    class _Count(beam.DoFn):
        def setup(self) -> None:
            self.counters = StageCounters("normalize")

        def process(self, element):  # noqa: ANN001, ANN201
            self.counters.inc("in")
            yield element

    monkeypatch.setattr(BoundedBundlesFnApiRunner, "bundle_bytes", 400)
    recorder = _Recorder()
    pipeline = beam.Pipeline(
        runner=LocalRunner(progress=recorder), options=local_options(2, TWO_IN_PROCESS_WORKERS)
    )
    _ = pipeline | beam.Create([(i % 50, i) for i in range(2000)]) | beam.GroupByKey() | beam.ParDo(_Count())
    pipeline.run().wait_until_finish()
    counted = [d[("normalize", "in")] for _, d in recorder.calls if ("normalize", "in") in d]
    assert len(counted) > 2 and sum(counted) == 50  # one report per bundle, none counted twice


def test_a_bundle_with_no_element_and_no_timer_has_nothing_to_do():
    empty, full = execution.ListBuffer(None), _list_buffer([[b"x"]])
    assert bounded_bundles.nothing_to_do({"a": empty, "b": execution.ListBuffer(None)}, {})
    assert not bounded_bundles.nothing_to_do({"a": empty, "b": full}, {})
    assert not bounded_bundles.nothing_to_do({"a": empty}, {("t", "timers"): full})  # a timer fires
    kv = coders.TupleCoder([coders.BytesCoder(), coders.BytesCoder()])
    grouping = execution.GroupingBuffer(kv, kv, beam.transforms.core.Windowing(beam.window.GlobalWindows()))
    assert bounded_bundles.nothing_to_do({"g": grouping}, {})


@pytest.mark.slow  # multi-process pipeline runs
def test_a_stage_whose_input_is_empty_is_not_sent_to_a_worker():
    """The star rounds of near dedup run empty on every small graph: a stage with no input element
    costs no worker round trip (its DoFns are never set up, no bundle starts), and the answer is the
    same (nothing in, nothing out), while a stage with input still runs."""
    pipeline = beam.Pipeline(runner=LocalRunner(), options=local_options(2, TWO_IN_PROCESS_WORKERS))
    keyed = pipeline | beam.Create([(1, "a"), (2, "b")])
    nothing = (
        keyed
        | "NoneKept" >> beam.Filter(lambda kv: False)
        | "GroupNone" >> beam.GroupByKey()
        | "CountEmpty" >> beam.ParDo(_CountBundles())
    )
    some = keyed | "GroupSome" >> beam.GroupByKey() | "Count" >> beam.ParDo(_CountBundles())
    assert_that(nothing, equal_to([]), label="nothing")
    assert_that(some | beam.Keys(), equal_to([1, 2]), label="some")
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name("bundles"))["counters"]
    by_step = {c.key.step: c.committed for c in counters}
    assert not any("CountEmpty" in step for step in by_step), by_step
    assert sum(n for step, n in by_step.items() if step.startswith("Count")) >= 1, by_step
