"""Bounded bundles for the local runner, so that a worker's memory does not grow with the corpus.

Beam's FnApiRunner hands each stage's whole input to its workers as one bundle per worker: with 100k
documents a worker receives one ~700 MB message and holds it while it works, and the faster worker
idles while the slower one finishes its half. Cluster runners bound their bundles; this module makes
the local runner do the same:

- each stage input is cut into bundles of at most about :data:`BUNDLE_BYTES`, and at least
  :data:`BUNDLES_PER_WORKER` per worker (a shuffled input is first cut into many small key-groups,
  then regrouped by their encoded size);
- one thread per worker process takes the next bundle when it is done with the previous one, pinned
  to its own worker, so memory per worker is one bundle and the work balances itself.

A stage whose every input is empty (and that has no timers to fire) is not sent to a worker at all:
no element means no ``process`` call, and no DoFn of the graph emits from ``start_bundle`` or
``finish_bundle`` without having seen an element (runners are free not to run empty bundles;
Dataflow does not), so the answer is the same, without the round trip and the worker's building
of the stage's operators. The unrolled star rounds of near dedup's connected components run empty
whenever the graph is small enough for the single-worker path (20 fused stages on every such run),
and so do the sinks of outputs a run does not produce (the unreadable-files list).

Stateful stages keep Beam's own handling (state is keyed; a key must stay on one worker), and so
does everything the runner does besides bundling. The FnApiRunner internals used here
(``_get_bundle_manager``, ``BundleManager``, the buffers' ``partition``) are private: if a Beam
upgrade changes them, :func:`bounded_bundles_supported` turns this off and the runner behaves as
Beam ships it.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

from apache_beam.metrics import monitoring_infos
from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.portability.fn_api_runner import execution, fn_runner

from corpusforge.pipelines.local.shutdown import fast_exit_environment, stop_workers_together

LOG = logging.getLogger(__name__)

# Encoded input per bundle. Small enough that a worker's memory stays flat (16 MB: worker peak 1.1 GB at
# 100k documents, against 1.3 GB with 32 MB bundles, and 6 % faster), big enough that the
# per-bundle cost (a request, start/finish_bundle of every DoFn, one output file per writer) is noise.
BUNDLE_BYTES = 16 << 20

# Bundles per worker at least (when the input is big enough to cut): work balances between workers
# that finish at different times, even for a stage whose whole input is smaller than one bundle.
BUNDLES_PER_WORKER = 4

# A shuffled input is first cut into pieces of about this many values before pieces are regrouped
# into bundles by size (its byte size is only known once encoded).
VALUES_PER_PIECE = 1000


def bounded_bundles_supported() -> bool:
    """Whether this Beam has the FnApiRunner internals the bounded bundles rely on."""
    return all(
        (
            hasattr(fn_runner.FnApiRunner, "_get_bundle_manager"),
            hasattr(fn_runner.BundleManager, "process_bundle"),
            hasattr(execution, "ListBuffer") and hasattr(execution.ListBuffer, "partition"),
            hasattr(execution, "GroupingBuffer") and hasattr(execution.GroupingBuffer, "partition"),
        )
    )


def _pieces(buffer: Any, workers: int, bundle_bytes: int) -> list[list[bytes]]:
    """``buffer`` cut into pieces (lists of encoded chunks), each at most about ``bundle_bytes``."""
    if isinstance(buffer, execution.ListBuffer):
        size = sum(len(chunk) for chunk in buffer)
        return buffer.partition(max(workers * BUNDLES_PER_WORKER, math.ceil(size / bundle_bytes)))
    table = getattr(buffer, "_table", None)
    if isinstance(buffer, execution.GroupingBuffer) and table is not None:
        values = sum(len(v) for v in table.values())
        n = max(1, min(len(table), max(workers * BUNDLES_PER_WORKER, math.ceil(values / VALUES_PER_PIECE))))
        return buffer.partition(n)
    return buffer.partition(workers)  # another buffer kind: Beam's own split


def _bundles(inputs: dict[str, Any], workers: int, bundle_bytes: int) -> list[dict[str, list[bytes]]]:
    """Bundles of at most about ``bundle_bytes`` each, and at least ``BUNDLES_PER_WORKER`` per worker
    when there is enough input to cut (every bundle names every input, maybe with no data)."""
    sized = {
        name: [(piece, sum(map(len, piece))) for piece in _pieces(buffer, workers, bundle_bytes)]
        for name, buffer in inputs.items()
    }
    total = sum(size for parts in sized.values() for _, size in parts)
    target = max(1, min(bundle_bytes, math.ceil(total / (workers * BUNDLES_PER_WORKER))))
    bundles: list[dict[str, list[bytes]]] = []
    for name, parts in sized.items():
        current: list[bytes] = []
        size = 0
        for piece, piece_size in parts:
            if current and size + piece_size > target:
                bundles.append({name: current})
                current, size = [], 0
            current.extend(piece)
            size += piece_size
        if current:
            bundles.append({name: current})
    if not bundles:
        bundles.append({})
    return [{name: bundle.get(name, []) for name in inputs} for bundle in bundles]


def _is_empty(buffer: Any) -> bool:
    """Whether a stage input holds no element (an element encodes to one byte at least)."""
    table = getattr(buffer, "_table", None)
    if isinstance(buffer, execution.GroupingBuffer) and table is not None:
        return not table
    try:
        return all(len(chunk) == 0 for chunk in buffer)
    except (TypeError, RuntimeError):  # a buffer kind that cannot be iterated (or a cleared one): run it
        return False


def nothing_to_do(inputs: dict[str, Any], fired_timers: Any) -> bool:
    """Whether a bundle has no input element and no timer: running it cannot produce anything."""
    if fired_timers and not all(_is_empty(t) for t in fired_timers.values()):
        return False
    return all(_is_empty(buffer) for buffer in inputs.values())


def _empty_result() -> tuple[Any, list[Any]]:
    """What a worker answers for a bundle that produced nothing and counted nothing."""
    response = beam_fn_api_pb2.InstructionResponse(process_bundle=beam_fn_api_pb2.ProcessBundleResponse())
    return response, []


class _PinnedContext:
    """The stage's bundle context with one worker only, so a thread's bundles go to its worker."""

    def __init__(self, context: Any, worker_handler: Any) -> None:
        self._context = context
        self.worker_handlers = [worker_handler]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class BoundedBundleManager(fn_runner.BundleManager):
    """Runs one stage input as bounded bundles, one thread per worker pulling the next bundle."""

    def __init__(
        self,
        bundle_context_manager: Any,
        progress_frequency: Any = None,
        cache_token_generator: Any = None,
        bundle_bytes: int = BUNDLE_BYTES,
        on_bundle: Callable[[str, Any], None] | None = None,
    ) -> None:
        super().__init__(
            bundle_context_manager, progress_frequency, cache_token_generator=cache_token_generator
        )
        self._bundle_bytes = bundle_bytes
        self._on_bundle = on_bundle  # (stage name, InstructionResponse) after each bundle

    def process_bundle(self, inputs, expected_outputs, fired_timers, expected_output_timers, dry_run=False):  # noqa: ANN001
        if not dry_run and nothing_to_do(dict(inputs), fired_timers):
            return _empty_result()
        context = self.bundle_context_manager
        handlers = context.worker_handlers
        bundles = _bundles(dict(inputs), len(handlers), self._bundle_bytes)
        todo: queue.Queue[tuple[int, dict[str, list[bytes]]]] = queue.Queue()
        for item in enumerate(bundles):
            todo.put(item)
        results: list[Any] = [None] * len(bundles)
        errors: list[BaseException] = []

        def work(handler: Any) -> None:
            manager = fn_runner.BundleManager(
                _PinnedContext(context, handler),
                self._progress_frequency,
                cache_token_generator=self._cache_token_generator,
            )
            while not errors:
                try:
                    index, bundle = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    # timers (if any) go with the first bundle, as Beam's parallel manager does
                    timers = fired_timers if index == 0 else {}
                    results[index] = manager.process_bundle(
                        bundle, expected_outputs, timers, expected_output_timers, dry_run
                    )
                    if self._on_bundle is not None:
                        self._on_bundle(context.stage.name, results[index][0])
                except BaseException as exc:  # re-raised on the caller's thread below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=work, args=(h,), daemon=True) for h in handlers[: len(bundles)]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return _merge(results)


def _merge(results: list[Any]) -> Any:
    """One ``(InstructionResponse, split results)`` for the stage, like Beam's parallel manager."""
    infos: list[Any] = []
    splits: list[Any] = []
    error = ""
    for response, split_results in results:
        infos.extend(response.process_bundle.monitoring_infos)
        splits.extend(split_results)
        error = error or response.error
    merged = beam_fn_api_pb2.InstructionResponse(
        process_bundle=beam_fn_api_pb2.ProcessBundleResponse(
            monitoring_infos=monitoring_infos.consolidate(infos)
        ),
        error=error,
    )
    return merged, splits


