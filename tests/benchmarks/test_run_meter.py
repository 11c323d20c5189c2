"""benchmarks/run_meter.py: the figures bench_peers prints beside its ratio count the whole process
tree (descendants that outlive their parents included), disk reads and idle time.

Each measurement runs in a fresh interpreter: ``measure`` makes its process a child subreaper for
good, which a pytest worker must not become (other tests' orphans would be re-parented to it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

MEASURE = """
import json, sys
sys.path.insert(0, {bench!r})
import run_meter
from pathlib import Path
res = run_meter.measure(json.loads(sys.argv[1]), Path(sys.argv[2]), every_s=0.1)
res.pop("timeline")
print(json.dumps(res))
"""


def measured(cmd: list[str], tmp_path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE.format(bench=str(REPO / "benchmarks")),
            json.dumps(cmd),
            str(tmp_path / "log"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_an_orphans_cpu_is_counted_though_its_parent_exited_first(tmp_path):
    # the grandchild burns ~0.6 s of CPU after the command (its parent) has exited
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    res = measured(["bash", "-c", f"({sys.executable} -c '{burn}' &); exit 0"], tmp_path)
    assert res["whole_tree_reaped"] and res["orphans"] == 1
    assert res["cpu_s"] >= 0.5
    assert res["wall_s"] < 0.5  # the wall is the command's own


@pytest.mark.slow
def test_disk_reads_and_all_idle_seconds_are_counted(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(b"x" * (8 << 20))
    # O_DIRECT bypasses the page cache: every byte comes from the block device
    probe = subprocess.run(
        ["dd", f"if={data}", "of=/dev/null", "bs=1M", "iflag=direct"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"no O_DIRECT reads here: {probe.stderr.strip()}")
    res = measured(
        ["bash", "-c", f"dd if={data} of=/dev/null bs=1M iflag=direct 2>/dev/null; sleep 1.2"], tmp_path
    )
    assert res["read_mb"] >= 8.0
    assert res["idle_s"] >= 0.8 and res["longest_idle_s"] >= 0.8


@pytest.mark.slow
def test_the_peak_memory_of_the_command_and_of_its_largest_descendant(tmp_path):
    """What make bench prints as the driver's and the largest worker's peak: the command holds
    ~60 MB while its child holds ~200 MB for a second; both let go before they end, so only a
    peak (not the last sample) sees them."""
    hold = "import time\nb = bytearray(200 << 20)\ntime.sleep(1.0)\ndel b\ntime.sleep(0.6)"
    child = f"{sys.executable} -c '{hold}'"
    parent = (
        "import subprocess, time\n"
        "b = bytearray(60 << 20)\n"
        f"subprocess.run({child!r}, shell=True, check=True)\n"
        "del b\n"
        "time.sleep(0.6)\n"
    )
    res = measured([sys.executable, "-c", parent], tmp_path)
    assert 60 <= res["peak_rss_mb_command"] < 150
    assert 200 <= res["peak_rss_mb_descendant"] < 300
