"""Real engines, executed (not only translated): the embedded sample through the CLI on Flink
(``--flink_master=[local]``, a MiniCluster in Beam's job server) and Spark (``local[2]``), and on
Beam's portable job service with SDK harness processes from an EXTERNAL worker pool. Each must give
exactly the local runner's output: kept documents, rejected (id, reason), sequence rows and the
stats.json counters (the job servers report counters as attempted, not committed).

Each engine runs the sample once (module-scoped, parametrized fixture); every assertion reads that
run and the session's shared local run. Flink and Spark skip, naming what is missing, without Java or without the job-server jar in
Beam's jar cache (``make jars``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLE_CONFIG, SAMPLE_DIR, SAMPLE_RUN_SETTINGS, table_rows

pytestmark = [pytest.mark.slow, pytest.mark.engine]

RUN_TIMEOUT_S = 600
# stats.json fields that describe the run rather than what it computed (output files are sharded by
# the engine; only their row counts must agree)
RUN_SPECIFIC = {"outputs", "wall_time_s", "timing", "finished_at", "runner"}

ENGINES = {
    "flink": [
        "--runner=FlinkRunner",
        "--flink_master=[local]",
        "--environment_type=LOOPBACK",
        "--parallelism=2",
    ],
    "spark": ["--runner=SparkRunner", "--spark_master_url=local[2]", "--environment_type=LOOPBACK"],
    # Beam's Python job service; harnesses are separate processes started by the worker pool
    "portable-external": ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL"],
}


def java_binary() -> tuple[str | None, int | None, str]:
    """(java path, major version, why not) for the job servers' JVM: JAVA_HOME first, else PATH."""
    home = os.environ.get("JAVA_HOME")
    java = (
        str(Path(home) / "bin" / "java")
        if home and (Path(home) / "bin" / "java").exists()
        else shutil.which("java")
    )
    if not java:
        return (
            None,
            None,
            "no java on PATH or in JAVA_HOME (the Flink and Spark job servers need Java 11 or 17)",
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, None, f"{java} -version failed: {e}"
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None, None, f"cannot read the Java version from {java} -version: {out.strip()[:200]}"
    major = int(m.group(2)) if m.group(1) == "1" else int(m.group(1))
    return java, major, ""


def cached_job_server_jar(engine: str, args: list[str]) -> Path:
    """The file Beam's SDK uses for this engine's job server without downloading: the base name of
    the Maven URL it builds, in its jar cache (what ``make jars`` writes)."""
    from apache_beam.options.pipeline_options import JobServerOptions, PipelineOptions
    from apache_beam.runners.portability.flink_runner import FlinkJarJobServer
    from apache_beam.runners.portability.spark_runner import SparkJarJobServer
    from apache_beam.utils.subprocess_server import JavaJarServer

    options = PipelineOptions(args)
    server = (FlinkJarJobServer if engine == "flink" else SparkJarJobServer)(options)
    cache = options.view_as(JobServerOptions).jar_cache_dir or JavaJarServer.JAR_CACHE
    return Path(cache) / os.path.basename(server.path_to_jar())


def skip_reason(engine: str) -> str:
    if engine not in ("flink", "spark"):
        return ""
    java, major, why = java_binary()
    if not java:
        return why
    if major < 11:
        return f"{java} is Java {major}; Beam's job servers need Java 11 or 17"
    if engine == "spark" and major >= 23:
        return f"{java} is Java {major}; Spark 3.5 fails on Java 23 and later (use 17: JAVA_HOME)"
    jar = cached_job_server_jar(engine, ENGINES[engine])
    if not jar.exists():
        return (
            f"{jar.name} is not in Beam's jar cache {jar.parent} (run `make jars`; Maven Central may "
            f"not serve org.apache.beam:{jar.name[:-4].rsplit('-', 1)[0]}:{jar.name[:-4].rsplit('-', 1)[1]})"
        )
    return ""


@pytest.fixture(scope="module")
def worker_pool(tmp_path_factory):
    """corpusforge's worker pool on a free loopback port; stopped (with its harnesses) afterwards.
    Its output goes to a file, never a pipe: the harness processes inherit it, and a pipe nobody
    reads fills up and blocks them (the run then hangs at "starting")."""
    log = tmp_path_factory.mktemp("worker_pool") / "pool.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corpusforge.pipelines.worker_pool", "--port", "0"],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"listening at (\S+)", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker pool did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield m.group(1)
    finally:
        stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def local_run(sample_run) -> Path:
    """The local runner's output to compare with: the session's shared two-worker run of the sample
    (tests/conftest.py), whose settings the engine runs repeat (SAMPLE_RUN_SETTINGS)."""
    return sample_run


@pytest.fixture(scope="module", params=list(ENGINES))
def engine_run(request, tmp_path_factory) -> tuple[str, Path, float]:
    """(engine, output folder, seconds) of one CLI run of the sample on the engine, in its own
    process group (the job server's JVM included), killed if it outlives RUN_TIMEOUT_S."""
    engine = request.param
    why = skip_reason(engine)
    if why:
        pytest.skip(why)
    args = list(ENGINES[engine])
    if engine in ("flink", "spark"):
        args.append(f"--job_server_java_launcher={java_binary()[0]}")
    if "--environment_type=EXTERNAL" in args:
        args.append(f"--environment_config={request.getfixturevalue('worker_pool')}")
    out = tmp_path_factory.mktemp(engine) / "out"
    log = out.parent / "run.log"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from corpusforge.pipelines.cli import main; sys.exit(main())",
        "run",
        "--input",
        str(SAMPLE_DIR),
        "--output",
        str(out),
        "--config",
        str(SAMPLE_CONFIG),
        *SAMPLE_RUN_SETTINGS,
        *args,
    ]
    started = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            stop_process_group(proc)
    seconds = time.monotonic() - started
    tail = log.read_text(errors="replace")[-4000:]
    assert rc is not None, f"{engine} run did not finish in {RUN_TIMEOUT_S}s:\n{tail}"
    assert rc == 0, f"{engine} run failed (exit {rc}):\n{tail}"
    assert (out / "stats.json").exists(), tail
    return engine, out, seconds


def comparable_stats(out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    kept = {k: v for k, v in stats.items() if k not in RUN_SPECIFIC}
    kept["output_rows"] = {name: o["rows"] for name, o in stats["outputs"].items()}
    return kept


def test_engine_keeps_the_same_documents(engine_run, local_run):
    engine, out, _ = engine_run
    got, want = table_rows(out / "documents"), table_rows(local_run / "documents")
    assert [(r["id"], r["text"]) for r in got] == [(r["id"], r["text"]) for r in want], engine
    assert got == want, f"{engine}: same ids and texts, different annotations"


def test_engine_rejects_the_same_records_for_the_same_reasons(engine_run, local_run):
    engine, out, _ = engine_run
    got, want = table_rows(out / "rejected"), table_rows(local_run / "rejected")
    assert [(r["id"], r["reason"]) for r in got] == [(r["id"], r["reason"]) for r in want], engine
    assert got == want, engine


def test_engine_writes_the_same_sequences(engine_run, local_run):
    engine, out, _ = engine_run
    assert table_rows(out / "sequences") == table_rows(local_run / "sequences"), engine


def test_engine_stats_have_every_counter_of_the_local_run(engine_run, local_run):
    engine, out, _ = engine_run
    got, want = comparable_stats(out), comparable_stats(local_run)
    assert got["conservation_ok"] is True, engine
    for stage, summary in want["stages"].items():
        assert got["stages"].get(stage) == summary, f"{engine}: stage {stage}"
    assert got == want, engine
