"""Helpers shared between test modules: paths, a local test pipeline, a CLI run of the sample and
reading its Parquet back, the report's HTML parser and a synthetic stats.json.

One module, so that a test file never imports another test file (pytest would collect its tests
twice in spirit, and moving a test would break its neighbours)."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from corpusforge.pipelines.cli import main
from corpusforge.pipelines.local.runner import LocalRunner
from corpusforge.pipelines.report.bias import bias_summary
from corpusforge.pipelines.stages import SWITCHED_SECTIONS

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "samples" / "sample"
SAMPLE_CONFIG = REPO / "configs" / "sample.yaml"
SHARED = Path(os.environ.get("CORPUSFORGE_SHARED", REPO.parent / "shared"))
DEV = SHARED / "data" / "dev"
SCORE_PY = SHARED / "tools" / "score.py"
DEV_NEOX = SHARED / "data" / "tokenizers" / "gpt-neox-20b.tokenizer.json"

# What the shared run adds to configs/sample.yaml: its report shows two examples per reason cut to 80
# characters, so that the report tests (tests/pipelines/report/test_report_run.py) see the choice and
# the truncation on this run too. The engine tests run the sample with the same settings.
SAMPLE_RUN_SETTINGS = ("--set", "report.examples_per_reason=2", "--set", "report.example_chars=80")


def local_test_pipeline() -> TestPipeline:
    """An in-process pipeline on the FnApiRunner (fast, deterministic, offline)."""
    return TestPipeline(runner=LocalRunner(), options=PipelineOptions(["--direct_running_mode=in_memory"]))


def run_cli(out: Path, *extra: str, workers: int = 2) -> int:
    """The sample through the CLI with configs/sample.yaml; returns the exit code."""
    return main(
        [
            "run",
            "--input",
            str(SAMPLE_DIR),
            "--output",
            str(out),
            "--config",
            str(SAMPLE_CONFIG),
            "--workers",
            str(workers),
            *extra,
        ]
    )


def table_rows(folder: Path) -> list[dict]:
    """Every row of a Parquet output folder, in a stable order (shard layout does not matter)."""
    rows = ds.dataset(str(folder), format="parquet").to_table().to_pylist()
    # documents/ and rejected/ rows have an id (a duplicate id's two records can both be rejected:
    # the reason breaks the tie); sequences/ rows a doc_id and a chunk_index
    return sorted(
        rows, key=lambda r: (r["id"], r.get("reason") or "") if "id" in r else (r["doc_id"], r["chunk_index"])
    )


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (not a zombie nor dead), read from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (a test's own children, wherever they
    were re-parented)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def sample_texts(utf8_only: bool = False) -> list[str]:
    """Every string ``text`` of the embedded sample's files, in file order, malformed lines skipped.

    ``utf8_only`` also leaves out texts with lone surrogates, which validation rejects before any stage
    sees them (the tokenizer tests compare with a library that cannot take them)."""
    texts = []
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                continue
            if utf8_only:
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    continue
            texts.append(text)
    return texts


def dev_or_sample_texts() -> list[str]:
    """Every ``text`` of the dev corpus (its 1,559 real pages) where ``../shared`` exists, else the
    embedded sample's: the real text a compiled path is compared with its plain one on."""
    path = DEV / "docs.jsonl.gz"
    if not path.exists():
        return sample_texts()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line).get("text") or "" for line in f]


def input_records(folder: Path = SAMPLE_DIR) -> int:
    """Non-blank lines of the JSONL files under ``folder``: counted here, not by the reader."""
    return sum(1 for f in folder.glob("*.jsonl") for line in f.read_bytes().splitlines() if line.strip())


