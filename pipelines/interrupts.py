"""How a run that does not finish ends: one clear line, not a gRPC traceback.

Two ways a local run stops early and what Beam alone shows for them:

* Ctrl-C or SIGTERM: a ``KeyboardInterrupt`` raised somewhere inside the FnApiRunner, followed by the
  tracebacks of its gRPC threads as the workers go away. :func:`handle_signals` turns both signals
  into :class:`Interrupted`; the CLI then stops its SDK worker processes and exits at once (128 +
  the signal number: 130 for SIGINT, 143 for SIGTERM) without waiting for Beam's threads.
* An SDK worker process killed from outside (the kernel's OOM killer sends SIGKILL): the worker's
  thread dies with "Worker subprocess exited with return code 137" and the runner either fails with
  "Channel closed prematurely" or waits for the lost bundle for ever. :func:`watch_workers` records
  that exit status (and sends every thread traceback to the log file instead of the terminal) and
  raises :class:`WorkerDied` in the main thread, so the CLI stops the run and says which signal
  ended the worker, with "out of memory?" for SIGKILL.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

_WORKER_EXIT = re.compile(r"Worker subprocess exited with return code (-?\d+)")
_LOG = logging.getLogger("apache_beam.threads")  # a library's line: it goes to beam.log
_dead_workers: list[int] = []  # exit statuses of SDK workers that died during this run


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; a BaseException, like KeyboardInterrupt, so no handler of
    ``Exception`` swallows it on the way up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class WorkerDied(BaseException):
    """An SDK worker process exited during the run. Beam's local runner does not fail the run then:
    it starts another worker and waits for the lost bundle for ever, so the CLI must stop it."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status

    @property
    def signum(self) -> int | None:
        """The signal that ended the worker: a negative status is one (``subprocess``), and so is
        128 + N, as seen through the ``/bin/sh -c`` that Beam starts each worker with."""
        if self.status < 0:
            return -self.status
        return self.status - 128 if self.status > 128 else None

    def message(self) -> str:
        signum = self.signum
        if signum is None:
            return f"an SDK worker process exited with status {self.status}"
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        hint = ": out of memory? (the kernel's OOM killer sends SIGKILL)" if signum == signal.SIGKILL else ""
        return f"an SDK worker process was killed by signal {signum} ({name}){hint}"


_WORKER_SIGNAL = signal.SIGUSR1  # how a worker's thread tells the main thread (see _thread_died)


_on_stop: list[Callable[[BaseException], None]] = []  # set by handle_signals
_previous_hook: list[Callable[[threading.ExceptHookArgs], object]] = []  # set by watch_workers


def _raise(signum: int, _frame: FrameType | None) -> None:
    exc: BaseException
    if signum == _WORKER_SIGNAL:
        exc = WorkerDied(_dead_workers[0] if _dead_workers else -signal.SIGKILL)
    else:
        exc = Interrupted(signum)
    if _on_stop:
        # handled here, not raised: unwinding through the runner runs its clean-up, which joins
        # worker threads that wait for the lost worker for ever
        _on_stop[0](exc)
    raise exc


def handle_signals(on_stop: Callable[[BaseException], None] | None = None) -> dict[int, object]:
    """SIGINT and SIGTERM (and a dead worker, see :func:`watch_workers`) become :class:`Interrupted`
    (:class:`WorkerDied`), handed to ``on_stop`` in the signal handler (which should exit the
    process), or raised where there is none. Only the main thread can install handlers; elsewhere,
    e.g. a test calling ``main`` from a thread, nothing changes. Returns the previous handlers for
    :func:`restore_signals`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _on_stop[:] = [on_stop] if on_stop is not None else []
    return {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM, _WORKER_SIGNAL)}


def restore_signals(previous: dict[int, object]) -> None:
    """Put back what :func:`handle_signals` replaced (main() may run inside a longer program)."""
    _on_stop.clear()
    if _previous_hook:
        threading.excepthook = _previous_hook.pop()
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _thread_died(args: threading.ExceptHookArgs) -> None:
    _LOG.error(
        "thread %s died",
        getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
    match = _WORKER_EXIT.search(str(args.exc_value))
    if match:
        _dead_workers.append(int(match.group(1)))
        if len(_dead_workers) == 1 and signal.getsignal(_WORKER_SIGNAL) is _raise:
            # a real signal, aimed at the main thread: it wakes a blocking wait there (which
            # _thread.interrupt_main does not), and the handler raises WorkerDied
            signal.pthread_kill(threading.main_thread().ident, _WORKER_SIGNAL)


def watch_workers() -> None:
    """Record SDK workers' exit statuses from their threads' errors; thread tracebacks go to the log."""
    _dead_workers.clear()
    if threading.excepthook is not _thread_died:
        _previous_hook[:] = [threading.excepthook]
    threading.excepthook = _thread_died


def worker_died(wait_s: float = 3.0) -> WorkerDied | None:
    """The death of an SDK worker of this run, if one died: the runner's error and the worker
    thread's can arrive in either order, so wait up to ``wait_s`` for the latter."""
    deadline = time.monotonic() + wait_s
    while not _dead_workers and time.monotonic() < deadline:
        time.sleep(0.05)
    return WorkerDied(_dead_workers[0]) if _dead_workers else None


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux /proc; elsewhere none are found)."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def stop_workers() -> None:
    """Kill this process's children (the SDK workers and their shells) and theirs."""
    pending = _children(os.getpid())
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        pending.extend(_children(pid))
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
