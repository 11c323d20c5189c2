"""The ``corpusforge`` command line.

    corpusforge run --input PATH_OR_GLOB [--input ...] --output DIR [--config FILE.yaml]
                    [--set section.key=value ...] [--workers N] [--overwrite] [Beam options]
    corpusforge report OUT      (rebuild OUT/report.html from OUT/stats.json and the outputs)

Arguments it does not know are Beam pipeline options (``--runner``, ``--project``, ...). Without
``--runner`` the run is local: Beam's FnApiRunner in multi-processing mode, one worker per core.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions

from corpusforge.pipelines.build import RUN_DIR, build_pipeline
from corpusforge.pipelines.local.progress import Progress
from corpusforge.pipelines.local.runner import LocalRunner, local_options, resolve_runner
from corpusforge.pipelines.report import data as report_data
from corpusforge.pipelines.report import stats as run_stats
from corpusforge.pipelines.report.bias import bias_summary
from corpusforge.pipelines.report.html import write_report
from corpusforge.schemas.config import Config, ConfigError, load_config
from corpusforge.transforms.io.read import InputError, discover_inputs
from corpusforge.transforms.tokenize.control import build_control, control_summary, write_tokenizer
from corpusforge.transforms.tokenize.mix import mix_summary
from corpusforge.transforms.tokenize.outputs import format_summary
from corpusforge.transforms.tokenize.stage import sequence_summary

LOG = logging.getLogger("corpusforge")
OUTPUT_ENTRIES = ("documents", "rejected", "sequences", "sequences_megatron", "sequences_mds", "tokenizer.json",
                  "stats.json", "report.html", RUN_DIR)


class UsageError(RuntimeError):
    """A problem the user can fix from the command line; printed without a traceback."""


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="corpusforge", description="Raw text corpora in, training-ready Parquet out.")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--input", action="append", required=True, help="file, folder or glob (repeatable)")
    run.add_argument("--output", required=True, help="output folder (any Beam filesystem)")
    run.add_argument("--config", help="YAML config; unset keys take the defaults of configs/default.yaml")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    run.add_argument("--workers", type=_positive_int, help="local worker processes (default: one per core)")
    run.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    rep = sub.add_parser("report", help="rebuild report.html of an existing output folder")
    rep.add_argument("output", help="output folder of an earlier run (holds stats.json)")
    rep.add_argument("--examples", type=int, help="rejected examples per reason (default: the run's config)")
    rep.add_argument("--example-chars", type=int, help="characters shown per example (default: the run's config)")
    return ap


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:
        return False


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to mix two runs' outputs; with --overwrite, remove the earlier run's entries only."""
    output = output.rstrip("/")
    present = [e for e in OUTPUT_ENTRIES if _exists(f"{output}/{e}")]
    if present and not overwrite:
        raise UsageError(f"output folder {output} already holds a run ({', '.join(present)}); "
                         "pass --overwrite to replace it")
    if present:
        FileSystems.delete([f"{output}/{e}" for e in present])
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


def _runner_name(runner: Any) -> str:
    return runner if isinstance(runner, str) else type(runner).__name__


