"""stats.json: what happened to the data, stage by stage, from the run's Beam counters.

Counters are namespaced ``corpusforge.<stage>``; every stage counts ``in``, ``kept``, ``chars_in``,
``chars_kept`` and ``rejected:<reason>``, and may add its own (``unreadable_files``, per-type PII
totals, ...). The output row counts are read back from the Parquet footers, so the conservation
check compares what was really written: the records the reader took (counted per input file, by
the reader itself) = the records validate saw = kept + rejected rows.
"""

from __future__ import annotations

import json
import platform
import time
from collections import defaultdict
from importlib import metadata
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from corpusforge import __version__
from corpusforge.transforms.base import HIST_PREFIX, NAMESPACE_PREFIX, REJECTED_PREFIX
from corpusforge.transforms.io.read import FILE_RECORDS_PREFIX

PACKAGES = (
    "apache-beam",
    "pyarrow",
    "datasketch",
    "langdetect",
    "presidio-analyzer",
    "tokenizers",
    "pydantic",
    "numpy",
    "zstandard",
)


def counters_from_result(result: Any) -> dict[str, dict[str, int]]:
    """{stage: {counter: value}} from a finished pipeline result (committed values where known)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    try:
        counters = result.metrics().query(MetricsFilter())["counters"]
    except Exception:  # a runner without metrics support
        return {}
    for c in counters:
        ns = c.key.metric.namespace
        if not ns.startswith(NAMESPACE_PREFIX):
            continue
        value = c.committed if c.committed is not None else c.attempted
        out[ns[len(NAMESPACE_PREFIX) :]][c.key.metric.name] += int(value or 0)
    return {k: dict(v) for k, v in out.items()}


def stage_summary(counters: dict[str, int]) -> dict[str, Any]:
    rejected = {
        k[len(REJECTED_PREFIX) :]: v for k, v in sorted(counters.items()) if k.startswith(REJECTED_PREFIX)
    }
    summary: dict[str, Any] = {
        "in": counters.get("in", 0),
        "kept": counters.get("kept", 0),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": rejected,
        "chars_in": counters.get("chars_in", 0),
        "chars_kept": counters.get("chars_kept", 0),
    }
    extra = {
        k: v
        for k, v in sorted(counters.items())
        if k not in ("in", "kept", "chars_in", "chars_kept")
        and not k.startswith((REJECTED_PREFIX, HIST_PREFIX))
    }
    if extra:
        summary["counters"] = extra
    histograms: dict[str, dict[str, int]] = defaultdict(dict)
    for key, value in counters.items():
        if key.startswith(HIST_PREFIX):
            name, _, lower = key[len(HIST_PREFIX) :].rpartition(":")
            histograms[name][lower] = value
    if histograms:
        # buckets keyed by their lower bound, in ascending order
        summary["histograms"] = {
            name: dict(sorted(b.items(), key=lambda kv: float(kv[0])))
            for name, b in sorted(histograms.items())
        }
    return summary


def parquet_rows(folder: str) -> dict[str, int]:
    """Rows, files and bytes of the Parquet files under ``folder`` (footers only)."""
    import pyarrow.parquet as pq

    rows = files = size = 0
    try:
        matched = FileSystems.match([folder.rstrip("/") + "/**.parquet"])[0].metadata_list
    except Exception:
        matched = []
    for m in matched:
        with FileSystems.open(m.path) as f:
            rows += pq.ParquetFile(f).metadata.num_rows
        files += 1
        size += m.size_in_bytes
    return {"rows": rows, "files": files, "bytes": size}


def package_versions() -> dict[str, str]:
    versions = {"corpusforge": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def partly_read(unreadable: list[dict[str, Any]]) -> tuple[int, int]:
    """(files, records) of the unreadable files that yielded records before their error."""
    partial = [u for u in unreadable if u.get("partial")]
    return len(partial), sum(u["records_read"] for u in partial)


def build_stats(
    *,
    counters: dict[str, dict[str, int]],
    stage_order: list[str],
    config: dict[str, Any],
    config_hash: str,
    inputs: list[dict[str, Any]],
    unreadable: list[dict[str, str]],
    outputs: dict[str, dict[str, int]],
    started: float,
    runner: str,
) -> dict[str, Any]:
    read_counters = dict(counters.get("read", {}))
    per_file = {
        k[len(FILE_RECORDS_PREFIX) :]: read_counters.pop(k)
        for k in list(read_counters)
        if k.startswith(FILE_RECORDS_PREFIX)
    }
    counters = {**counters, "read": read_counters} if "read" in counters else counters
    inputs = [{**entry, "records": per_file.get(entry["path"], 0)} for entry in inputs]
    stages = {}
    for name in stage_order:
        stages[name] = stage_summary(counters.get(name, {}))
    for name in sorted(set(counters) - set(stage_order)):
        stages[name] = stage_summary(counters[name])
    read = sum(per_file.values())
    validated = stages.get("validate", {}).get("in", 0)
    kept = outputs.get("documents", {}).get("rows", 0)
    rejected = outputs.get("rejected", {}).get("rows", 0)
    return {
        "corpusforge_version": __version__,
        "records_read": read,
        "records_validated": validated,
        "kept": kept,
        "rejected": rejected,
        "conservation_ok": read == validated == kept + rejected,
        "stage_order": stage_order,
        "stages": stages,
        "inputs": inputs,
        "unreadable_files": unreadable,
        "outputs": outputs,
        "config": config,
        "config_hash": config_hash,
        "versions": package_versions(),
        "runner": runner,
        "wall_time_s": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def conservation_message(data: dict[str, Any]) -> str:
    """One line saying which of the three counts disagree, for a run whose outputs do not add up."""
    return (
        f"outputs do not add up: the reader read {data['records_read']} record(s), validate saw "
        f"{data.get('records_validated', data['records_read'])}, and kept {data['kept']} + rejected "
        f"{data['rejected']} = {data['kept'] + data['rejected']} row(s) were written (see stats.json)"
    )


def write_json(path: str, data: dict[str, Any]) -> None:
    with FileSystems.create(path) as f:
        f.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8"))
