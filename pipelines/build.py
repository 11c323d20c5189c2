"""Assemble the pipeline from the config: read, validate, each enabled stage, write.

The graph is the same for every runner; nothing here touches record data on the driver (input
files are matched for their paths and sizes only).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

import apache_beam as beam

from corpusforge.pipelines import beam_memo
from corpusforge.pipelines.stages import POST_DEDUP, enabled_stages, near_params
from corpusforge.schemas.config import Config
from corpusforge.transforms.bias.stage import count_rejected
from corpusforge.transforms.dedup.index import WriteIndex, index_target
from corpusforge.transforms.io.observe import ObserveOutput
from corpusforge.transforms.io.part_files import PartTarget, WriteLines
from corpusforge.transforms.io.read import InputFile, PlanReads, Unreadable
from corpusforge.transforms.io.unique_ids import ReadValidated
from corpusforge.transforms.io.validate import RecordParser
from corpusforge.transforms.io.write import WriteDocuments, WriteRejectedParts, documents_target, shard_count
from corpusforge.transforms.pii.prefetch import PrefetchEngine
from corpusforge.transforms.pii.stage import ScrubRejected
from corpusforge.transforms.tokenize.bucket_stage import PACK_GROUP_MB, Bucket
from corpusforge.transforms.tokenize.mix import Mix
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from corpusforge.transforms.tokenize.sequences_sink import SequenceFiles, WriteSequences
from corpusforge.transforms.tokenize.stage import Tokenize

RUN_DIR = "_run"  # small bookkeeping files the driver reads back after the run
WORK_DIR = "work"  # under RUN_DIR: files workers write and read back during the run (parked documents)

# Top-level transform labels that are not stage names (stages are labelled by their name), and the
# step of the run each belongs to: the local runner's progress reporter reads them off fused stages.
READ, VALIDATE, OBSERVE_OUTPUT = "ReadDocuments", "Validate", "ObserveOutput"
WRITE_DOCUMENTS, ALL_REJECTED, WRITE_REJECTED = "WriteDocuments", "AllRejected", "WriteRejected"
UNREADABLE_JSON, WRITE_UNREADABLE, WRITE_SEQUENCES = "UnreadableJson", "WriteUnreadable", "WriteSequences"
LABEL_STEPS = {
    READ: "read",
    VALIDATE: "validate",
    OBSERVE_OUTPUT: "output",
    WRITE_DOCUMENTS: "write",
    WRITE_REJECTED: "write",
    ALL_REJECTED: "write",
    UNREADABLE_JSON: "write",
    WRITE_UNREADABLE: "write",
}


@dataclass
class PipelinePlan:
    """What was built: the stage order (for stats.json) and the inputs."""

    stages: list[str]
    files: list[InputFile]
    missing: list[Unreadable] = field(default_factory=list)
    release: str = ""  # the name this run's dedup_index/ rows carry


def record_parser(cfg: Config) -> RecordParser:
    c = cfg.input
    return RecordParser(c.text_field, c.id_field, c.source_field, c.url_field, c.max_chars)


def spill_dir(cfg: Config, output_dir: str, local_runner: bool) -> str | None:
    """Where the id scan keeps the inflated lines of compressed inputs (``input.spill_inflated``):
    the run's work folder on the local runner with a local output, where every worker reads it and
    the driver's end-of-run clean-up removes what is left. None on an object store (writing and
    fetching the lines again would cost more than inflating) and on a cluster runner: a local path
    there is each worker machine's own disk, so a stripe run on another machine would inflate the
    stream anyway and the files left on the scanning machine would outlive the run."""
    if not cfg.input.spill_inflated or not local_runner or "://" in output_dir:
        return None
    return posixpath.join(output_dir, RUN_DIR, WORK_DIR, "read")


def default_release(output_dir: str) -> str:
    """A run's release name unless ``--release`` gives one: its output folder's name."""
    return posixpath.basename(output_dir.rstrip("/")) or "release"


def build_pipeline(
    p: beam.Pipeline,
    cfg: Config,
    files: list[InputFile],
    output_dir: str,
    local_runner: bool = False,
    release: str | None = None,
    workers: int | None = None,
) -> PipelinePlan:
    """Assemble the graph. ``local_runner`` tells ``output.sharding: auto`` which layout to use and
    whether the id scan may spill inflated lines (:func:`spill_dir`);
    ``release`` names this run in its dedup index (default: the output folder's name); ``workers``
    (the local runner's processes) caps the read stripes of a compressed file."""
    beam_memo.install()  # Beam re-inspects each DoFn and re-parses the options per transform: remembered
    release = release or default_release(output_dir)
    input_bytes = sum(f.size for f in files)
    sharding = cfg.output.sharding
    fixed = sharding == "fixed" or (sharding == "auto" and not local_runner)
    # 0 lets the runner write one file per bundle (Beam's default), with no shuffle of the rows
    doc_shards = shard_count(input_bytes, cfg.output.shard_target_mb) if fixed else 0
    rejected_shards = max(1, doc_shards // 4) if fixed else 0
    codec = "none" if cfg.output.compression == "none" else cfg.output.compression

    skip = cfg.input.on_unreadable == "skip"
    # read and validate fuse: the documents come out of the read; only ids are shuffled
    tasks, not_planned = p | READ >> PlanReads(
        files,
        cfg.input.split_mb,
        skip_unreadable=skip,
        compressed_split_mb=cfg.input.compressed_split_mb,
        workers=workers,
    )
    docs, rejected, not_read = tasks | VALIDATE >> ReadValidated(
        record_parser(cfg), skip, spill_dir(cfg, output_dir, local_runner)
    )
    unreadable = (not_planned, not_read) | "Unreadable" >> beam.Flatten()
    rejected_parts = {"validate": rejected}  # stage -> its rejected records, validation first
    if cfg.pii.enabled:  # presidio imported while each worker is idle, before the pii stage needs it
        _ = rejected | "PrefetchPii" >> PrefetchEngine()
    order = ["read", "validate"]
    dedup_docs = None  # the documents as dedup compared them, for the index (before PII changes text)
    signatures = None  # dedup_near's MinHash signatures, which the index reuses
    hashes = None  # dedup_exact's text hashes, which the index reuses
    for name, transform in enabled_stages(cfg):
        if dedup_docs is None and name in POST_DEDUP:
            dedup_docs = docs
        if hasattr(transform, "work_dir"):  # dedup parks documents in files instead of shuffling them
            transform.work_dir = posixpath.join(output_dir, RUN_DIR, WORK_DIR, name)
        docs, stage_rejected = docs | name >> transform
        if name == "dedup_near":
            signatures = transform.signatures
        if name == "dedup_exact":
            hashes = transform.hashes
        rejected_parts[name] = stage_rejected
        order.append(name)

    # nothing after dedup can reject (mixing drops documents): the index needs no join with the kept
    all_kept = dedup_docs is None and not cfg.mix.enabled
    if dedup_docs is None:
        dedup_docs = docs
    docs = docs | OBSERVE_OUTPUT >> ObserveOutput()  # final length histogram for the report

    # runner sharding: documents/, dedup_index/ and sequences/ are finalized with the rejected records,
    # in one step (temporary files where the rejected records' go, removed with work/)
    shared: dict[str, tuple[PartTarget, beam.PCollection]] = {}
    parts_temp = posixpath.join(output_dir, RUN_DIR, WORK_DIR, "rejected")
    if cfg.tokenize.enabled:
        tokenize = Tokenize(cfg.tokenize, output_dir=output_dir)
        docs, tokens = docs | "tokenize" >> tokenize
        if cfg.mix.enabled:  # token budgets per group: documents dropped, kept or repeated
            docs, tokens = (docs, tokens) | "mix" >> Mix(cfg.mix)
        pack_groups = shard_count(input_bytes, PACK_GROUP_MB)
        sequences = tokens | "bucket" >> Bucket(cfg.tokenize, pack_groups)
        order += ["tokenize", "bucket"]
        seq_shards = cfg.tokenize.shards or shard_count(input_bytes, cfg.tokenize.shard_target_mb)
        if "parquet" in cfg.tokenize.formats and cfg.tokenize.shuffle_seed is None and not fixed:
            # runner sharding: written where the rows are made, finalized with the other outputs (below)
            sink = SequenceFiles(
                output_dir,
                cfg.tokenize.buckets,
                tokenize.info.vocab_size,
                cfg.tokenize.pack,
                parts_temp,
                codec,
            )
            written = sequences | WRITE_SEQUENCES >> sink
            shared.update({part: (target, written) for part, target in sink.targets().items()})
        elif "parquet" in cfg.tokenize.formats and cfg.tokenize.shuffle_seed is None:
            _ = sequences | WRITE_SEQUENCES >> WriteSequences(
                output_dir,
                cfg.tokenize.buckets,
                tokenize.info.vocab_size,
                cfg.tokenize.pack,
                shard_count(input_bytes, cfg.tokenize.shard_target_mb),
                codec,
            )
        if WriteTrainerFormats.needed(cfg.tokenize):  # megatron, mds, shuffled Parquet
            _ = sequences | "WriteTrainerFormats" >> WriteTrainerFormats(
                cfg.tokenize, output_dir, tokenize.info.vocab_size, seq_shards, codec
            )

    written = docs | WRITE_DOCUMENTS >> WriteDocuments(output_dir, doc_shards, codec, tables_only=not fixed)
    if not fixed:
        shared["documents"] = (documents_target(output_dir), written)
    if cfg.writes_dedup_index():  # output.dedup_index; auto: when a dedup stage runs
        index_input = dedup_docs if all_kept else (dedup_docs, docs | "KeptIds" >> beam.Map(lambda d: d.id))
        written = index_input | "WriteDedupIndex" >> WriteIndex(
            output_dir,
            near_params(cfg),
            release,
            rejected_shards,
            codec,
            signatures,
            hashes,
            tables_only=not fixed,
        )
        if not fixed:
            shared["dedup_index"] = (index_target(output_dir), written)
    unreadable_lines = unreadable | UNREADABLE_JSON >> beam.Map(
        lambda u: json.dumps({"path": u.path, "error": u.error, "records_read": u.records_read})
    )
    if not fixed:  # _run/unreadable-SSSSS-of-NNNNN.jsonl, finalized with the other outputs
        shared["unreadable"] = (
            PartTarget(
                f"{output_dir.rstrip('/')}/{RUN_DIR}", "unreadable", None, written=True, suffix=".jsonl"
            ),
            unreadable_lines | WRITE_UNREADABLE >> beam.ParDo(WriteLines(parts_temp, "unreadable", ".jsonl")),
        )
    else:
        # skip_if_empty: Beam's S3 uploader cannot write a zero-byte object (an empty multipart
        # upload is MalformedXML), and no unreadable file is the usual case
        _ = unreadable_lines | WRITE_UNREADABLE >> beam.io.WriteToText(
            f"{output_dir}/{RUN_DIR}/unreadable", file_name_suffix=".jsonl", skip_if_empty=True
        )
    scrub = cfg.output.rejected_text == "scrubbed"  # most of a crawl never meets the pii stage
    # each stage's rejected records written where it runs (no Flatten holding them in the driver)
    _ = rejected_parts | WRITE_REJECTED >> WriteRejectedParts(
        output_dir,
        rejected_shards,
        cfg.output.rejected_text is not False,
        codec,
        observe=lambda: count_rejected(cfg),  # the bias figures before filtering (counters only)
        prepare=lambda: ScrubRejected(cfg.pii) if scrub else None,
        temp_dir=parts_temp,
        others=shared,
    )
    return PipelinePlan(order, files, release=release)
