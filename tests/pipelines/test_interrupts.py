"""A run that does not finish ends with one clear line and a non-zero status, never a traceback.

Real runs of the sample through the CLI process, stopped from outside as a user or the kernel would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corpusforge.pipelines.interrupts import _children
from tests.helpers import REPO, SAMPLE_DIR

SAMPLE_CONFIG = REPO / "configs" / "sample.yaml"


class CliRun:
    """The CLI in a subprocess; ``wait_running`` returns once its pipeline reports progress."""

    def __init__(self, out: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corpusforge.pipelines.cli",
                "run",
                "--input",
                str(SAMPLE_DIR),
                "--output",
                str(out),
                "--config",
                str(SAMPLE_CONFIG),
                "--workers",
                "2",
                "--set",
                "report.progress_every_s=0.2",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self.running = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "running:" in line:
                self.running.set()

    def wait_running(self) -> None:
        assert self.running.wait(300), "".join(self.stderr)[-3000:]

    def finish(self) -> tuple[int, str]:
        try:
            rc = self.proc.wait(120)
        except subprocess.TimeoutExpired:  # a hung run: kill it and its workers, then fail
            stack = [self.proc.pid]
            while stack:
                pid = stack.pop()
                stack.extend(_children(pid))
                os.kill(pid, signal.SIGKILL)
            raise
        self._reader.join(10)
        self.proc.stdout.close()
        return rc, "".join(self.stderr)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _sdk_workers(cli_pid: int, wait_s: float = 120) -> list[int]:
    """The Python SDK worker processes of a run (Beam starts each through ``/bin/sh -c``, so they are
    the CLI's children or grandchildren; a warm one, ``pipelines/local/warm.py``, is a child named
    sdk_worker_main once it took over); waits for the first to appear."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = []
        for child in _children(cli_pid):
            for pid in [child, *_children(child)]:
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"python" in argv[0] and any(a.endswith(b"sdk_worker_main") for a in argv[1:]):
                    found.append(pid)
                elif _comm(pid) == "sdk_worker_main":  # a warm process that became a worker
                    found.append(pid)
        if found:
            return found
        time.sleep(0.2)
    return []


def _last_line(text: str) -> str:
    return [ln for ln in text.splitlines() if ln.strip()][-1]


@pytest.mark.slow
def test_sigint_ends_the_run_with_one_line_and_status_130(tmp_path):
    out = tmp_path / "out"
    run = CliRun(out)
    run.wait_running()
    run.proc.send_signal(signal.SIGINT)
    rc, err = run.finish()
    assert rc == 130, err[-3000:]
    assert _last_line(err).startswith("corpusforge: interrupted by SIGINT"), err[-3000:]
    assert "Traceback" not in err and "grpc" not in err.lower()
    assert not (out / "_SUCCESS").exists()
    assert not _children(run.proc.pid)  # no worker left behind


@pytest.mark.slow
def test_a_killed_worker_is_named_with_its_signal(tmp_path):
    out = tmp_path / "out"
    run = CliRun(out)
    run.wait_running()
    workers = _sdk_workers(run.proc.pid)
    assert workers, "no SDK worker process found under the CLI"
    os.kill(workers[0], signal.SIGKILL)  # what the kernel's OOM killer does
    rc, err = run.finish()
    assert rc != 0, err[-3000:]
    line = _last_line(err)
    assert "killed by signal 9 (SIGKILL): out of memory?" in line, err[-3000:]
    assert "Traceback" not in err and "Channel closed prematurely" not in err
    assert not (out / "_SUCCESS").exists()
