"""One pre-imported parent process that forks the local runner's warm SDK workers ("zygote").

Why: each warm process (``warm.py``) imported Beam and corpusforge itself (~1.4-2 CPU s each) and
built its own preloads (the language tables), and later each imported presidio for the pii stage
(~1.2 CPU s each), on a 2-core machine where the driver and every worker import at once. Here one
process imports and builds all that once, then forks the workers: they share its pages
copy-on-write and start with every module already in place. After the fork a child is exactly a
warm process waiting for its hand-over (:func:`corpusforge.pipelines.local.warm.serve`): it then
runs Beam's own ``sdk_worker_main``.

Protocol: the driver (:class:`Zygote`) and the parent (:func:`main`) share a ``SOCK_SEQPACKET``
socket pair, one JSON message a packet. Driver to parent: ``{"preload": [...]}`` (build these
before forking), ``{"fork": true}`` with one file descriptor attached (the read end of the new
child's stdin pipe, so each child has its own hand-over channel, owned by the driver), and
``{"hurry": true}`` (the runner wants a worker now: fork without building more); a fork with
``"after_preload": true`` waits for the first ``preload`` (the CLI's pool sends one once the
configuration is read, even an empty one) or ``hurry``. Parent to
driver: ``{"pid": N}`` for each fork, in order, and ``{"exit": N, "status": S}`` (``subprocess``'s
return code convention) for each child that ended. The pool asks for its forks at once; the
parent builds its preloads one item at a time, looking for new messages between items, and forks
when it has built them all or is told to hurry: the first stage never waits for a preload it would
not have waited for in a warm process of its own.

Fork safety: the parent never creates a thread of its own, a grpc channel or a server (grpc's core
is not initialised by ``import grpc``, so grpc's fork rules do not apply; ``GRPC_ENABLE_FORK_SUPPORT``
stays unset); the native threads that numpy's OpenBLAS and pyarrow's jemalloc start register their
own fork handlers. A child closes the socket and the parent's signal pipe, restores SIGCHLD and
re-seeds numpy's global generator (Python's ``random`` re-seeds itself at fork); the hash salt is
the parent's, fixed when the driver started it with the driver's environment, as every warm process
and every worker Beam starts gets it (Beam does not set ``PYTHONHASHSEED``). ``gc.freeze`` before
each fork keeps the children's collections off the shared objects (fewer pages copied, less CPU).

Robustness: the parent's children die with it: when its socket closes (the pool's close, or the
driver dying, even by SIGKILL) it kills every child left and exits; ``interrupts.stop_workers``
kills the parent and its children with the rest of the driver's descendants. When the parent is
gone before a fork is answered, :meth:`Zygote.fork` answers None and the worker is started the
usual way (Beam's own start). Linux only (:func:`available`); elsewhere the pool starts one warm
process per worker as before.

Standard library only on the driver's side: it runs before ``import apache_beam`` in the CLI.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

_MAX_PACKET = 1 << 16
ZYGOTE_MODULE = "corpusforge.pipelines.local.zygote"


def available() -> bool:
    """Whether workers can be forked from one parent here: Linux (fork is sound there with the
    native libraries in use; macOS's system frameworks are not fork-safe), with file descriptors
    passed over Unix sockets; ``CORPUSFORGE_FORK_WORKERS=0`` turns it off (one process per worker)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and os.environ.get("CORPUSFORGE_FORK_WORKERS", "1") != "0"
    )


