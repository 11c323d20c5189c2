"""The ``corpusforge`` command line.

    corpusforge run --input PATH_OR_GLOB [--input ...] --output DIR [--config FILE.yaml]
                    [--set section.key=value ...] [--workers N] [--overwrite] [Beam options]
    corpusforge report OUT      (rebuild OUT/report.html from OUT/stats.json and the outputs)

Arguments it does not know are Beam pipeline options (``--runner``, ``--project``, ...). Without
``--runner`` the run is local: Beam's FnApiRunner in multi-processing mode, one worker per core.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import sys
import time
from typing import Any

from corpusforge.pipelines import logs  # first: Beam logs while it is imported
from corpusforge.pipelines.local import lean_import, warm  # standard library only

# The command line itself (python -m, or the console script importing this module): the local
# runner's SDK worker processes start now, before Beam is imported here (see local/warm.py).
if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "corpusforge":
    warm.start_early(sys.argv[1:])
    if warm.local_run(sys.argv[1:]):  # Beam without what a local run never uses (see lean_import.py)
        lean_import.import_lean(["apache_beam"])

# isort: split
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from corpusforge import __version__
from corpusforge.pipelines import incremental, interrupts
from corpusforge.pipelines.build import RUN_DIR, WORK_DIR, build_pipeline, default_release
from corpusforge.pipelines.local.progress import Progress, process_started_at
from corpusforge.pipelines.local.runner import (
    LocalRunner,
    local_options,
    local_worker_processes,
    resolve_runner,
)
from corpusforge.pipelines.report import data as report_data
from corpusforge.pipelines.report import stats as run_stats
from corpusforge.pipelines.report.bias import bias_summary
from corpusforge.pipelines.stages import enabled_stages, near_params
from corpusforge.schemas.config import Config, ConfigError, load_config
from corpusforge.transforms.dedup.index import INDEX_DIR, IndexParams, write_params
from corpusforge.transforms.io.paths import check_writable, deletable, entry_exists, is_remote
from corpusforge.transforms.io.read import InputError, discover_inputs
from corpusforge.transforms.tokenize.control import build_control, control_summary, write_tokenizer
from corpusforge.transforms.tokenize.mix import mix_summary
from corpusforge.transforms.tokenize.outputs import format_summary
from corpusforge.transforms.tokenize.sequences_sink import SEQUENCES_TEMP_PREFIX
from corpusforge.transforms.tokenize.summary import sequence_summary

LOG = logging.getLogger("corpusforge")
# Written last, once everything else is in place (the Hadoop/Spark convention): a reader that finds
# no _SUCCESS is looking at a run that failed, was interrupted or is still going.
SUCCESS_MARKER = "_SUCCESS"
OUTPUT_ENTRIES = (
    "documents",
    "rejected",
    "sequences",
    "sequences_megatron",
    "sequences_mds",
    "dedup_index",
    "tokenizer.json",
    "stats.json",
    "report.html",
    RUN_DIR,
    *incremental.ENTRIES,
    SUCCESS_MARKER,
)


class UsageError(RuntimeError):
    """A problem the user can fix from the command line; printed without a traceback."""


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def version_line() -> str:
    """What ``--version`` prints: ours and the versions a bug report needs (Beam, Python)."""
    from corpusforge import __version__

    return f"corpusforge {__version__} (apache-beam {beam.__version__}, python {sys.version.split()[0]})"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="corpusforge", description="Raw text corpora in, training-ready Parquet out."
    )
    ap.add_argument("--version", action="version", version=version_line())
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--input", action="append", required=True, help="file, folder or glob (repeatable)")
    run.add_argument("--output", required=True, help="output folder (any Beam filesystem)")
    run.add_argument("--config", help="YAML config; unset keys take the defaults of configs/default.yaml")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    run.add_argument("--workers", type=_positive_int, help="local worker processes (default: one per core)")
    run.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    run.add_argument(
        "--release", help="name of this run in its dedup_index/ (default: the output folder's name)"
    )
    run.add_argument(
        "--incremental",
        action="store_true",
        help="run the input in parts of input.part_mb, recorded in OUT/manifest.json: a rerun "
        "resumes after the last finished part and new input files become new parts",
    )
    rep = sub.add_parser("report", help="rebuild report.html of an existing output folder")
    rep.add_argument("output", help="output folder of an earlier run (holds stats.json)")
    rep.add_argument("--examples", type=int, help="rejected examples per reason (default: the run's config)")
    rep.add_argument(
        "--example-chars", type=int, help="characters shown per example (default: the run's config)"
    )
    return ap


def _exists(path: str) -> bool:
    try:
        return entry_exists(path)  # on an object store a folder is a prefix, not an object
    except Exception:
        return False


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to mix two runs' outputs; with --overwrite, remove the earlier run's entries only.

    On an object store an entry such as ``documents`` is a prefix, not an object, and a missing
    bucket lists as empty: the store is checked for write access before anything is deleted.
    """
    output = output.rstrip("/")
    try:
        present = [e for e in OUTPUT_ENTRIES if entry_exists(f"{output}/{e}")]
        if is_remote(output):
            check_writable(output)
    except Exception as exc:  # missing bucket, denied access, unreachable endpoint
        raise UsageError(f"cannot write to output {output}: {_error_message(exc)}") from exc
    if present and not overwrite:
        raise UsageError(
            f"output folder {output} already holds a run ({', '.join(present)}); "
            "pass --overwrite to replace it"
        )
    if SUCCESS_MARKER in present:  # first, so that a half-deleted old run never looks finished
        FileSystems.delete([f"{output}/{SUCCESS_MARKER}"])
        present.remove(SUCCESS_MARKER)
    if present:
        FileSystems.delete([deletable(f"{output}/{e}") for e in present])
    if "://" not in output:
        import os

        os.makedirs(output, exist_ok=True)


