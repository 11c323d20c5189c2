"""The idle-time import of presidio's module: not before the worker has worked, then as soon as it
goes quiet; never twice, never when the module is already there."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from corpusforge.transforms.pii import prefetch


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A module that is not imported yet, on the path."""
    name = f"cf_prefetch_probe_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(prefetch, "POLL_S", 0.01)
    yield name
    sys.modules.pop(name, None)


def _burn(cpu_s: float) -> None:
    """Use ``cpu_s`` seconds of this process's CPU (the watcher's measure of work)."""
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass


def test_idle_share_of_one_core():
    assert prefetch.idle_now(0.01, 0.2) and not prefetch.idle_now(0.05, 0.2) and not prefetch.idle_now(0, 0)


def test_the_import_waits_for_work_then_comes_when_the_process_goes_quiet(module):
    done: list[bool] = []
    watcher = threading.Thread(target=lambda: done.append(prefetch._wait_then_import(module, 0.3)))
    watcher.start()
    time.sleep(0.3)  # quiet, but nothing was done yet: start-up's idle wait does not count
    assert module not in sys.modules
    _burn(0.25)  # short of the work it waits for
    assert module not in sys.modules
    _burn(0.25)
    watcher.join(timeout=10)  # then quiet: the import follows within a window
    assert done == [True] and sys.modules[module].VALUE == 42


def test_a_module_already_imported_is_left_alone(module, monkeypatch):
    __import__(module)
    monkeypatch.setattr(prefetch, "GIVE_UP_S", 5.0)
    assert prefetch._wait_then_import(module, 0.0) is False


def test_a_worker_that_never_works_gives_up(module, monkeypatch):
    monkeypatch.setattr(prefetch, "GIVE_UP_S", 0.2)
    assert prefetch._wait_then_import(module, 60.0) is False
    assert module not in sys.modules
