"""The command line's own options (no pipeline runs here, but a subprocess: marked slow, out of the fast loop)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import apache_beam as beam
import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_version_prints_the_installed_version_and_exits_0():
    proc = subprocess.run(
        [sys.executable, "-m", "corpusforge.pipelines.cli", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(f"corpusforge {version('corpusforge')} ")
    assert f"apache-beam {beam.__version__}" in line