def _read_unreadable(output: str) -> list[dict[str, str]]:
    out = []
    try:
        matched = FileSystems.match([f"{output}/{RUN_DIR}/unreadable*"])[0].metadata_list
    except Exception:
        return out
    for m in matched:
        with FileSystems.open(m.path) as f:
            out.extend(json.loads(line) for line in f.read().decode("utf-8").splitlines() if line.strip())
    by_path: dict[str, dict[str, str]] = {}
    for u in out:  # a file read in several tasks (splits, row groups) may fail in more than one
        entry = by_path.setdefault(u["path"], {"path": u["path"], "error": u["error"], "records_read": 0})
        if u["error"] not in entry["error"]:
            entry["error"] += "; " + u["error"]
        entry["records_read"] += u.get("records_read", 0)
    for entry in by_path.values():
        # partly read: some records came out before the error (they are in the run, kept or
        # rejected like any other); the rest of the file (or of its failing splits) is missing
        entry["partial"] = entry["records_read"] > 0
    return [by_path[p] for p in sorted(by_path)]


def success_line() -> bytes:
    """The ``_SUCCESS`` marker's content: never empty (see :func:`finish_output`)."""
    finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return f"corpusforge {__version__} finished {finished}\n".encode()


def finish_output(output: str, cfg: Config) -> None:
    """Remove what the writers leave behind, then write ``_SUCCESS``, last of all.

    The marker holds one line (corpusforge's version and the time): Beam's S3 uploader fails on an
    empty object (MalformedXML on CompleteMultipartUpload), and readers only test that it exists."""
    leftovers = (
        [f"{output}/{SEQUENCES_TEMP_PREFIX}{b}" for b in cfg.tokenize.buckets] if cfg.tokenize.enabled else []
    )
    leftovers = [p for p in leftovers if _exists(p)]
    work = f"{output}/{RUN_DIR}/{WORK_DIR}"  # the documents dedup parked in files during the run
    if _exists(work):
        leftovers.append(deletable(work))
    if leftovers:
        FileSystems.delete(leftovers)
    with FileSystems.create(f"{output}/{SUCCESS_MARKER}") as f:
        f.write(success_line())


