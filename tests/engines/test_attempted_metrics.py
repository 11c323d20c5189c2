"""Flink's and Spark's job servers report counters as attempted only (committed is None): stats.json
must read them all the same, or a run on those engines would report zero documents everywhere."""

from __future__ import annotations

from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metricbase import MetricName

from corpusforge.pipelines.report.stats import counters_from_result
from corpusforge.transforms.base import NAMESPACE_PREFIX


class _Metrics:
    def __init__(self, counters):
        self.counters = counters

    def query(self, _filter=None):
        return {"counters": self.counters, "distributions": [], "gauges": []}


class _Result:
    def __init__(self, counters):
        self._metrics = _Metrics(counters)

    def metrics(self):
        return self._metrics


def _counter(stage: str, name: str, committed, attempted, step: str = "s1") -> MetricResult:
    return MetricResult(MetricKey(step, MetricName(NAMESPACE_PREFIX + stage, name)), committed, attempted)


def test_attempted_counters_count_when_committed_is_unknown():
    result = _Result(
        [
            _counter("validate", "in", None, 70),
            _counter("validate", "kept", None, 40, step="s1"),
            _counter("validate", "kept", None, 15, step="s2"),  # the same counter from two steps adds up
            _counter("language", "in", 55, 99),  # committed wins where a runner has it
            MetricResult(MetricKey("s1", MetricName("beam", "not_ours")), None, 5),
        ]
    )
    assert counters_from_result(result) == {"validate": {"in": 70, "kept": 55}, "language": {"in": 55}}
