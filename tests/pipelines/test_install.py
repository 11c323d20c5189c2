"""A normal (non-editable) install runs from the repository root.

The checkout once had a ``corpusforge/`` folder that shadowed the installed package in SDK worker
processes (they start with the working directory on ``sys.path``), so every worker failed with
``No module named 'corpusforge.transforms'``. Here the package is installed into a folder that
precedes the editable install on ``PYTHONPATH`` (SDK workers inherit it) and run from the root.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, SAMPLE_DIR


@pytest.mark.slow
@pytest.mark.engine  # a wheel build and a fresh virtualenv: skip locally with -m "not engine"
def test_a_normal_install_runs_the_sample_from_the_repository_root(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            ".",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import corpusforge.transforms.io.read as m, corpusforge as c; print(m.__file__); "
            "print(c.__file__)",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    out = tmp_path / "out"
    run = subprocess.run(
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
            "configs/sample.yaml",
            # one SDK worker process, started from the root like every worker: the shadowing broke
            # each worker alike, so a second one (its Beam import and every stage's set-up, ~4 s of
            # CPU) would prove nothing more; every stage stays on, so each stage's modules are
            # imported from the installed copy
            "--workers",
            "1",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ModuleNotFoundError" not in run.stderr + (out / "_run" / "beam.log").read_text()
    assert (out / "_SUCCESS").exists() and list((out / "documents").glob("*.parquet"))
