"""Progress while a local run goes: which stage is running and the counts so far.

The local runner (Beam's FnApiRunner) runs the fused stages of the graph one bundle at a time on
the driver's thread, and hands back each bundle's metric deltas. :class:`ProgressFnApiRunner` hooks
that one point (``_execute_bundle``) to keep running totals of the ``corpusforge.*`` counters and
tell a :class:`Progress` about them; a heartbeat thread logs a line at least every
``report.progress_every_s`` seconds, so a long bundle still shows the run is alive. Other runners
(Dataflow, Flink, Spark) have their own UIs and get the start and end lines only.

The hook uses a private FnApiRunner method; if a Beam release renames it, progress degrades to the
heartbeat and nothing else changes.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from corpusforge.pipelines.build import LABEL_STEPS
from corpusforge.pipelines.local.bounded_bundles import BoundedBundlesFnApiRunner
from corpusforge.transforms.base import NAMESPACE_PREFIX

LOG = logging.getLogger("corpusforge.progress")


# Top-level transform labels of build.py that are not stage names (build.py owns them).
ALIASES = LABEL_STEPS
_APPLIED = re.compile(r"ref_AppliedPTransform_([^()+]+)")
_PCOLL_OP = re.compile(r"\(([A-Za-z][^()/+]*)/")


def stages_in(fused_name: str, known: Iterable[str]) -> list[str]:
    """Our stages (or ``write``) at work in a fused Beam stage, in graph order.

    Fused names join transforms like ``ref_AppliedPTransform_normalize-Apply-ParDo-_ApplyStageFn-_37``
    (the label path with ``/`` turned into ``-``) and ``(Validate/GroupById/Read)``.
    """
    labels = []
    for m in _APPLIED.finditer(fused_name):
        raw = m.group(1)
        labels.append(raw.split("-", 1)[0] if "-" in raw else re.sub(r"_\d+$", "", raw))
    labels += _PCOLL_OP.findall(fused_name)
    known = list(known)
    found: list[str] = []
    for label in labels:
        stage = ALIASES.get(label, label)
        if (stage in known or stage in ("output", "write")) and stage not in found:
            found.append(stage)
    order = {name: i for i, name in enumerate([*known, "output", "write"])}
    return sorted(found, key=order.__getitem__)


def process_started_at() -> float:
    """When this process started (epoch seconds): interpreter start-up and imports count towards a
    run's start-up. Read from ``/proc`` (Linux); elsewhere, the time this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


_IMPORTED_AT = time.time()


class Progress:
    """Running totals per stage and the line a user sees. Thread-safe; the clock is injectable.

    ``first_stage_at`` (epoch seconds) is when the first stage was seen running: the first bundle
    that reported corpusforge counters came back from a worker, which means the graph was
    translated, the workers started and set up that stage's heavy objects, and records went
    through it. The run's ``startup_s`` in stats.json is measured up to this moment; on a loaded
    machine ``first_stage_cpu_s`` (the driver's CPU time by then) says more than the wall clock.
    """

    MIN_GAP_S = 1.0  # a stage change is logged unless a line went out less than this long ago

    def __init__(
        self,
        stages: list[str],
        every_s: float = 30.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stages = stages
        self.every_s = every_s
        self.log = log or LOG.info
        self.clock = clock
        self.started = clock()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.current: list[str] = []
        self._last_line = float("-inf")  # the first stage change is always logged
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None
        self.first_stage_at: float | None = None
        self.first_stage_cpu_s: float | None = None  # the driver's CPU time by then (all its threads)

    def bundle_done(self, fused_name: str, deltas: dict[tuple[str, str], int]) -> None:
        """Add one bundle's counter deltas; log when the running stage changes or time has passed."""
        with self._lock:
            if any(deltas.values()) and self.first_stage_at is None:
                self.first_stage_at = time.time()
                self.first_stage_cpu_s = time.process_time()
            for (stage, counter), n in deltas.items():
                self.counts[stage][counter] += n
            now_stages = stages_in(fused_name, self.stages) or self.current
            changed = now_stages != self.current
            self.current = now_stages
            due = self.every_s > 0 and self.clock() - self._last_line >= self.every_s
        if (changed and self.clock() - self._last_line >= self.MIN_GAP_S) or due:
            self.emit()

    def line(self) -> str:
        with self._lock:
            elapsed = self.clock() - self.started
            parts = []
            for name in self.stages:
                c = self.counts.get(name)
                if c and c.get("in"):
                    rejected = sum(v for k, v in c.items() if k.startswith("rejected:"))
                    parts.append(
                        f"{name} {c['in']:,} in/{c.get('kept', 0):,} kept"
                        + (f"/{rejected:,} rej" if rejected else "")
                    )
            running = (
                "running: " + (", ".join(self.current) or "starting")
                if not self._finished
                else "pipeline done"
            )
        return f"[{elapsed:6.0f}s] {running}" + (f" | {'; '.join(parts)}" if parts else "")

    def emit(self) -> None:
        with self._lock:
            self._last_line = self.clock()
        self.log(self.line())

    def _beat(self) -> None:
        while not self._stop.wait(min(self.every_s, 5.0)):
            with self._lock:
                due = self.clock() - self._last_line >= self.every_s
            if due:
                self.emit()

    def __enter__(self) -> Progress:
        if self.every_s > 0:
            self._thread = threading.Thread(target=self._beat, name="corpusforge-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if exc_type is None and any(self.counts.values()):  # the totals as the runner saw them
            self._finished = True
            self.emit()


def counter_deltas(monitoring_infos: Any) -> dict[tuple[str, str], int]:
    """``{(stage, counter): delta}`` of the corpusforge user counters in one bundle's results."""
    from apache_beam.runners.portability import portable_metrics

    counters = portable_metrics.from_monitoring_infos(monitoring_infos, True)[0]
    out: dict[tuple[str, str], int] = defaultdict(int)
    for key, value in counters.items():
        ns = key.metric.namespace
        if ns.startswith(NAMESPACE_PREFIX):
            out[(ns[len(NAMESPACE_PREFIX) :], key.metric.name)] += int(value or 0)
    return dict(out)


class ProgressFnApiRunner(BoundedBundlesFnApiRunner):
    """The local runner (bounded bundles), reporting each finished stage's counters to a :class:`Progress`."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.progress = progress
        self.on_bundle = self._report  # bounded bundles: a progress update after every bundle

    def _report(self, stage_name: str, response: Any) -> None:
        try:
            self.progress.bundle_done(stage_name, counter_deltas(response.process_bundle.monitoring_infos))
        except Exception:  # progress must never break a run
            LOG.debug("progress update failed", exc_info=True)

    def _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input):  # noqa: ANN001
        result = super()._execute_bundle(runner_execution_context, bundle_context_manager, bundle_input)
        if not self.uses_bounded_bundles(bundle_context_manager):  # else reported bundle by bundle
            self._report(bundle_context_manager.stage.name, result)
        return result
