"""Pre-started SDK workers for the local runner, so that their imports overlap the driver's work.

Beam's FnApiRunner starts each SDK worker (``python -m apache_beam.runners.worker.sdk_worker_main``)
only once the driver has imported Beam, built the graph and translated it (~3 s of the driver's CPU
on the embedded sample), and each worker then spends ~2 s of its own importing Beam and corpusforge
before it runs anything, while the machine's other cores idle. Here the CLI starts the workers'
processes first (:func:`start_early`, before it imports Beam itself): each imports what every SDK
worker needs (:data:`PRELOAD`, without the optional modules ``lean_import.py`` leaves out), then
waits on its stdin. ``pipelines/local/warm_handler.py`` hands a waiting process the addresses Beam
would have put in a fresh worker's environment, and the process becomes that SDK worker
(``sdk_worker_main.main``), exactly as if Beam had started it.

While it waits, a process also builds what the run's configuration says its first stages will need
(:meth:`WarmPool.preload`, :func:`preloads_for`: the language profiles' tables), one item at a time,
starting none once its hand-over has arrived.

On Linux the processes are not started one by one: one parent process (``zygote.py``) imports
:data:`PRELOAD` and builds the preloads once (with the pii stage on, presidio too:
:func:`shared_preloads_for`), then forks them all, so that the imports are paid once per run
instead of once per worker. Each forked child then waits for its hand-over exactly as below.

Robustness: an unused process exits when its stdin closes (the pool's :meth:`~WarmPool.close`, or
the driver dying); a process found dead is skipped and Beam's own start is used instead; each process
is a child of the driver (or of its zygote, itself the driver's child), so ``interrupts.stop_workers``
kills it with the rest. Only timing changes: a warm process runs Beam's own worker with Beam's own
environment variables.

This module imports only the standard library: it runs before ``import apache_beam`` in the CLI.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from corpusforge.pipelines.local import lean_import, zygote
from corpusforge.pipelines.local.worker_count import default_workers

# What every SDK worker of a corpusforge graph imports anyway (the graph's DoFns are unpickled from
# these modules): imported before the hand-over. The heavier, config-dependent items come later
# (WarmPool.preload), interruptible.
PRELOAD = (
    "apache_beam.runners.worker.sdk_worker_main",
    "apache_beam.runners.worker.bundle_processor",
    "corpusforge.pipelines.build",
)
_LOCAL_NAMES = {"", "DirectRunner", "directrunner", "direct", "LocalRunner"}  # runner.py's, less None


def _option(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg[len(name) + 1 :]
    return value


def local_run(argv: Sequence[str]) -> bool:
    """Whether ``corpusforge ARGV`` is a run on the local runner (no ``--runner``, or a local one)."""
    return bool(argv) and argv[0] == "run" and (_option(argv, "--runner") or "") in _LOCAL_NAMES


def workers_for(argv: Sequence[str]) -> int:
    """How many SDK worker processes ``corpusforge ARGV`` will start on the local runner (0: none):
    ``--workers``, else ``--direct_num_workers``, else one per core (the runner's default); none for another runner,
    another running mode or an incremental run (its parts are several pipelines)."""
    if not local_run(argv) or "--incremental" in argv or "-h" in argv or "--help" in argv:
        return 0
    if (_option(argv, "--direct_running_mode") or "multi_processing") != "multi_processing":
        return 0
    raw = _option(argv, "--workers") or _option(argv, "--direct_num_workers") or str(default_workers())
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


class WarmProcess:
    """One pre-started process waiting to become an SDK worker: started here (``python``), or
    forked from the pool's zygote (``forked``, a ``zygote.ForkedProcess``: ready at once)."""

    def __init__(self, python: str = sys.executable, forked: Any = None) -> None:
        self._lock = threading.Lock()
        self.taken = False
        if forked is not None:
            self.proc = forked
            self._ready_fd = -1
            return
        ready_r, ready_w = os.pipe()
        self.proc = subprocess.Popen(
            [python, "-m", "corpusforge.pipelines.local.warm", str(ready_w)],
            stdin=subprocess.PIPE,
            pass_fds=(ready_w,),
            close_fds=True,
        )
        os.close(ready_w)
        self._ready_fd = ready_r

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Whether the process finished its imports (within ``timeout`` seconds)."""
        if self._ready_fd < 0:
            return True
        readable, _, _ = select.select([self._ready_fd], [], [], timeout)
        if not readable:
            return False
        os.close(self._ready_fd)
        self._ready_fd = -1
        return True

    def send(self, message: dict) -> bool:
        """Write one message line to the process; False when it is gone."""
        with self._lock:
            if self.proc.poll() is not None or self.proc.stdin is None or self.proc.stdin.closed:
                return False
            try:
                self.proc.stdin.write((json.dumps(message) + "\n").encode())
                self.proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def hand_over(self, env: dict[str, str]) -> bool:
        """Make the process the SDK worker for ``env``; False when it died waiting."""
        ok = self.send({"env": env})
        self.close_stdin()
        return ok

    def close_stdin(self) -> None:
        with self._lock:
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass

    def close(self) -> None:
        """An untaken process: stop it (it only imported modules, it holds nothing to finish)."""
        self.close_stdin()
        if self._ready_fd >= 0:
            os.close(self._ready_fd)
            self._ready_fd = -1
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class WarmPool:
    """Up to ``count`` warm processes.

    Where :func:`zygote.available` (Linux), one parent process imports what every worker needs once
    and forks them (``zygote.py``): the forks are asked for at once; with ``planned`` (a run's
    pool: :meth:`preload` will be called once the configuration is read) the parent forks after
    building those preloads, or as soon as :meth:`take` needs a process, so they are shared by
    every child. Elsewhere
    (or with ``fork=False``) each is a process of its own, started at most ``cores - 1`` at a time
    (the driver keeps a core: its own imports and graph are the start-up's critical path); each
    next one starts when an earlier one has finished its imports."""

    def __init__(
        self, count: int, cores: int | None = None, fork: bool | None = None, planned: bool = False
    ) -> None:
        self.count = count
        self._planned = planned  # a preload() will come: the zygote forks after it
        self._cores = cores or os.cpu_count() or 1
        self._free: list[WarmProcess] = []
        self._all: list[WarmProcess] = []
        self._preload: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self._starter: threading.Thread | None = None
        self._zygote: zygote.Zygote | None = None
        if count > 0 and (zygote.available() if fork is None else fork):
            try:
                self._zygote = zygote.Zygote()
            except OSError:  # could not start it: one process per worker
                self._zygote = None
        if count > 0:
            self._start_starter()

    def _start_starter(self) -> None:
        target = self._fork_all if self._zygote is not None else self._start_all
        self._starter = threading.Thread(target=target, name="corpusforge-warm", daemon=True)
        self._starter.start()

    def _fork_all(self) -> None:
        """Ask the zygote for every missing process, then collect them as they are forked; a
        zygote gone before answering leaves the rest to Beam's own start."""
        with self._lock:
            missing = self.count - len(self._all)
        pipes = []
        for _ in range(missing):
            fd = self._zygote.request_fork(after_preload=self._planned)
            if fd is None:
                break
            pipes.append(fd)
        for fd in pipes:
            forked = self._zygote.next_forked(fd)
            if forked is None:
                continue
            with self._lock:
                process = WarmProcess(forked=forked)
                self._all.append(process)
                if self._closed:
                    process.close()
                else:
                    self._free.append(process)

    def _start_all(self) -> None:
        at_once = max(1, self._cores - 1)
        while True:
            with self._lock:
                if self._closed or len(self._all) >= self.count:
                    return
                started = len(self._all)
                earlier = self._all[started - at_once] if started >= at_once else None
            # a dead one's pipe reads as closed: no wait then
            while earlier is not None and not self._closed and not earlier.wait_ready(timeout=0.1):
                pass
            with self._lock:
                if self._closed:
                    return
                process = WarmProcess()
                self._all.append(process)
                self._free.append(process)
                preload = list(self._preload)
            if preload:
                process.send({"preload": preload})

    def grow(self, count: int) -> None:
        """Have ``count`` processes in all (starting the missing ones as :meth:`_start_all` does)."""
        with self._lock:
            if count <= self.count or self._closed:
                return
            self.count = count
            running = self._starter is not None and self._starter.is_alive()
        if running and self._zygote is not None:
            self._starter.join()  # it asked for the earlier count: ask for the rest after it
            running = False
        if not running:
            self._start_starter()

    def preload(self, items: Sequence[str], shared: Sequence[str] | None = None) -> None:
        """Ask each waiting process (and each started later) to build ``items`` (``module`` or
        ``module:function``) while it waits; a process stops at its hand-over. With a zygote,
        ``shared`` (default: ``items``) goes to it: built there before it forks, shared by all."""
        with self._lock:
            self._preload = list(items)
            free = list(self._free)
        if self._zygote is not None:
            self._zygote.preload(list(items) if shared is None else shared)
        for process in free:
            process.send({"preload": list(items)})

    def take(self) -> WarmProcess | None:
        """A live warm process to become an SDK worker, or None (start one the usual way)."""
        if self._zygote is not None:
            self._zygote.hurry()
        while True:
            with self._lock:
                if self._closed:
                    return None
                if not self._free:
                    starting = self._starter is not None and self._starter.is_alive()
                    if not starting or len(self._all) >= self.count:
                        return None
                    process = None
                else:
                    process = self._free.pop(0)
            if process is None:  # the next one is about to be started: wait for it
                self._starter.join(0.05)
                continue
            if process.proc.poll() is None:
                process.taken = True
                return process
            process.close()

    def close(self) -> None:
        """Stop the processes never taken (a taken one is an SDK worker: Beam stops it), and the
        zygote (it kills any child still alive)."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        if self._zygote is not None:
            self._zygote.close_requests()  # unblocks a starter still waiting for forks
        if self._starter is not None:
            self._starter.join()
        with self._lock:
            free += self._free
            self._free = []
        for process in free:
            process.close()
        if self._zygote is not None:
            self._zygote.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [p.proc.pid for p in self._all]

    @property
    def zygote_pid(self) -> int | None:
        """The forking parent's process id (None: each process was started on its own)."""
        return None if self._zygote is None else self._zygote.proc.pid


def preloads_for(cfg) -> list[str]:  # noqa: ANN001 - a schemas.config.Config (not imported here)
    """What a warm process builds while it waits, for the stages ``cfg`` enables: the language
    profiles' tables (~1 s of CPU; the first stage that reads documents needs them).

    Not presidio (~1.4 s to import, needed only after deduplication): an item already begun when the
    hand-over arrives is finished first, so a long item that the first stages do not need would only
    delay them; under load (the shared 2-core machine at load 8-13) runs that preloaded presidio too
    started later than those that did not."""
    language = getattr(cfg, "language", None)
    if language is not None and language.enabled and getattr(language, "method", "") == "naive_bayes":
        return ["corpusforge.transforms.language.naive_bayes:preload"]
    return []


# presidio under the pii engine, in steps of at most ~0.4 CPU s (of ~1.2 in all: spaCy's serialisation
# and model libraries, spaCy, the analyzer with its predefined recognizers, the engine module), so
# that a hand-over that comes meanwhile waits for one step at most
PII_IMPORTS = ("srsly", "thinc.api", "spacy", "presidio_analyzer", "corpusforge.transforms.pii.engine")


# pyarrow imports pandas on its first ``pa.array`` of Python values (to ask whether they are a pandas
# object): in every worker's first Parquet write, ~0.35 CPU s each
ARROW_PANDAS = "corpusforge.pipelines.local.warm:arrow_pandas"
WORD_STORE = "corpusforge.transforms.tokenize.word_store:preload"
DECONTAMINATION_INDEX = "corpusforge.transforms.decontam.stage:preload"


def shared_preloads_for(cfg) -> list[str]:  # noqa: ANN001 - a schemas.config.Config
    """What the zygote builds before it forks, for the stages ``cfg`` enables, most CPU saved per
    second first: :func:`preloads_for`, the decontamination index (the first stage's; keyed by its
    settings, ``transforms/decontam/stage.py``), pandas under pyarrow (every run writes Parquet), the
    tokenizer's learned words (the tokenize stage with its word cache: the registry of
    ``transforms/shared_setup.py``, keyed by the tokenizer and the cache folder, so a worker asking
    for another builds its own) and, with the pii stage on, presidio (~1.3 CPU s that every worker
    would spend otherwise). Unlike in a warm process of its own, a long item delays the first stage
    by the step in progress at most: the parent forks as soon as the runner asks for a worker,
    dropping what it has not built (``zygote.py``)."""
    items = preloads_for(cfg)
    decontamination = getattr(cfg, "decontamination", None)
    if decontamination is not None and decontamination.enabled and decontamination.benchmarks:
        items.append(with_argument(DECONTAMINATION_INDEX, decontamination.model_dump(mode="json")))
    items.append(ARROW_PANDAS)
    tokenize = getattr(cfg, "tokenize", None)
    if tokenize is not None and tokenize.enabled and tokenize.word_cache:
        items.append(with_argument(WORD_STORE, tokenize.tokenizer))
    pii = getattr(cfg, "pii", None)
    if pii is not None and pii.enabled:
        items += list(PII_IMPORTS)
    return items


_EARLY: list[WarmPool] = []


def _enabled() -> bool:
    """Warm workers are on unless ``CORPUSFORGE_WARM_WORKERS=0`` (then Beam starts every worker)."""
    return os.environ.get("CORPUSFORGE_WARM_WORKERS", "1") != "0"


def start_early(argv: Sequence[str]) -> WarmPool | None:
    """Start the pool for ``corpusforge ARGV`` now, if it runs the local runner (see
    :func:`workers_for`); :func:`claim` hands it to the run. Closed at exit if nobody claims it."""
    count = workers_for(argv)
    if count <= 0 or _EARLY or not _enabled():
        return None
    pool = WarmPool(count, planned=True)
    _EARLY.append(pool)
    atexit.register(pool.close)
    return pool


def claim(count: int) -> WarmPool | None:
    """The early pool (topped up to ``count`` processes), or a new one when none was started (a run
    called from Python); None when ``count`` is 0 or warm workers are off
    (``CORPUSFORGE_WARM_WORKERS=0``: Beam starts every worker itself). The caller closes it."""
    if _EARLY:
        pool = _EARLY.pop()
        pool.grow(count)
        return pool
    if count <= 0 or not _enabled():
        return None
    return WarmPool(count, planned=True)


def with_argument(item: str, argument: Any) -> str:
    """``module:function`` called with one JSON-able ``argument`` (``module:function:JSON``)."""
    return f"{item}:{json.dumps(argument)}"


def _preload(item: str) -> None:
    """Build ``item``: ``module``, ``module:function`` or ``module:function:JSON`` (called with the
    JSON value: :func:`with_argument`)."""
    import importlib

    module, _, function = item.partition(":")
    function, has_argument, argument = function.partition(":")
    loaded = importlib.import_module(module)
    if function:
        if has_argument:
            getattr(loaded, function)(json.loads(argument))
        else:
            getattr(loaded, function)()


def arrow_pandas() -> None:
    """Have pyarrow import pandas now, as its first conversion of Python values does anyway
    (:data:`ARROW_PANDAS`): no result changes, the import moves to the zygote."""
    import pyarrow

    pyarrow.array([None])


class _Lines:
    """Lines of a file descriptor, with a look whether another one is already waiting (a buffered
    reader's ``select`` cannot tell: the line may sit in its buffer)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False

    def _fill(self) -> None:
        chunk = os.read(self._fd, 1 << 16)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True

    def readline(self) -> bytes:
        """The next line (b"" at end of file)."""
        while b"\n" not in self._buffer and not self._eof:
            self._fill()
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line + sep

    def pending(self) -> bool:
        """Whether more input (or the end of it) is waiting to be read, without blocking."""
        if self._buffer or self._eof:
            return True
        return bool(select.select([self._fd], [], [], 0)[0])


def _name_process(name: bytes) -> None:
    """Name this process ``name`` in ``/proc/PID/comm`` (what ``ps -o comm`` and ``top`` show), so
    that a warm process that became an SDK worker reads as one (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def import_preload() -> None:
    """Import :data:`PRELOAD`: Beam without the optional modules a local worker never uses
    (lean_import.py); should that fail, the ordinary imports import them."""
    lean_import.import_lean(PRELOAD)
    for item in PRELOAD:
        try:
            _preload(item)
        except Exception:  # noqa: BLE001 - the SDK worker will report it when it needs the module
            pass


def serve(fd: int) -> int:
    """Wait for the hand-over on ``fd`` (``{"preload": [...]}`` messages, then ``{"env": {...}}``)
    and become the SDK worker; 0 when ``fd`` closes first (the pool's close, or the driver gone)."""
    stdin = _Lines(fd)
    while True:
        line = stdin.readline()
        if not line:
            return 0
        message = json.loads(line)
        if "env" in message:
            break
        for item in message.get("preload", ()):
            if stdin.pending():  # the hand-over came (or the run ended): preload no more
                break
            try:
                _preload(item)
            except Exception:  # noqa: BLE001 - the stage's own set-up reports it
                pass
    os.environ.clear()  # exactly the environment Beam would have started a worker with
    os.environ.update(message["env"])
    _name_process(b"sdk_worker_main")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a worker Beam started
    # the local runner's own worker entry: Beam's sdk_worker_main, then an exit without the
    # interpreter's final clean-up (pipelines/local/sdk_worker_main.py)
    from corpusforge.pipelines.local import sdk_worker_main

    sdk_worker_main.main()
    return 0


def main(argv: Sequence[str]) -> int:
    """The warm process: import :data:`PRELOAD`, say so on the ready pipe, then :func:`serve` stdin."""
    ready_fd = int(argv[0]) if argv else -1
    # a Ctrl-C on the terminal reaches the whole process group: a waiting process leaves it to the
    # driver (which stops its children) instead of printing an import's KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import_preload()
    if ready_fd >= 0:
        os.write(ready_fd, b"\n")
        os.close(ready_fd)
    return serve(sys.stdin.fileno())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
