"""Portability: the same graph on the portable runner API, and a Dataflow job built offline."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from corpusforge.pipelines.build import build_pipeline
from corpusforge.pipelines.cli import main
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR, run_cli, table_rows

DATAFLOW_OFFLINE = [
    "--runner=DataflowRunner", "--project=corpusforge-test", "--region=us-central1",
    "--temp_location=gs://corpusforge-test/tmp", "--staging_location=gs://corpusforge-test/staging",
    "--no_auth", "--dry_run=True", "--sdk_location=container", "--job_name=corpusforge-graph-check",
]


def comparable(rows: list[dict]) -> list[dict]:
    return rows  # every column: ids, texts, annotations, reasons


def test_portable_runner_gives_the_same_output_as_the_local_runner(tmp_path):
    local, portable = tmp_path / "local", tmp_path / "portable"
    assert run_cli(local, workers=2) == 0
    assert main(["run", "--input", str(SAMPLE_DIR), "--output", str(portable), "--config", str(SAMPLE_CONFIG),
                 "--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]) == 0
    for folder in ("documents", "rejected", "sequences"):
        if (local / folder).exists() or (portable / folder).exists():
            assert comparable(table_rows(portable / folder)) == comparable(table_rows(local / folder)), folder


def test_dataflow_job_graph_builds_offline():
    pytest.importorskip("apitools", reason="apache-beam[gcp] is not installed")
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    cfg = load_config(REPO / "configs" / "sample.yaml")
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    pipeline = beam.Pipeline(runner=DataflowRunner(), options=PipelineOptions(DATAFLOW_OFFLINE))
    plan = build_pipeline(pipeline, cfg, files, "gs://corpusforge-test/out")
    result = pipeline.run()
    names = {t.unique_name.split("/")[0] for t in result.job.proto_pipeline.components.transforms.values()}
    assert {"ReadDocuments", "Validate", "WriteDocuments", "WriteRejected"} <= names
    assert set(plan.stages[2:]) <= names  # every enabled stage is in the submitted graph
    assert result.job.proto.environment is not None


@pytest.mark.parametrize("runner_args", [
    ["--runner=FlinkRunner", "--flink_master=localhost:8081", "--environment_type=LOOPBACK"],
    ["--runner=SparkRunner", "--spark_master_url=spark://localhost:7077", "--environment_type=LOOPBACK"],
])
def test_cluster_runner_graphs_translate_to_the_portable_api(runner_args):
    """Short of submission (their job servers need Java and jars): the graph goes through the
    portable runner API proto, which is what Flink and Spark job servers receive."""
    cfg = load_config(REPO / "configs" / "sample.yaml")
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    pipeline = beam.Pipeline(options=PipelineOptions(runner_args))
    build_pipeline(pipeline, cfg, files, "/tmp/corpusforge-unused")
    proto = pipeline.to_runner_api()
    roundtrip = beam.Pipeline.from_runner_api(proto, pipeline.runner, pipeline._options)
    assert len(proto.components.transforms) > 20
    assert roundtrip is not None