class BoundedBundlesFnApiRunner(fn_runner.FnApiRunner):
    """The FnApiRunner with bounded bundles for every stage that keeps no state."""

    bundle_bytes = BUNDLE_BYTES
    on_bundle: Callable[[str, Any], None] | None = None  # called after each bounded bundle
    warm_pool: Any = None  # a warm.WarmPool: the SDK workers' processes, started ahead

    def run_via_runner_api(self, pipeline_proto, options):  # noqa: ANN001, ANN201
        if self.warm_pool is not None:  # the graph's subprocess workers come from the pool
            from corpusforge.pipelines.local.warm_handler import use_warm_workers

            use_warm_workers(pipeline_proto, self.warm_pool)
        return super().run_via_runner_api(pipeline_proto, options)

    # Beam's run_pipeline sets the worker environment for multi-processing runs just before it
    # translates the graph; the property turns its worker command into the fast-exiting one.
    @property
    def _default_environment(self) -> Any:
        return self.__dict__.get("_corpusforge_environment")

    @_default_environment.setter
    def _default_environment(self, env: Any) -> None:
        self.__dict__["_corpusforge_environment"] = fast_exit_environment(env)

    def _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input):  # noqa: ANN001, ANN202
        # the run's worker handler manager is first reachable here: its workers then stop together
        stop_workers_together(getattr(runner_execution_context, "worker_handler_manager", None))
        return super()._execute_bundle(runner_execution_context, bundle_context_manager, bundle_input)

    @staticmethod
    def uses_bounded_bundles(bundle_context_manager: Any) -> bool:
        return bounded_bundles_supported() and not bundle_context_manager.stage.is_stateful()

    def _get_bundle_manager(self, bundle_context_manager):  # noqa: ANN001, ANN202
        if not self.uses_bounded_bundles(bundle_context_manager):
            return super()._get_bundle_manager(bundle_context_manager)
        return BoundedBundleManager(
            bundle_context_manager,
            self._progress_frequency,
            cache_token_generator=fn_runner.FnApiRunner.get_cache_token_generator(static=False),
            bundle_bytes=self.bundle_bytes,
            on_bundle=self.on_bundle,
        )
