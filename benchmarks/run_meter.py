"""One command measured as a whole process tree: wall, CPU, major page faults, disk reads, idle time.

Why: on the shared VM bench_peers' wall ratio moved 5-11x between rounds while its CPU ratio held
at 11-11.7x: a slow corpusforge round waited rather than computed. Waiting for the disk shows as
major page faults (a library page read back in), block reads and seconds in which no process of the
run used the CPU; CPU time alone cannot tell a slow round from a waiting one.

How (Linux): the measuring process makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so
a descendant that outlives its parent (datatrove's forkserver workers) is re-parented to it instead
of to init, and reaped by it. The kernel adds a reaped process's usage, and that of every descendant
it reaped, to its parent's ``RUSAGE_CHILDREN``: CPU, ``ru_majflt`` and ``ru_inblock`` (the
process's ``/proc/PID/io`` ``read_bytes`` in 512-byte blocks: reads that reached the block device,
page-cache hits excluded, page faults on mapped files included). So the difference of
``getrusage(RUSAGE_CHILDREN)`` around the command is exact for the whole tree, processes too short
for any sampler included. A sampler (:class:`TreeSampler`, ``/proc/PID/stat`` every ``every_s``)
adds when it happened: the seconds in which the tree used (almost) no CPU, those in which one of its
processes was in D state (uninterruptible: a disk wait), and a compact timeline.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
# a sample interval in which the whole tree used less than this share of one core counts as idle
IDLE_CORES = 0.1
# the command has exited; its orphans (re-parented to us) get this long to end before being killed
ORPHAN_GRACE_S = 30.0


def become_subreaper() -> bool:
    """Re-parent orphaned descendants to this process (Linux); False where that is not possible,
    and then descendants that outlive their parents are missing from the rusage figures."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


