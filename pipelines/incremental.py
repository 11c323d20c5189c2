"""``--incremental``: input processed in parts, each one pipeline run, recorded so a rerun resumes.

Beam cannot resume a failed job, so the unit of progress is a part: the input files, sorted by path,
grouped into runs of about ``input.part_mb`` MB as stored (whole files; a larger file is a part of
its own). Part N is one ordinary run deduplicated against ``dedup.previous`` and the dedup index of
every earlier part (so across parts the earlier part's document is kept). It is written to
``OUT/_staging/part=NNNNN/``, its folders are then moved under a hive level ``part=NNNNN`` of the
top-level ones (``documents/part=00000/``, ``sequences/bucket=512/part=00000/``, ...), its stats.json
and report.html go to ``parts/part=NNNNN/`` with a ``_SUCCESS``, and only then is it recorded in
``manifest.json``. A crash therefore loses at most the part in flight: anything not recorded is
discarded and redone by the next run of the same command, and input files no part holds become new
parts. The manifest names each part's files with size and modification time and the config hash;
a changed config or a changed or vanished recorded file is refused (unless ``--overwrite``), so the
parts of one folder always come from one config and the files as they were.

Trainer formats move like the other folders (``sequences_megatron/part=NNNNN/``,
``sequences_mds/part=NNNNN/``, each a complete dataset with its own ``index.json``), and each folder
also gets one top-level ``index.json`` over every recorded part: a trainer is given one thing,
Megatron a single ``--data-path`` list, MosaicML ``StreamingDataset(local=sequences_mds)``, and a
new part needs no change to its command line. The top listing is rebuilt from the parts' own after
each part is recorded, so it never names a part a rerun would discard.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from apache_beam.io.filesystems import FileSystems

from corpusforge import __version__
from corpusforge.pipelines.report import stats as run_stats
from corpusforge.schemas.config import Config
from corpusforge.transforms.dedup.index import INDEX_DIR
from corpusforge.transforms.io.read import InputFile
from corpusforge.transforms.tokenize import mds, megatron

MANIFEST = "manifest.json"
STAGING = "_staging"
PARTS = "parts"
SUCCESS = "_SUCCESS"
# moved whole under <name>/part=NNNNN/ (the trainer formats' folders with their own listings)
MOVED = ("documents", "rejected", INDEX_DIR, megatron.FOLDER, mds.FOLDER)
TRAINER_LISTING = "index.json"  # one per part and one over all parts, in each trainer format's folder
PER_PART = ("stats.json", "report.html")  # kept per part under parts/part=NNNNN/
ENTRIES = (MANIFEST, STAGING, PARTS)  # what an incremental run adds to a run's output entries

RunPart = Callable[[list[str], str, Config], dict[str, Any]]


class ManifestError(RuntimeError):
    """A manifest that cannot be continued from; raised before anything is deleted."""


def _file_key(path: str) -> str:
    """A local path made absolute, so a file is recorded once however the command spelled it."""
    return path if "://" in path else os.path.normpath(os.path.abspath(path))


def part_name(n: int) -> str:
    return f"part={n:05d}"


def plan_parts(files: list[InputFile], part_mb: float) -> list[list[InputFile]]:
    """Consecutive files (sorted by path) in groups of about ``part_mb`` MB; never a file split."""
    limit = part_mb * 1e6
    parts: list[list[InputFile]] = []
    size = 0.0
    for f in sorted(files, key=lambda f: f.path):
        if not parts or (parts[-1] and size + f.size > limit):
            parts.append([])
            size = 0.0
        parts[-1].append(f)
        size += f.size
    return parts


@dataclass(frozen=True)
class FileState:
    path: str
    size: int
    mtime: float | None

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mtime": self.mtime}


def file_state(path: str) -> FileState | None:
    """Size and modification time of ``path`` now, or None when it is gone."""
    try:
        matched = FileSystems.match([path])[0].metadata_list
    except Exception:
        return None
    if not matched:
        return None
    m = matched[0]
    mtime = getattr(m, "last_updated_in_seconds", None)
    return FileState(m.path, int(m.size_in_bytes), float(mtime) if mtime else None)


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:
        return False


def load_manifest(output: str) -> dict[str, Any] | None:
    path = f"{output}/{MANIFEST}"
    if not _exists(path):
        return None
    try:
        with FileSystems.open(path) as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"{path} is not JSON ({exc}); repair it, or pass --overwrite to start over"
        ) from None
    if (
        not isinstance(manifest, dict)
        or not isinstance(manifest.get("parts"), list)
        or not all(isinstance(p, dict) and isinstance(p.get("files"), list) for p in manifest["parts"])
    ):
        raise ManifestError(
            f"{path} is not a corpusforge manifest (no list of parts with files); "
            "pass --overwrite to start over"
        )
    return manifest


def manifest_problems(manifest: dict[str, Any], config_hash: str) -> list[str]:
    """Why the recorded parts cannot be continued by this run: config or recorded inputs changed."""
    problems = []
    for part in manifest["parts"]:
        name = part.get("name", "?")
        if part.get("config_hash") != config_hash:
            problems.append(
                f"the config changed: {name} was made with config hash {part.get('config_hash')}, "
                f"this run's is {config_hash}"
            )
        for entry in part["files"]:
            now = file_state(entry["path"])
            if now is None:
                problems.append(f"input file {entry['path']} recorded in {name} no longer exists")
            elif now.size != entry.get("size"):
                problems.append(
                    f"input file {entry['path']} recorded in {name} changed "
                    f"(size {entry.get('size')} -> {now.size})"
                )
            elif entry.get("mtime") is not None and now.mtime is not None and now.mtime != entry["mtime"]:
                problems.append(
                    f"input file {entry['path']} recorded in {name} changed (modified since it was read)"
                )
    return problems


def _write_json(path: str, data: Any) -> None:
    """Write then rename, so a kill never leaves half a manifest."""
    tmp = path + ".tmp"
    run_stats.write_json(tmp, data)
    if _exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def _move_tree(src: str, dst: str) -> None:
    """Move folder ``src`` to ``dst`` (which must not exist): one rename locally, per file elsewhere."""
    if "://" not in src:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        return
    matched = FileSystems.match([src.rstrip("/") + "/**"])[0].metadata_list
    sources = [m.path for m in matched]
    FileSystems.rename(sources, [dst + s[len(src) :] for s in sources])


def children(folder: str) -> list[str]:
    """Names of the entries directly inside ``folder`` (local folders, or a remote prefix)."""
    if "://" not in folder:
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    try:
        matched = FileSystems.match([folder.rstrip("/") + "/**"])[0].metadata_list
    except Exception:
        return []
    return sorted({m.path[len(folder.rstrip("/")) + 1 :].split("/")[0] for m in matched})


def _read_json(path: str) -> Any:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def install_part(output: str, staging: str, name: str) -> list[str]:
    """Move a finished part from staging into the hive layout; returns the folders it now holds
    (relative to ``output``), for the manifest."""
    moved = []
    for folder in MOVED:
        if _exists(f"{staging}/{folder}"):
            _move_tree(f"{staging}/{folder}", f"{output}/{folder}/{name}")
            moved.append(f"{folder}/{name}")
    for bucket in children(f"{staging}/sequences"):
        _move_tree(f"{staging}/sequences/{bucket}", f"{output}/sequences/{bucket}/{name}")
        moved.append(f"sequences/{bucket}/{name}")
    # the part's Megatron listing named its shards in staging: name them where they are now
    listing = f"{output}/{megatron.FOLDER}/{name}/{TRAINER_LISTING}"
    if _exists(listing):
        _write_json(listing, megatron.relocated(_read_json(listing), f"{output}/{megatron.FOLDER}/{name}"))
    for entry in PER_PART:
        if _exists(f"{staging}/{entry}"):
            _move_tree(f"{staging}/{entry}", f"{output}/{PARTS}/{name}/{entry}")
    with FileSystems.create(f"{output}/{PARTS}/{name}/{SUCCESS}") as f:
        f.write(f"part {name} finished\n".encode())  # never empty: Beam's S3 uploader fails on empty objects
    return moved


def trainer_shards(output: str, name: str) -> dict[str, list[str]]:
    """The trainer-format shards of part ``name`` as its listings name them (relative to
    ``output``): Megatron prefixes, MDS shard files. Empty for a format the run did not write."""
    out: dict[str, list[str]] = {}
    path = f"{output}/{megatron.FOLDER}/{name}/{TRAINER_LISTING}"
    if _exists(path):
        out[megatron.FOLDER] = [f"{megatron.FOLDER}/{name}/{e['prefix']}" for e in _read_json(path)["shards"]]
    path = f"{output}/{mds.FOLDER}/{name}/{TRAINER_LISTING}"
    if _exists(path):
        out[mds.FOLDER] = [
            f"{mds.FOLDER}/{name}/{s['raw_data']['basename']}" for s in _read_json(path)["shards"]
        ]
    return out


def write_trainer_listings(output: str, names: list[str]) -> None:
    """One listing over every recorded part in each trainer format's folder: what a trainer is
    pointed at (Megatron's ``data_path``, ``StreamingDataset(local=sequences_mds)``). Rewritten
    from the parts' own listings after each part, so it never names an unrecorded one."""
    for folder, combine in (
        (megatron.FOLDER, lambda parts: megatron.parts_listing(f"{output}/{megatron.FOLDER}", parts)),
        (mds.FOLDER, mds.parts_index),
    ):
        parts = [
            (name, _read_json(f"{output}/{folder}/{name}/{TRAINER_LISTING}"))
            for name in names
            if _exists(f"{output}/{folder}/{name}/{TRAINER_LISTING}")
        ]
        if parts:
            _write_json(f"{output}/{folder}/{TRAINER_LISTING}", combine(parts))


def discard_unrecorded(output: str, recorded: int) -> list[str]:
    """Remove staging and every ``part=NNNNN`` folder with N >= ``recorded``: a part moved into place
    but not yet recorded when the run died. Returns what was removed."""
    doomed = [f"{output}/{STAGING}"] if _exists(f"{output}/{STAGING}") else []
    folders = [f"{output}/{f}" for f in (*MOVED, PARTS)]
    folders += [f"{output}/sequences/{b}" for b in children(f"{output}/sequences")]
    for folder in folders:
        for child in children(folder):
            if child.startswith("part=") and child[5:].isdigit() and int(child[5:]) >= recorded:
                doomed.append(f"{folder}/{child}")
    if doomed:
        FileSystems.delete(doomed)
    return doomed


def _sum_into(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add the numbers of ``part`` into ``total``, recursing into dicts (stage summaries)."""
    for key, value in part.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _sum_into(total.setdefault(key, {}), value)


def combine_stats(
    output: str,
    parts: list[dict[str, Any]],
    cfg: Config,
    inputs: list[dict[str, Any]],
    started: float,
    runner: str,
) -> dict[str, Any]:
    """The top-level stats.json: every part's stage counts summed; outputs read over the union."""
    order: list[str] = []
    stages: dict[str, dict[str, Any]] = {}
    unreadable: list[dict[str, Any]] = []
    # the fullest order (a later part's: the first has no dedup_previous), then any stage it lacks
    for data in sorted(parts, key=lambda d: -len(d.get("stage_order", []))):
        order += [name for name in data.get("stage_order", []) if name not in order]
    for data in parts:
        for name, summary in data.get("stages", {}).items():
            _sum_into(stages.setdefault(name, {}), summary)
        unreadable += data.get("unreadable_files", [])
    outputs = {
        name: run_stats.parquet_rows(f"{output}/{name}") for name in ("documents", "rejected", "sequences")
    }
    read = sum(d.get("records_read", 0) for d in parts)
    kept, rejected = outputs["documents"]["rows"], outputs["rejected"]["rows"]
    formats: dict[str, dict[str, Any]] = {}  # trainer formats: counts summed, conserved in every part
    for data in parts:
        for name, summary in (data.get("formats") or {}).items():
            total = formats.setdefault(name, {"tokens_conserved": True})
            _sum_into(total, summary)
            total["tokens_conserved"] = total["tokens_conserved"] and summary.get("tokens_conserved") is True
    combined = {
        "corpusforge_version": __version__,
        "incremental": True,
        "records_read": read,
        "kept": kept,
        "rejected": rejected,
        "conservation_ok": read == kept + rejected,
        "stage_order": order,
        "stages": {name: stages.get(name, {}) for name in order + sorted(set(stages) - set(order))},
        "parts": [
            {k: d.get(k) for k in ("records_read", "kept", "rejected", "conservation_ok")} for d in parts
        ],
        "inputs": inputs,
        "unreadable_files": unreadable,
        "outputs": outputs,
        "config": cfg.resolved(),
        "config_hash": cfg.digest(),
        "versions": run_stats.package_versions(),
        "runner": runner,
        "wall_time_s": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if formats:
        combined["formats"] = formats
    return combined


def part_config(cfg: Config, output: str, part: int) -> Config:
    """The part's config: the user's, deduplicated also against every earlier part's index."""
    c = cfg.model_copy(deep=True)
    c.dedup.previous = list(cfg.dedup.previous) + [
        f"{output}/{INDEX_DIR}/{part_name(k)}" for k in range(part)
    ]
    return c


def run_incremental(
    files: list[InputFile],
    output: str,
    cfg: Config,
    run_part: RunPart,
    manifest: dict[str, Any] | None,
    started: float,
    runner: str,
) -> dict[str, Any]:
    """Run every part not yet recorded in ``manifest`` (checked by the caller), then the totals.

    ``run_part(paths, folder, cfg)`` is one ordinary run (the CLI's), returning its stats.
    """
    manifest = manifest or {"parts": []}
    manifest.setdefault("config_hash", cfg.digest())
    recorded = manifest["parts"]
    discard_unrecorded(output, len(recorded))
    # one key per file however it is spelled (recorded paths are absolute for local files)
    held = {_file_key(e["path"]) for p in recorded for e in p["files"]}
    todo = plan_parts(
        [replace(f, path=_file_key(f.path)) for f in files if _file_key(f.path) not in held],
        cfg.input.part_mb,
    )
    for files_of_part in todo:
        n = len(recorded)
        name = part_name(n)
        staging = f"{output}/{STAGING}/{name}"
        states = [file_state(f.path) or FileState(f.path, f.size, None) for f in files_of_part]
        data = run_part([f.path for f in files_of_part], staging, part_config(cfg, output, n))
        moved = install_part(output, staging, name)
        recorded.append(
            {
                "name": name,
                "files": [s.as_json() for s in states],
                "outputs": moved,
                "trainer_shards": trainer_shards(output, name),
                "config_hash": cfg.digest(),
                "corpusforge_version": __version__,
                "counts": {k: data.get(k) for k in ("records_read", "kept", "rejected")},
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        _write_json(f"{output}/{MANIFEST}", manifest)
        write_trainer_listings(output, [p["name"] for p in recorded])
    write_trainer_listings(output, [p["name"] for p in recorded])  # a run killed between the two
    if _exists(f"{output}/{STAGING}"):
        FileSystems.delete([f"{output}/{STAGING}"])
    part_stats = []
    for part in recorded:
        with FileSystems.open(f"{output}/{PARTS}/{part['name']}/stats.json") as f:
            part_stats.append(json.loads(f.read().decode("utf-8")))
    inputs = [dict(e, part=p["name"]) for p in recorded for e in p["files"]]
    data = combine_stats(output, part_stats, cfg, inputs, started, runner)
    data["parts_run"] = len(todo)
    return data


def top_success(output: str) -> str:
    return posixpath.join(output, SUCCESS)