class ReportParser(HTMLParser):
    """Collects plots (with their inline SVG sizes), 'not run' notes, and table cells by data-key."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, tuple[int, int]] = {}
        self.not_run: list[str] = []
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._plot: str | None = None
        self._table: str | None = None
        self._key: str | None = None
        self._row: dict[str, str] | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for attr in ("src", "href"):
            v = a.get(attr)
            if v and not v.startswith(("data:", "#")):
                self.external.append(v)
        if tag == "figure" and "data-plot" in a:
            self._plot = a["data-plot"]
        elif tag == "svg" and self._plot and self._plot not in self.plots:  # inline SVG (report/plots.py)
            self.plots[self._plot] = (round(float(a["width"])), round(float(a["height"])))
        elif tag == "p" and "data-not-run" in a:
            self.not_run.append(a["data-not-run"])
        elif tag == "table":
            self._table = a.get("data-table")
            self.tables[self._table] = []
        elif tag == "tr" and self._table and self._row is None:
            self._row = {}
        elif tag == "td":
            self._key = a.get("data-key")

    def handle_endtag(self, tag):
        if tag == "figure":
            self._plot = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "td":
            self._key = None

    def handle_data(self, data):
        if self._key and self._row is not None:
            self._row[self._key] = self._row.get(self._key, "") + data


def parse(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    return p


def as_int(text: str) -> int:
    return int(text.replace(",", ""))


# A synthetic stats.json in which every stage recorded everything the report can draw.
def stage(
    n_in: int, kept: int, reasons: dict[str, int] | None = None, chars: int = 1000, **extra: Any
) -> dict[str, Any]:
    reasons = reasons or {}
    out = {
        "in": n_in,
        "kept": kept,
        "rejected": sum(reasons.values()),
        "rejected_by_reason": reasons,
        "chars_in": n_in * chars,
        "chars_kept": kept * chars,
    }
    out.update(extra)
    return out


def full_stats() -> dict[str, Any]:
    order = [
        "read",
        "validate",
        "normalize",
        "language",
        "quality",
        "decontamination",
        "prompt",
        "dedup_exact",
        "dedup_near",
        "pii",
        "toxicity",
        "bias",
        "tokenize",
    ]
    bias_counters = {
        "docs": 600,
        "words": 500_000,
        "mentions:female": 900,
        "mentions:male": 1200,
        "mentions:religion": 80,
        "toxic_mentions:religion": 8,
        "toxic_mentions:female": 30,
        "rejected_records:docs": 400,
        "rejected_records:words": 300_000,
        "rejected_records:mentions:religion": 70,
        "rejected_records:toxic_mentions:religion": 20,
    }
    return {
        "bias": bias_summary(bias_counters),
        "corpusforge_version": "0.1.0",
        "records_read": 1000,
        "kept": 600,
        "rejected": 400,
        "conservation_ok": True,
        "stage_order": order,
        "stages": {
            "read": stage(1000, 1000, chars=0),
            "validate": stage(
                1000,
                990,
                {"invalid:bad_json": 6, "invalid:empty": 4},
                histograms={"chars": {"0.0": 10, "100.0": 500, "1000.0": 480}},
            ),
            "normalize": stage(990, 990),
            "language": stage(
                990,
                900,
                {"language:de": 60, "language:fr": 30},
                histograms={"lang_score": {"0.5": 40, "0.8": 100, "0.9": 850}},
            ),
            "quality": stage(
                900,
                760,
                {"quality:gopher_quality.min_words": 90, "quality:c4.lorem_ipsum": 50},
                histograms={
                    "gopher_repetition.dup_line_frac": {"0.0": 700, "0.1": 150, "0.3": 50},
                    "gopher_quality.mean_word_length": {"2.0": 30, "3.0": 800, "10.0": 70},
                },
            ),
            "decontamination": stage(
                760,
                740,
                {"contamination:gsm8k": 15, "contamination:mmlu": 5},
                counters={"hits:gsm8k": 15, "hits:mmlu": 5, "hits:humaneval": 0},
            ),
            "prompt": stage(
                740, 740, counters={"tagged": 4, "tagged:chat_markers": 3, "tagged:jailbreak": 1}
            ),
            "dedup_exact": stage(740, 700, {"dedup:exact": 40}),
            "dedup_near": stage(
                700, 600, {"dedup:near": 100}, histograms={"cluster_size": {"2.0": 60, "3.0": 20, "10.0": 4}}
            ),
            "pii": stage(600, 600, counters={"replaced:EMAIL_ADDRESS": 41, "replaced:PHONE_NUMBER": 12}),
            "toxicity": stage(600, 600, histograms={"toxicity_score": {"0.0": 500, "0.5": 80, "0.9": 20}}),
            "bias": stage(600, 600, counters=bias_counters),
            "tokenize": stage(
                600,
                600,
                counters={
                    "rows:bucket=512": 300,
                    "tokens:bucket=512": 100_000,
                    "padding:bucket=512": 53_600,
                    "rows:bucket=2048": 100,
                    "tokens:bucket=2048": 150_000,
                    "padding:bucket=2048": 54_800,
                    "tokens_total": 250_000,
                },
            ),
            "output": stage(600, 600, histograms={"chars": {"100.0": 250, "1000.0": 350}}),
        },
        "inputs": [],
        "unreadable_files": [],
        "outputs": {},
        "config": {
            "language": {"enabled": True, "keep": ["en"], "min_score": 0.65},
            "quality": {
                "gopher_repetition": {"dup_line_frac": 0.3},
                "gopher_quality": {"min_mean_word_length": 3, "max_mean_word_length": 10},
            },
            "toxicity": {"enabled": True, "threshold": 0.8, "filter": False},
            "report": {"examples_per_reason": 2, "example_chars": 120},
        },
        "config_hash": "0123456789abcdef",
        "versions": {},
        "runner": "LocalRunner",
        "wall_time_s": 12.5,
        "finished_at": "2026-01-01T00:00:00Z",
    }


# Every plot the full stats must produce (data-plot names).
FULL_PLOTS = {
    "funnel",
    "rejections",
    "languages",
    "lang_score",
    "lengths",
    "quality.gopher_repetition.dup_line_frac",
    "quality.gopher_quality.mean_word_length",
    "dedup_near.cluster_size",
    "contamination",
    "pii",
    "prompt",
    "toxicity",
    "bias.rates",
    "bias.toxic",
    "sequences",
}


# Set by `make test-interop`: there the packages of the tests marked `interop` must be importable.
INTEROP_ENV = "CORPUSFORGE_INTEROP"


def interop_import(module: str, package: str) -> Any:
    """``module`` of an interop package (mosaicml-streaming, megatron-core), imported for a test.

    In ``.venv`` the packages are absent by design and the test skips, saying where it runs; in
    ``make test-interop`` (``CORPUSFORGE_INTEROP=1``, as CI runs it) their absence fails the test:
    an interop check that skipped in CI would be a check nobody made.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get(INTEROP_ENV, "").strip() not in ("", "0"):
            pytest.fail(f"{INTEROP_ENV} is set but {package} cannot be imported: {exc}", pytrace=False)
        pytest.skip(
            f"needs {package} (`make test-interop` runs it in .venv-interop)", allow_module_level=True
        )


def stages_off(*keep: str) -> list[str]:
    """``--set`` flags switching off every stage (and the report) but the sections in ``keep``.

    A run's fixed cost is its worker processes; past that, each stage's setup (models, lexicons,
    benchmark indexes) and work. A test switches off what it does not examine. Derived from the stage
    table, so a new stage is off too unless a test names it."""
    sections = (*SWITCHED_SECTIONS, "tokenize", "report")
    unknown = set(keep) - set(sections)
    assert not unknown, f"not a switchable section: {sorted(unknown)}"
    return [f"--set={section}.enabled=false" for section in sections if section not in keep]


# Every stage off but normalize (read, validate, normalize, write): for tests of the run's own
# guarantees, which no stage should slow down.
STAGES_OFF: list[str] = stages_off("normalize")

# For a one-worker run whose test is not about worker processes: the pipeline runs in this process
# (Beam's in-memory FnApiRunner), saving the start-up of an SDK worker process (~3-5 s of CPU).
IN_PROCESS = "--direct_running_mode=in_memory"
