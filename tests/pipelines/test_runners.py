"""Portability: the same graph on the portable runner API, and a Dataflow job built offline."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from corpusforge.pipelines.build import build_pipeline
from corpusforge.pipelines.cli import main
from corpusforge.schemas.config import load_config
from corpusforge.transforms.io.read import discover_inputs
from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR, table_rows

DATAFLOW_OFFLINE = [
    "--runner=DataflowRunner",
    "--project=corpusforge-test",
    "--region=us-central1",
    "--temp_location=gs://corpusforge-test/tmp",
    "--staging_location=gs://corpusforge-test/staging",
    "--no_auth",
    "--dry_run=True",
    "--sdk_location=container",
    "--job_name=corpusforge-graph-check",
]


@pytest.mark.slow
@pytest.mark.engine  # Beam's embedded portable job service
def test_portable_runner_gives_the_same_output_as_the_local_runner(sample_run, tmp_path):
    """Full rows of every output folder: the shared two-worker local run against the portable runner."""
    portable = tmp_path / "portable"
    assert (
        main(
            [
                "run",
                "--input",
                str(SAMPLE_DIR),
                "--output",
                str(portable),
                "--config",
                str(SAMPLE_CONFIG),
                "--runner=PortableRunner",
                "--job_endpoint=embed",
                "--environment_type=LOOPBACK",
            ]
        )
        == 0
    )
    for folder in ("documents", "rejected", "sequences"):
        local_rows = table_rows(sample_run / folder)
        assert local_rows, folder  # a folder both runs failed to write must not compare equal
        assert table_rows(portable / folder) == local_rows, folder


def graph_names(proto) -> set[str]:
    """Top-level transform names of a runner API pipeline proto."""
    return {t.unique_name.split("/")[0] for t in proto.components.transforms.values()}


WRITERS = {
    "ReadDocuments",
    "Validate",
    "WriteDocuments",
    "WriteRejected",
    "WriteSequences",
    "WriteUnreadable",
}


def test_dataflow_job_graph_builds_offline():
    pytest.importorskip("apitools", reason="apache-beam[gcp] is not installed")
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    cfg = load_config(REPO / "configs" / "sample.yaml")
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    pipeline = beam.Pipeline(runner=DataflowRunner(), options=PipelineOptions(DATAFLOW_OFFLINE))
    plan = build_pipeline(pipeline, cfg, files, "gs://corpusforge-test/out")
    result = pipeline.run()
    names = graph_names(result.job.proto_pipeline)
    assert WRITERS <= names
    assert set(plan.stages[2:]) <= names  # every enabled stage is in the submitted graph
    # the options reach the job that would be submitted
    assert result.job.proto.name == "corpusforge-graph-check"
    assert result.job.options.get_all_options()["project"] == "corpusforge-test"


@pytest.mark.parametrize(
    "runner_args",
    [
        ["--runner=FlinkRunner", "--flink_master=localhost:8081", "--environment_type=LOOPBACK"],
        ["--runner=SparkRunner", "--spark_master_url=spark://localhost:7077", "--environment_type=LOOPBACK"],
    ],
)
def test_cluster_runner_graphs_translate_to_the_portable_api(runner_args):
    """Short of submission (their job servers need Java and jars): the graph goes through the
    portable runner API proto, which is what Flink and Spark job servers receive."""
    cfg = load_config(REPO / "configs" / "sample.yaml")
    files, _ = discover_inputs([str(SAMPLE_DIR)])
    pipeline = beam.Pipeline(options=PipelineOptions(runner_args))
    plan = build_pipeline(pipeline, cfg, files, "/tmp/corpusforge-unused")
    proto = pipeline.to_runner_api()
    assert WRITERS <= graph_names(proto)
    assert set(plan.stages[2:]) <= graph_names(proto)  # every enabled stage, tokenize and bucket included
    # what a job server rebuilds from the proto is the same graph, with the runner's options
    roundtrip = beam.Pipeline.from_runner_api(proto, pipeline.runner, pipeline._options)
    assert graph_names(roundtrip.to_runner_api()) == graph_names(proto)
    rebuilt = roundtrip._options.get_all_options()
    for arg in runner_args:
        key, value = arg.lstrip("-").split("=", 1)
        assert str(rebuilt[key]) == value, key
