"""The local runner's workers stop together and skip the interpreter's final clean-up: every worker
hears "no more work" before the runner waits for the first to exit, and Beam's worker command is
swapped for corpusforge's fast-exiting one (and nothing else is)."""

from __future__ import annotations

import sys

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner.worker_handlers import BeamFnControlServicer
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.environments import EmbeddedPythonEnvironment, SubprocessSDKEnvironment

from corpusforge.pipelines.local.bounded_bundles import BoundedBundlesFnApiRunner
from corpusforge.pipelines.local.runner import LocalRunner, local_options
from corpusforge.pipelines.local.shutdown import WORKER_MODULE, fast_exit_environment, stop_workers_together

DONE = BeamFnControlServicer._DONE_MARKER


class _Conn:
    def __init__(self, log: list[str], name: str, started: bool = True) -> None:
        self.log, self.name = log, name
        self._state = (
            BeamFnControlServicer.STARTED_STATE if started else BeamFnControlServicer.UNSTARTED_STATE
        )

    def push(self, req: object) -> None:
        assert req is DONE
        self.log.append(f"done->{self.name}")


class _Handler:
    def __init__(self, conn: _Conn) -> None:
        self.control_conn = conn


class _Manager:
    """What Beam's WorkerHandlerManager offers close_all: handlers per environment; closing one
    waits for that worker (recorded here)."""

    def __init__(self, log: list[str], conns: list[_Conn]) -> None:
        self.log = log
        self._cached_handlers = {"env": [_Handler(c) for c in conns]}

    def close_all(self) -> None:
        for handler in self._cached_handlers["env"]:
            self.log.append(f"wait {handler.control_conn.name}")


def test_every_worker_is_told_before_the_first_wait():
    log: list[str] = []
    manager = _Manager(log, [_Conn(log, "w1"), _Conn(log, "w2"), _Conn(log, "never-started", started=False)])
    stop_workers_together(manager)
    stop_workers_together(manager)  # idempotent: still one announcement per worker
    manager.close_all()
    assert sorted(log[:2]) == ["done->w1", "done->w2"]  # the serving workers, in any order, first
    assert log[2:] == ["wait w1", "wait w2", "wait never-started"]


def test_a_manager_without_the_internals_is_left_as_beam_ships_it():
    class Other:
        def close_all(self) -> None:
            pass

    other = Other()
    stop_workers_together(other)
    stop_workers_together(None)
    assert "close_all" not in vars(other)


def test_only_beams_own_worker_command_is_swapped():
    beam_cmd = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"
    swapped = fast_exit_environment(SubprocessSDKEnvironment.from_command_string(beam_cmd))
    assert swapped.command_string == f"{sys.executable} -m {WORKER_MODULE}"
    own = SubprocessSDKEnvironment.from_command_string("my-worker --flag")
    assert fast_exit_environment(own) is own
    embedded = EmbeddedPythonEnvironment.default()
    assert fast_exit_environment(embedded) is embedded
    runner = BoundedBundlesFnApiRunner()
    runner._default_environment = SubprocessSDKEnvironment.from_command_string(beam_cmd)
    assert runner._default_environment.command_string.endswith(WORKER_MODULE)


@pytest.mark.slow  # starts two SDK worker processes
def test_a_two_worker_run_with_the_fast_exiting_workers_gives_every_result():
    with beam.Pipeline(runner=LocalRunner(), options=local_options(2)) as p:
        squares = p | beam.Create(range(200)) | beam.Map(lambda x: x * x) | beam.combiners.ToList()
        assert_that(squares | beam.Map(sorted), equal_to([[x * x for x in range(200)]]))