def run(inputs: list[str], output: str, cfg: Config, beam_args: list[str], workers: int | None = None,
        overwrite: bool = False) -> dict[str, Any]:
    """Run the pipeline and write stats.json; returns the stats. Raises UsageError/InputError."""
    started = time.time()
    output = output.rstrip("/")
    files, missing = discover_inputs(inputs, cfg.input.format, exclude=output)
    if missing and cfg.input.on_unreadable == "fail":
        raise InputError("; ".join(f"cannot read input {m.path}: {m.error}" for m in missing))
    if not files:
        raise InputError("no input files to read (every --input was unreadable)")
    options = local_options(workers, beam_args)
    runner = resolve_runner(options)
    if not isinstance(runner, str):
        options.view_as(StandardOptions).runner = None
    total_mb = sum(f.size for f in files) / 1e6
    LOG.info("reading %d file(s), %.1f MB, with %s", len(files), total_mb, _runner_name(runner))
    pipeline = beam.Pipeline(runner=runner, options=options)
    plan = build_pipeline(pipeline, cfg, files, output, local_runner=isinstance(runner, LocalRunner))
    # only now, with the graph built (a bad benchmark path or tokenizer has failed by here), is an
    # earlier run's output removed
    prepare_output(output, overwrite)
    control = build_control(cfg.tokenize) if cfg.tokenize.enabled else None
    write_tokenizer(output, control)  # with control tokens: the tokenizer the ids are for
    LOG.info("stages: %s", " -> ".join(plan.stages))
    progress = Progress(plan.stages, cfg.report.progress_every_s)
    if isinstance(runner, LocalRunner):
        runner.progress = progress  # per-bundle counts; other runners get the heartbeat only
    with progress:
        result = pipeline.run()
        result.wait_until_finish()
    counters = run_stats.counters_from_result(result)
    outputs = {name: run_stats.parquet_rows(f"{output}/{name}") for name in ("documents", "rejected", "sequences")}
    unreadable = [
        {"path": m.path, "error": m.error, "records_read": 0, "partial": False} for m in missing
    ] + _read_unreadable(output)
    data = run_stats.build_stats(
        counters=counters,
        stage_order=plan.stages,
        config=cfg.resolved(),
        config_hash=cfg.digest(),
        inputs=[{"path": f.path, "bytes": f.size, "format": f.format, "compression": f.compression} for f in files],
        unreadable=unreadable,
        outputs=outputs,
        started=started,
        runner=_runner_name(runner),
    )
    if "pii" in data["stages"] and cfg.pii.enabled:  # a few masked passages per replaced type
        data["stages"]["pii"]["examples"] = report_data.pii_examples(
            output, cfg.pii.placeholder, cfg.report.examples_per_reason)
    sequences = sequence_summary(counters)
    if sequences is not None:
        data["sequences"] = sequences
    controls = control_summary(counters, control)
    if controls is not None:
        data["control_tokens"] = controls
    mix = mix_summary(counters, cfg.mix)
    if mix is not None:  # sequences hold the mixed tokens: sum of n_tokens x mix_uses
        data["mix"] = mix
        for group, g in mix["groups"].items():
            if g["no_documents"] or g["capped"]:
                LOG.warning("mix.targets.%s: %s (achieved %d of %d tokens)", group,
                            "no document has this group" if g["no_documents"] else
                            f"needs more than mix.max_epochs={cfg.mix.max_epochs}", g["achieved"], g["target"])
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
            LOG.warning("could not write report.html (rebuild it with: corpusforge report %s)", output, exc_info=True)
    return data


def summary_table(data: dict[str, Any]) -> str:
    lines = [f"{'stage':<16}{'in':>10}{'kept':>10}{'rejected':>10}  top reasons"]
    for name in data["stage_order"]:
        s = data["stages"].get(name, {})
        reasons = sorted(s.get("rejected_by_reason", {}).items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{r}={n}" for r, n in reasons)
        lines.append(f"{name:<16}{s.get('in', 0):>10}{s.get('kept', 0):>10}{s.get('rejected', 0):>10}  {top}")
    lines.append(f"records read {data['records_read']}: kept {data['kept']} + rejected {data['rejected']}"
                 f" ({'conserved' if data['conservation_ok'] else 'NOT CONSERVED'}) in {data['wall_time_s']:.1f}s")
    if data["unreadable_files"]:
        files, read = run_stats.partly_read(data["unreadable_files"])
        note = f", {files} of them partly read: their first {read} record(s) are in this run" if files else ""
        lines.append(f"unreadable files skipped: {len(data['unreadable_files'])}{note} (listed in stats.json)")
    return "\n".join(lines)


def _error_message(exc: BaseException) -> str:
    """Beam wraps worker errors in long traces; surface the line that names the problem."""
    text = str(exc)
    for marker in ("cannot read input file",):
        if marker in text:
            start = text.index(marker)
            return text[start:].splitlines()[0]
    # a worker's traceback: its last "SomeError: message" line says what went wrong
    error_lines = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*[A-Za-z_.]*(Error|Exception): ", ln)]
    if error_lines:
        return error_lines[-1]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "root"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # getLogger("root") is the root logger: without this, our own INFO lines (progress) vanish too.
    LOG.setLevel(logging.INFO)
    args, beam_args = _parser().parse_known_args(argv)
    try:
        if args.command == "run":
            cfg = load_config(args.config, args.set)
            data = run(args.input, args.output, cfg, beam_args, args.workers, args.overwrite)
            print(summary_table(data))
            out = args.output.rstrip("/")
            written = [e + ("/" if "." not in e else "") for e in OUTPUT_ENTRIES
                       if e != RUN_DIR and _exists(f"{out}/{e}")]
            print(f"output: {out}/ ({', '.join(written)})")
            return 0 if data["conservation_ok"] else 3
        if args.command == "report":
            print(write_report(args.output, args.examples, args.example_chars))
            return 0
    except (ConfigError, UsageError, InputError, FileNotFoundError) as exc:
        print(f"corpusforge: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a failed pipeline: say why in one line, keep the trace in the log
        LOG.debug("pipeline failed", exc_info=True)
        print(f"corpusforge: error: {_error_message(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