def write_report(output: str, examples: int | None = None, example_chars: int | None = None) -> str:
    """report.html, imported only when written: nothing of the report is needed before the first
    stage runs (its figures are our own SVG, its examples' masking imports no presidio)."""
    from corpusforge.pipelines.report.html import write_report as write

    return write(output, examples, example_chars)


# Where the next run's start-up is counted from: the first command of a process puts the process
# start here (interpreter and imports included); a run called from Python, a later command in the
# same process or a later part of an incremental run counts from its own call.
_startup_origin: list[float] = []
_commands_run: list[str] = []


def run_timing(origin: float, progress: Progress, pipeline_done: float) -> dict[str, float | None]:
    """stats.json's ``timing``: ``startup_s`` from ``origin`` to the first stage running (see
    :class:`~corpusforge.pipelines.local.progress.Progress`; None where the runner does not report
    bundles) and the driver's CPU seconds by then (``startup_cpu_s_driver``: the machine's load does
    not inflate it), ``stages_s`` from then until the pipeline finished, ``pipeline_s`` both together."""
    first_stage_at, cpu = progress.first_stage_at, progress.first_stage_cpu_s
    return {
        "startup_s": None if first_stage_at is None else round(first_stage_at - origin, 3),
        "startup_cpu_s_driver": None if cpu is None else round(cpu, 3),
        "stages_s": None if first_stage_at is None else round(pipeline_done - first_stage_at, 3),
        "pipeline_s": round(pipeline_done - origin, 3),
    }


def _runner_name(runner: Any) -> str:
    return runner if isinstance(runner, str) else type(runner).__name__


