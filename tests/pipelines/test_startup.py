"""Start-up: the driver builds the whole graph without importing what only a stage's workers or the
report at the end need (presidio and spaCy, matplotlib), so that the first stage runs sooner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR

# imported by a worker when it unpickles the pii stage, or by the report after the run
HEAVY = ("presidio_analyzer", "spacy", "matplotlib")

SCRIPT = f"""
import json, sys, tempfile
import apache_beam as beam
from corpusforge.pipelines import cli
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
cfg = load_config({str(SAMPLE_CONFIG)!r}, [])
files, _ = discover_inputs([{str(SAMPLE_DIR)!r}], cfg.input.format)
out = tempfile.mkdtemp()
plan = cli.build_pipeline(beam.Pipeline(), cfg, files, out, local_runner=True)
print(json.dumps({{"stages": plan.stages, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


# a fresh interpreter that imports Beam and builds the whole graph (~3 s of CPU): the full suite only
@pytest.mark.slow
def test_building_the_graph_imports_no_presidio_spacy_or_matplotlib():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, check=True
    )
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "pii" in built["stages"]  # the pii stage is in the graph, its engine not in the driver
    assert built["heavy"] == []
