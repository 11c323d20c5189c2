"""Import presidio on an SDK worker while the worker sits idle, before the pii stage needs it.

Why: the pii stage's engine module imports presidio (and spaCy under it), about 1 s of CPU on the
2-core machine, once per worker. Imported when the pii stage's DoFn is set up, it sits on the run's
critical path: the stage starts right after deduplication, on every worker at once. Earlier in the
run there are moments when a worker has nothing to do: the end of the pre-dedup chain (the faster
worker waits for the slower one's last bundle) and the dedup shuffles and their small stages,
which the local runner's driver executes. :class:`PrefetchEngine`, applied to a collection of the
first fused stage (validation's rejected records: usually none, so it costs nothing per record),
starts in its ``setup`` on every worker a daemon thread (:func:`when_idle`) that waits for the
worker to have done some work and then to go quiet, and imports the module then. Importing earlier
never changes a result.

Idle is judged by the process's own CPU time (all its threads): below :data:`IDLE_SHARE` of one core
over :data:`IDLE_WINDOW_S` (a busy worker on the shared machine at load 10 still gets 20-35 % of a
core). The thread first waits for :data:`BUSY_FIRST_S` of CPU, so that the moment the first stage is
set up does not count. If the stage needs the module before the thread took it, the stage imports it
as before (Python's import locks make the two wait for one import).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

LOG = logging.getLogger(__name__)

ENGINE_MODULE = "corpusforge.transforms.pii.engine"
# CPU seconds the worker spends before idleness counts: more than a warm worker's start-up (the
# language tables' preload ~1 s, its set-up and the first stage's, the decontamination index ~1 s)
BUSY_FIRST_S = 3.0
IDLE_WINDOW_S = 0.2  # how long the worker must stay quiet
IDLE_SHARE = 0.15  # of one core, over the window: below it the worker is idle
POLL_S = 0.05
GIVE_UP_S = 3600.0  # a worker that never goes quiet keeps the stage's own import

_started = threading.Lock()
_thread: threading.Thread | None = None


def idle_now(cpu_used: float, window: float, share: float = IDLE_SHARE) -> bool:
    """Whether ``cpu_used`` CPU seconds over ``window`` wall seconds is an idle process."""
    return window > 0 and cpu_used < share * window


def _wait_then_import(module: str, busy_first_s: float, clock=time.monotonic, cpu=time.process_time) -> bool:  # noqa: ANN001
    """Block until the process used ``busy_first_s`` of CPU and then stayed idle for
    :data:`IDLE_WINDOW_S`; import ``module``. False when it gave up or the module was already in."""
    start_cpu, deadline = cpu(), clock() + GIVE_UP_S
    while cpu() - start_cpu < busy_first_s:
        if module in sys.modules or clock() > deadline:
            return False
        time.sleep(POLL_S)
    window_start, window_cpu = clock(), cpu()
    while True:
        if module in sys.modules or clock() > deadline:
            return False
        time.sleep(POLL_S)
        now, used = clock(), cpu()
        if not idle_now(used - window_cpu, now - window_start):
            window_start, window_cpu = now, used  # busy again: the quiet window restarts
        elif now - window_start >= IDLE_WINDOW_S:
            break
    began = cpu()
    importlib.import_module(module)
    LOG.debug("pii: %s imported while the worker was idle (%.2f CPU s)", module, cpu() - began)
    return True


def _run(module: str, busy_first_s: float) -> None:
    try:
        _wait_then_import(module, busy_first_s)
    except Exception:  # noqa: BLE001 - the stage's own import reports a broken install
        LOG.debug("pii: the idle-time import of %s failed", module, exc_info=True)


def when_idle(module: str = ENGINE_MODULE, busy_first_s: float = BUSY_FIRST_S) -> threading.Thread:
    """Start (once per process) the daemon thread that imports ``module`` when the worker is idle;
    returns it."""
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(
                target=_run, args=(module, busy_first_s), name="pii-prefetch", daemon=True
            )
            _thread.start()
        return _thread


class _ArmFn(beam.DoFn):
    """Starts the waiting import in ``setup``; passes nothing on."""

    def __init__(self, module: str) -> None:
        self.module = module

    def setup(self) -> None:
        when_idle(self.module)

    def process(self, element: Any) -> Iterator[Any]:
        return iter(())


class PrefetchEngine(beam.PTransform):
    """Apply to a collection of the run's first fused stage: each worker that runs that stage
    imports the pii engine's module when it first goes idle after some work (see the module)."""

    def __init__(self, module: str = ENGINE_MODULE) -> None:
        super().__init__()
        self.module = module

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return pcoll | "Arm" >> beam.ParDo(_ArmFn(self.module))