def run(
    inputs: list[str],
    output: str,
    cfg: Config,
    beam_args: list[str],
    workers: int | None = None,
    overwrite: bool = False,
    release: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline and write stats.json; returns the stats. Raises UsageError/InputError."""
    pool = warm.claim(local_worker_processes(workers, beam_args))
    if pool is not None:
        pool.preload(warm.preloads_for(cfg), shared=warm.shared_preloads_for(cfg))
    try:
        return _run(inputs, output, cfg, beam_args, workers, overwrite, release, pool)
    finally:
        if pool is not None:  # the processes no SDK worker took; a run that failed early took none
            pool.close()


def _run(
    inputs: list[str],
    output: str,
    cfg: Config,
    beam_args: list[str],
    workers: int | None,
    overwrite: bool,
    release: str | None,
    warm_pool: warm.WarmPool | None,
) -> dict[str, Any]:
    started = time.time()
    origin = _startup_origin.pop() if _startup_origin else started
    output = output.rstrip("/")
    options = local_options(workers, beam_args)
    # s3:// and gs:// clients take their endpoint and credentials from the pipeline options; the
    # driver's own listing and deleting (below) must see them, not only the pipeline's workers
    FileSystems.set_options(options)
    files, missing = discover_inputs(inputs, cfg.input.format, exclude=output)
    if missing and cfg.input.on_unreadable == "fail":
        raise InputError("; ".join(f"cannot read input {m.path}: {m.error}" for m in missing))
    if not files:
        raise InputError("no input files to read (every --input was unreadable)")
    runner = resolve_runner(options)
    if not isinstance(runner, str):
        options.view_as(StandardOptions).runner = None
    total_mb = sum(f.size for f in files) / 1e6
    LOG.info("reading %d file(s), %.1f MB, with %s", len(files), total_mb, _runner_name(runner))
    pipeline = beam.Pipeline(runner=runner, options=options)
    local = isinstance(runner, LocalRunner)
    plan = build_pipeline(
        pipeline,
        cfg,
        files,
        output,
        local_runner=local,
        release=release,
        workers=options.view_as(DirectOptions).direct_num_workers if local else None,
    )
    # only now, with the graph built (a bad benchmark path or tokenizer has failed by here), is an
    # earlier run's output removed
    prepare_output(output, overwrite)
    logs.log_to_file(output)
    control = build_control(cfg.tokenize) if cfg.tokenize.enabled else None
    write_tokenizer(output, control)  # with control tokens: the tokenizer the ids are for
    LOG.info("stages: %s", " -> ".join(plan.stages))
    progress = Progress(plan.stages, cfg.report.progress_every_s)
    if local:
        runner.progress = progress  # per-bundle counts; other runners get the heartbeat only
        runner.warm_pool = warm_pool
    with progress:
        # the local runner runs the graph through the Fn API, so Beam's optional runner-API round
        # trip is of no use there; deciding whether it could be done (test_runner_api="AUTO")
        # pickles and unpickles every transform of the graph: ~0.3 s of the driver's CPU on the
        # embedded sample, before any worker starts
        result = pipeline.run(test_runner_api=False if local else "AUTO")
        result.wait_until_finish()
    pipeline_done = time.time()
    if cfg.writes_dedup_index():
        write_params(f"{output}/{INDEX_DIR}", IndexParams.of(near_params(cfg)), plan.release, __version__)
    counters = run_stats.counters_from_result(result)
    outputs = {
        name: run_stats.parquet_rows(f"{output}/{name}") for name in ("documents", "rejected", "sequences")
    }
    unreadable = [
        {"path": m.path, "error": m.error, "records_read": 0, "partial": False} for m in missing
    ] + _read_unreadable(output)
    data = run_stats.build_stats(
        counters=counters,
        stage_order=plan.stages,
        config=cfg.resolved(),
        config_hash=cfg.digest(),
        inputs=[
            {"path": f.path, "bytes": f.size, "format": f.format, "compression": f.compression} for f in files
        ],
        unreadable=unreadable,
        outputs=outputs,
        started=started,
        runner=_runner_name(runner),
    )
    data["timing"] = run_timing(origin, progress, pipeline_done)
    if data["timing"]["startup_s"] is not None:
        LOG.info(
            "start-up: first stage running %.1f s after the process started", data["timing"]["startup_s"]
        )
    if "pii" in data["stages"] and cfg.pii.enabled:  # a few masked passages per replaced type
        data["stages"]["pii"]["examples"] = report_data.pii_examples(
            output, cfg.pii.placeholder, cfg.report.examples_per_reason
        )
    sequences = sequence_summary(counters)
    if sequences is not None:
        data["sequences"] = sequences
    controls = control_summary(counters, control, output)
    if controls is not None:
        data["control_tokens"] = controls
    mix = mix_summary(counters, cfg.mix)
    if mix is not None:  # sequences hold the mixed tokens: sum of n_tokens x mix_uses
        data["mix"] = mix
        for group, g in mix["groups"].items():
            if g["no_documents"] or g["capped"]:
                LOG.warning(
                    "mix.targets.%s: %s (achieved %d of %d tokens)",
                    group,
                    "no document has this group"
                    if g["no_documents"]
                    else f"needs more than mix.max_epochs={cfg.mix.max_epochs}",
                    g["achieved"],
                    g["target"],
                )
        if sequences is not None:
            sequences["tokens_conserved"] = sequences["tokens"] == mix["tokens"]
    formats = format_summary(counters, cfg.tokenize.formats)
    if formats is not None:  # megatron/mds rows and tokens, checked against sequences/
        data["formats"] = formats
    bias = bias_summary(counters.get("bias"))
    if bias is not None:
        data["bias"] = bias
    run_stats.write_json(f"{output}/stats.json", data)
    if cfg.report.enabled:
        try:
            LOG.info("report written to %s", write_report(output))
        except Exception:  # the data is written; a broken plot must not make the run look failed
            LOG.warning(
                "could not write report.html (rebuild it with: corpusforge report %s)", output, exc_info=True
            )
    finish_output(output, cfg)
    return data


def _holds_plain_run(output: str) -> bool:
    """An output folder written by a run without --incremental (its outputs are not hive parts)."""
    if _exists(f"{output}/stats.json") or _exists(f"{output}/report.html"):
        return True
    return any(not child.startswith("part=") for child in incremental.children(f"{output}/documents"))


def run_incremental(
    inputs: list[str],
    output: str,
    cfg: Config,
    beam_args: list[str],
    workers: int | None = None,
    overwrite: bool = False,
    release: str | None = None,
) -> dict[str, Any]:
    """``--incremental``: check the manifest (before anything is deleted), run the missing parts,
    write the top-level stats.json, report.html and, last, _SUCCESS."""
    started = time.time()
    output = output.rstrip("/")
    files, missing = discover_inputs(inputs, cfg.input.format, exclude=output)
    if missing and cfg.input.on_unreadable == "fail":
        raise InputError("; ".join(f"cannot read input {m.path}: {m.error}" for m in missing))
    if not files:
        raise InputError("no input files to read (every --input was unreadable)")
    # a bad benchmark or dedup.previous path fails here, before --overwrite removes anything
    enabled_stages(incremental.part_config(cfg, output, 0))
    if (cfg.dedup.exact.enabled or cfg.dedup.near.enabled) and not cfg.writes_dedup_index():
        # part N deduplicates against the dedup_index/ of parts 0..N-1: part 1 would fail to start
        raise UsageError(
            "--incremental deduplicates each part against the earlier parts' dedup_index/, which "
            "output.dedup_index=false does not write: set output.dedup_index to auto or true, or turn "
            "dedup.exact and dedup.near off"
        )
    manifest = None
    if not overwrite:
        try:
            manifest = incremental.load_manifest(output)
        except incremental.ManifestError as exc:
            raise UsageError(str(exc)) from None
        if manifest is None and _holds_plain_run(output):
            raise UsageError(
                f"output folder {output} holds a run made without --incremental; "
                "pass --overwrite to replace it"
            )
        if manifest is not None:
            problems = incremental.manifest_problems(manifest, cfg.digest())
            if problems:
                raise UsageError(
                    f"cannot continue the incremental run in {output}: "
                    + "; ".join(problems)
                    + " (pass --overwrite to start over)"
                )
    else:
        prepare_output(output, True)
        if _exists(incremental.top_success(output)):
            FileSystems.delete([incremental.top_success(output)])
    release = release or default_release(output)
    runner = _runner_name(resolve_runner(local_options(workers, beam_args)))

    def run_part(paths: list[str], folder: str, part_cfg: Config) -> dict[str, Any]:
        LOG.info("part %s: %d file(s)", folder.rsplit("/", 1)[-1], len(paths))
        return run(paths, folder, part_cfg, beam_args, workers, overwrite=True, release=release)

    data = incremental.run_incremental(files, output, cfg, run_part, manifest, started, runner)
    run_stats.write_json(f"{output}/stats.json", data)
    if cfg.report.enabled:
        try:
            write_report(output)
        except Exception:
            LOG.warning(
                "could not write report.html (rebuild it with: corpusforge report %s)", output, exc_info=True
            )
    with FileSystems.create(incremental.top_success(output)) as f:
        f.write(success_line())  # written last: every part is recorded and the totals are written
    return data


def summary_table(data: dict[str, Any]) -> str:
    lines = [f"{'stage':<16}{'in':>10}{'kept':>10}{'rejected':>10}  top reasons"]
    for name in data["stage_order"]:
        s = data["stages"].get(name, {})
        reasons = sorted(s.get("rejected_by_reason", {}).items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{r}={n}" for r, n in reasons)
        lines.append(f"{name:<16}{s.get('in', 0):>10}{s.get('kept', 0):>10}{s.get('rejected', 0):>10}  {top}")
    lines.append(
        f"records read {data['records_read']}: kept {data['kept']} + rejected {data['rejected']}"
        f" ({'conserved' if data['conservation_ok'] else 'NOT CONSERVED'}) in {data['wall_time_s']:.1f}s"
    )
    if data["unreadable_files"]:
        files, read = run_stats.partly_read(data["unreadable_files"])
        note = f", {files} of them partly read: their first {read} record(s) are in this run" if files else ""
        lines.append(
            f"unreadable files skipped: {len(data['unreadable_files'])}{note} (listed in stats.json)"
        )
    return "\n".join(lines)


def _error_message(exc: BaseException) -> str:
    """Beam wraps worker errors in long traces; surface the line that names the problem."""
    text = str(exc)
    # errors that name what the user fixes (an input file, a config key known only from the data)
    for marker in ("cannot read input file", "mix.targets."):
        if marker in text:
            start = text.index(marker)
            return text[start:].splitlines()[0].split(" [while running")[0]
    # a worker's traceback: its last "SomeError: message" line says what went wrong
    error_lines = [
        ln.strip() for ln in text.splitlines() if re.match(r"^\s*[A-Za-z_.]*(Error|Exception): ", ln)
    ]
    if error_lines:
        return error_lines[-1]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _stop_now(exc: BaseException) -> None:
    """A run stopped from outside (signal) or by a dead SDK worker: kill the workers, say so in one
    line and exit at once (Beam's threads would print tracebacks, or wait for the lost worker)."""
    interrupts.stop_workers()
    if isinstance(exc, interrupts.Interrupted):
        line, status = (
            f"interrupted by {exc.name}: the output is incomplete (no _SUCCESS marker)",
            128 + exc.signum,
        )
    else:
        line, status = f"error: {exc.message()} (details in {logs.current_path() or 'the log'})", 1
    sys.stdout.flush()
    print(f"corpusforge: {line}", file=sys.stderr, flush=True)
    os._exit(status)


def main(argv: list[str] | None = None) -> int:
    logs.install()  # corpusforge's lines on the terminal; Beam's to OUT/_run/beam.log (see logs.py)
    args, beam_args = _parser().parse_known_args(argv)
    previous_handlers = interrupts.handle_signals(_stop_now) if args.command == "run" else {}
    try:
        if args.command == "run":
            interrupts.watch_workers()
            cfg = load_config(args.config, args.set)
            go = run_incremental if args.incremental else run
            _startup_origin[:] = [] if _commands_run else [process_started_at()]
            _commands_run.append(args.command)
            data = go(args.input, args.output, cfg, beam_args, args.workers, args.overwrite, args.release)
            print(summary_table(data))
            out = args.output.rstrip("/")
            written = [
                e + ("/" if "." not in e else "")
                for e in OUTPUT_ENTRIES
                if e not in (RUN_DIR, SUCCESS_MARKER) and _exists(f"{out}/{e}")
            ]
            print(f"output: {out}/ ({', '.join(written)}); Beam's log: {logs.current_path()}")
            if not data["conservation_ok"]:
                print(f"corpusforge: error: {run_stats.conservation_message(data)}", file=sys.stderr)
                return 3
            return 0
        if args.command == "report":
            print(write_report(args.output, args.examples, args.example_chars))
            return 0
    except (ConfigError, UsageError, InputError, FileNotFoundError) as exc:
        print(f"corpusforge: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a failed pipeline: say why in one line, keep the trace in the log
        logging.getLogger("apache_beam.failure").error("pipeline failed", exc_info=True)  # to beam.log
        died = interrupts.worker_died() if "Channel closed" in str(exc) else None
        if died is not None:  # the runner's error came first: name the worker's death instead
            interrupts.stop_workers()
        message = died.message() if died is not None else _error_message(exc)
        print(
            f"corpusforge: error: {message} (details in {logs.current_path() or 'the log'})", file=sys.stderr
        )
        return 1
    finally:
        interrupts.restore_signals(previous_handlers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