class TreeSampler:
    """The descendants of ``root`` sampled from ``/proc`` every ``every_s`` seconds (``root`` itself
    excluded: it is the measuring process): per interval, the tree's CPU use (in cores), how many of
    its processes were running (R) and waiting on the disk (D), and its major faults; and each
    process's highest resident set (``rss_peak_mb``: the local runner's driver holds every shuffle,
    its workers should stay flat)."""

    def __init__(self, root: int, every_s: float = 0.25) -> None:
        self.root, self.every_s = root, every_s
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = time.perf_counter()
        self.last: dict[int, tuple[int, int]] = {}  # pid: (cpu ticks, majflt) at the last sample
        self.cpu_peak: dict[int, int] = {}  # pid: highest cpu ticks seen (for the sampled total)
        self.rss_peak: dict[int, int] = {}  # pid: highest resident pages seen
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.timeline: list[tuple[float, float, int, int, int, int]] = []
        self._prev_t = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        procs: dict[int, tuple[int, str, int, int, int]] = {}  # pid: (ppid, state, ticks, majflt, rss)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat_fields(entry)
                if fields is not None and len(fields) > 21:
                    procs[int(entry)] = (
                        int(fields[1]),
                        fields[0],
                        int(fields[11]) + int(fields[12]),
                        int(fields[9]),
                        int(fields[21]),  # resident pages
                    )
        tree, frontier = set(), {self.root}
        while frontier:
            frontier = {p for p, v in procs.items() if v[0] in frontier and p not in tree}
            tree |= frontier
        now = time.perf_counter()
        cpu = majflt = running = waiting = 0
        current: dict[int, tuple[int, int]] = {}
        for pid in tree:
            _ppid, state, ticks, faults, rss = procs[pid]
            self.rss_peak[pid] = max(self.rss_peak.get(pid, 0), rss)
            before = self.last.get(pid, (0, 0))
            cpu += max(0, ticks - before[0])
            majflt += max(0, faults - before[1])
            running += state == "R"
            waiting += state == "D"
            current[pid] = (ticks, faults)
            self.cpu_peak[pid] = max(self.cpu_peak.get(pid, 0), ticks)
        self.last = current
        span = max(now - self._prev_t, 1e-6)
        self._prev_t = now
        self.timeline.append(
            (
                round(now - self.start, 2),
                round(cpu / self.tick / span, 2),
                running,
                waiting,
                majflt,
                len(tree),
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def stop(self) -> dict:
        """Stop sampling; the summary of the timeline (seconds are sums of sample intervals)."""
        self._stop.set()
        self._thread.join()
        idle_s = d_state_s = longest_idle = run_idle = 0.0
        prev = 0.0
        for t, cores, _running, waiting, _faults, nprocs in self.timeline:
            span = t - prev
            prev = t
            if nprocs and cores < IDLE_CORES:
                idle_s += span
                run_idle += span
                longest_idle = max(longest_idle, run_idle)
            else:
                run_idle = 0.0
            if waiting:
                d_state_s += span
        return {
            "idle_s": round(idle_s, 2),
            "longest_idle_s": round(longest_idle, 2),
            "d_state_s": round(d_state_s, 2),
            "sampled_cpu_s": round(sum(self.cpu_peak.values()) / self.tick, 2),
            "rss_peak_mb": {
                pid: round(pages * self.page_size / 2**20, 1) for pid, pages in self.rss_peak.items()
            },
            "every_s": self.every_s,
            # (seconds since start, cores used, processes in R, in D, major faults, processes)
            "timeline": self.timeline,
        }


def _reap_orphans(grace_s: float) -> tuple[int, float]:
    """Reap the descendants re-parented to this process once the command exited: wait up to
    ``grace_s`` for them to end, then kill what is left. Returns (how many, seconds waited)."""
    reaped, start = 0, time.perf_counter()
    deadline = start + grace_s
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # none left
        if pid:
            reaped += 1
            continue
        if time.perf_counter() > deadline:
            for entry in os.listdir("/proc"):
                fields = _stat_fields(entry) if entry.isdigit() else None
                if fields is not None and int(fields[1]) == os.getpid():
                    try:
                        os.kill(int(entry), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            deadline = float("inf")
        time.sleep(0.05)
    return reaped, round(time.perf_counter() - start, 2)


def measure(cmd: list[str], log: Path, every_s: float = 0.25) -> dict:
    """Run ``cmd`` (output to ``log``) and measure it and every descendant (see the module's doc).

    ``wall_s`` runs to the command's exit; orphans still running then are waited for (``orphans``,
    ``orphan_wait_s``) so that their usage is counted, and killed after :data:`ORPHAN_GRACE_S`."""
    subreaper = become_subreaper()
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as f:
        child = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
        sampler = TreeSampler(os.getpid(), every_s)
        returncode = child.wait()
    wall = time.perf_counter() - start
    orphans, orphan_wait = _reap_orphans(ORPHAN_GRACE_S) if subreaper else (0, 0.0)
    sampled = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped_cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    result = {
        "wall_s": round(wall, 2),
        # exact when every descendant was reaped (subreaper); else the sampled figure may be larger
        "cpu_s": round(max(reaped_cpu, sampled["sampled_cpu_s"]), 1),
        "user_s": round(after.ru_utime - before.ru_utime, 2),
        "sys_s": round(after.ru_stime - before.ru_stime, 2),
        "major_faults": after.ru_majflt - before.ru_majflt,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "read_mb": round((after.ru_inblock - before.ru_inblock) * 512 / 1e6, 1),
        "idle_s": sampled["idle_s"],
        "longest_idle_s": sampled["longest_idle_s"],
        "d_state_s": sampled["d_state_s"],
        "whole_tree_reaped": subreaper,
        "orphans": orphans,
        "orphan_wait_s": orphan_wait,
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
        # the command's own process (the driver of a corpusforge run) and the largest of the others
        "peak_rss_mb_command": sampled["rss_peak_mb"].get(child.pid, 0.0),
        "peak_rss_mb_descendant": max(
            (mb for pid, mb in sampled["rss_peak_mb"].items() if pid != child.pid), default=0.0
        ),
        "log": str(log),
        "timeline": sampled["timeline"],
    }
    if returncode != 0:
        result["error"] = f"exit {returncode}: " + log.read_text()[-1500:]
    return result


def summary(res: dict) -> str:
    """One line of the figures above, for the benchmark's progress output."""
    return (
        f"{res['wall_s']:>7.1f} s wall, {res['cpu_s']:>7.1f} s CPU, {res['major_faults']:>6} major faults, "
        f"{res['read_mb']:>7.1f} MB read, {res['idle_s']:>5.1f} s all-idle (longest {res['longest_idle_s']}), "
        f"{res['d_state_s']:>5.1f} s with a process in D"
    )
