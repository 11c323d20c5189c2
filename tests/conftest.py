"""Shared test helpers: a local test pipeline (never Prism) and paths to the optional shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from corpusforge.pipelines.local.runner import LocalRunner

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "samples" / "sample"
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared"))
DEV = SHARED / "data" / "dev"


def local_test_pipeline() -> TestPipeline:
    """An in-process pipeline on the FnApiRunner (fast, deterministic, offline)."""
    return TestPipeline(runner=LocalRunner(), options=PipelineOptions(["--direct_running_mode=in_memory"]))


@pytest.fixture
def test_pipeline():
    return local_test_pipeline()


@pytest.fixture(scope="session")
def dev_corpus() -> Path:
    if not (DEV / "docs.jsonl.gz").exists():
        pytest.skip("../shared/data/dev is not available")
    return DEV