def _status(wait_status: int) -> int:
    """``os.waitpid``'s status as ``subprocess``'s return code (``-N`` for signal N)."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class ForkedProcess:
    """The driver's handle on one forked child, with the part of ``subprocess.Popen``'s interface
    the warm pool and the worker handler use (``pid``, ``stdin``, ``poll``, ``wait``, ``kill``,
    ``returncode``); its exit status comes from the parent, which reaps it."""

    def __init__(self, pid: int, stdin_fd: int, zygote: Zygote) -> None:
        self.pid = pid
        self.stdin = os.fdopen(stdin_fd, "wb")
        self.returncode: int | None = None
        self._zygote = zygote

    def poll(self) -> int | None:
        """The exit status, or None while the child runs. A child that has ended (a zombie, or
        reaped) but whose status the parent has not reported yet waits for the report (briefly):
        as with ``Popen.poll``, a dead process never reads as running."""
        if self.returncode is None:
            self.returncode = self._zygote.status(self.pid)
            if self.returncode is None and not _alive(self.pid):
                deadline = time.monotonic() + 2.0
                while self.returncode is None and time.monotonic() < deadline:
                    self._zygote.wait_for_exit(0.05)
                    self.returncode = self._zygote.status(self.pid)
                if self.returncode is None:
                    self.returncode = -signal.SIGKILL  # ended, its status lost with the parent
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout)
            self._zygote.wait_for_exit(0.1 if left is None else min(left, 0.1))
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Zygote:
    """The driver's side: starts the parent process and asks it for forks."""

    def __init__(self, python: str = sys.executable) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [python, "-m", ZYGOTE_MODULE, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
        finally:
            theirs.close()
        self._sock = ours
        self._send_lock = threading.Lock()
        self._pids: queue.Queue[int | None] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._changed = threading.Condition()
        self._gone = False  # the parent closed its end (it exited)
        self._hurried = False
        self._reader = threading.Thread(target=self._read, name="corpusforge-zygote", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(_MAX_PACKET)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if "pid" in message:
                self._pids.put(int(message["pid"]))
            elif "exit" in message:
                with self._changed:
                    self._exits[int(message["exit"])] = int(message["status"])
                    self._changed.notify_all()
        with self._changed:
            self._gone = True
            self._changed.notify_all()
        self._pids.put(None)

    def _send(self, message: dict, fds: Sequence[int] = ()) -> bool:
        payload = json.dumps(message).encode()
        with self._send_lock:
            try:
                if fds:
                    socket.send_fds(self._sock, [payload], list(fds))
                else:
                    self._sock.send(payload)
                return True
            except OSError:
                return False

    def preload(self, items: Sequence[str]) -> None:
        """Have the parent build ``items`` (``module`` or ``module:function``) before its next fork."""
        if items:
            self._send({"preload": list(items)})

    def hurry(self) -> None:
        """The runner needs a worker now: fork what was asked for without building more preloads."""
        if not self._hurried:
            self._hurried = True
            self._send({"hurry": True})

    def request_fork(self, after_preload: bool = False) -> int | None:
        """Ask for one more child; returns the write end of its stdin pipe (None: the parent is
        gone). :meth:`next_forked` gives the child, in the order asked. ``after_preload``: not
        before a :meth:`preload` (or :meth:`hurry`) came, so that the preloads are the children's."""
        read_fd, write_fd = os.pipe()
        try:
            sent = self._send({"fork": True, "after_preload": after_preload}, [read_fd])
        finally:
            os.close(read_fd)
        if not sent:
            os.close(write_fd)
            return None
        return write_fd

    def next_forked(self, stdin_fd: int) -> ForkedProcess | None:
        """The child asked for with :meth:`request_fork` (blocks until it is forked); None when the
        parent went away first."""
        pid = self._pids.get()
        if pid is None:
            self._pids.put(None)  # every later request is unanswered too
            os.close(stdin_fd)
            return None
        return ForkedProcess(pid, stdin_fd, self)

    def status(self, pid: int) -> int | None:
        """``pid``'s exit status once the parent reported it; once the parent itself is gone, a child
        that no longer exists reads as killed (its real status went with the parent)."""
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            gone = self._gone
        if gone and not _alive(pid):
            return -signal.SIGKILL
        return None

    def wait_for_exit(self, timeout: float) -> None:
        """Block until the parent reports a child's exit (or ``timeout`` seconds)."""
        with self._changed:
            self._changed.wait(timeout)

    def close_requests(self) -> None:
        """Ask for nothing more: the parent sees the socket's end, and every fork not yet answered
        is answered None."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, grace_s: float = 0.5) -> None:
        """End the parent: at the socket's end it kills the children still alive and exits; one
        still importing (a run that failed early) is killed (its children, if any, see their stdin
        close and exit)."""
        self.close_requests()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join()
        self._sock.close()


# ---------------------------------------------------------------- the parent process (main)


class _Parent:
    """The forking parent: imports, builds preloads, forks children and reports their exits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wake-up fd is written
        signal.set_wakeup_fd(self.wake_w)

    def _send(self, message: dict) -> None:
        try:
            self.sock.send(json.dumps(message).encode())
        except OSError:
            pass  # the driver is gone: the loop sees the end of the socket next

    def reap(self) -> None:
        while self.children:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                self._send({"exit": pid, "status": _status(wait_status)})

    def fork(self, stdin_fd: int, others: Sequence[int] = ()) -> None:
        """Fork one child whose stdin is ``stdin_fd`` (``others``: descriptors it must not keep)."""
        from corpusforge.pipelines.local import warm

        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # the children's collections leave the shared objects alone
        pid = os.fork()
        if pid == 0:  # the child: a warm process waiting for its hand-over
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (self.wake_r, self.wake_w, *others):
                    os.close(fd)
                self.sock.close()
                os.dup2(stdin_fd, 0)
                os.close(stdin_fd)
                _reseed()
                warm._name_process(b"cf-warm")
                code = warm.serve(0)
            except BaseException:  # noqa: BLE001 - reported, and the driver sees the exit status
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(stdin_fd)
        self.children.add(pid)
        self._send({"pid": pid})

    def messages(self, block: bool) -> list[tuple[dict, list[int]]]:
        """Every message waiting now (with ``block``, waiting for the first one); an
        ``{"end": true}`` last when the driver's end of the socket closed. Children's exits are
        reaped and reported meanwhile."""
        got: list[tuple[dict, list[int]]] = []
        while True:
            wait = None if block and not got else 0
            readable, _, _ = select.select([self.sock, self.wake_r], [], [], wait)
            if self.wake_r in readable:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.sock not in readable:
                if got or wait == 0:
                    return got
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX_PACKET, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                return [*got, ({"end": True}, [])]
            got.append((json.loads(data), list(fds)))

    def serve(self) -> None:
        """Build the preloads one at a time, then serve the forks asked for; a ``{"hurry": true}``
        (the runner needs a worker now) forks at once and drops the preloads not yet built (the
        children build what they need themselves, as a warm process of its own would)."""
        from corpusforge.pipelines.local import warm

        items: list[str] = []
        forks: list[int] = []
        hurry = False
        seen_preload = False
        deferred = False  # a fork waits for the first preload message
        while True:
            for message, fds in self.messages(block=not items or hurry):
                if message.get("end"):
                    for fd in forks:
                        os.close(fd)
                    return
                hurry = hurry or bool(message.get("hurry"))
                if "preload" in message:
                    items.extend(message["preload"])
                    seen_preload = True
                if message.get("fork") and fds:
                    forks.append(fds[0])
                    fds = fds[1:]
                    deferred = deferred or bool(message.get("after_preload"))
                for fd in fds:
                    os.close(fd)
            if hurry:
                items.clear()
            if hurry or seen_preload:
                deferred = False
            if items:  # one item, then look at the socket again
                try:
                    warm._preload(items.pop(0))
                except Exception:  # noqa: BLE001 - the stage's own set-up reports it
                    pass
                if items:
                    continue
                # the last one built: fork now, not at the next message (a hurry that may come late)
            while forks and not deferred:
                fd = forks.pop(0)
                self.fork(fd, forks)

    def stop_children(self) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)


def _reseed() -> None:
    """numpy's global generator, seeded afresh as in a newly started worker (``random`` re-seeds
    itself at fork; a child must not draw the same numbers as its siblings)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            numpy.random.seed()
        except Exception:  # noqa: BLE001 - a numpy without the legacy global generator
            pass


def main(argv: Sequence[str]) -> int:
    """The parent process: import what every worker needs (``warm.PRELOAD``), then serve forks
    until the driver's socket closes; then kill the children left and exit."""
    from corpusforge.pipelines.local import warm

    # a Ctrl-C on the terminal reaches the whole process group: the driver stops its descendants
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    warm.import_preload()
    warm._name_process(b"cf-zygote")
    parent = _Parent(sock)
    try:
        parent.serve()
    finally:
        parent.stop_children()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
