"""Assemble the pipeline from the config: read, validate, each enabled stage, write.

The graph is the same for every runner; nothing here touches record data on the driver (input
files are matched for their paths and sizes only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import apache_beam as beam

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import Config
from corpusforge.transforms.bias.stage import count_rejected
from corpusforge.transforms.io.observe import ObserveOutput
from corpusforge.transforms.io.read import InputFile, ReadDocuments, Unreadable
from corpusforge.transforms.io.validate import RecordParser, Validate
from corpusforge.transforms.io.write import WriteDocuments, WriteRejected, shard_count
from corpusforge.transforms.pii.stage import ScrubRejected
from corpusforge.transforms.tokenize.mix import Mix
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from corpusforge.transforms.tokenize.stage import PACK_GROUP_MB, Bucket, Tokenize, WriteSequences

RUN_DIR = "_run"  # small bookkeeping files the driver reads back after the run


@dataclass
class PipelinePlan:
    """What was built: the stage order (for stats.json) and the inputs."""

    stages: list[str]
    files: list[InputFile]
    missing: list[Unreadable] = field(default_factory=list)


def record_parser(cfg: Config) -> RecordParser:
    c = cfg.input
    return RecordParser(c.text_field, c.id_field, c.source_field, c.url_field, c.max_chars)


def build_pipeline(p: beam.Pipeline, cfg: Config, files: list[InputFile], output_dir: str,
                   local_runner: bool = False) -> PipelinePlan:
    """Assemble the graph. ``local_runner`` tells ``output.sharding: auto`` which layout to use."""
    input_bytes = sum(f.size for f in files)
    sharding = cfg.output.sharding
    fixed = sharding == "fixed" or (sharding == "auto" and not local_runner)
    # 0 lets the runner write one file per bundle (Beam's default), with no shuffle of the rows
    doc_shards = shard_count(input_bytes, cfg.output.shard_target_mb) if fixed else 0
    rejected_shards = max(1, doc_shards // 4) if fixed else 0
    codec = "none" if cfg.output.compression == "none" else cfg.output.compression

    raw, unreadable = p | "ReadDocuments" >> ReadDocuments(
        files, cfg.input.split_mb, skip_unreadable=cfg.input.on_unreadable == "skip"
    )
    docs, rejected = raw | "Validate" >> Validate(record_parser(cfg))
    rejected_parts = [rejected]
    order = ["read", "validate"]
    for name, transform in enabled_stages(cfg):
        docs, stage_rejected = docs | name >> transform
        rejected_parts.append(stage_rejected)
        order.append(name)

    docs = docs | "ObserveOutput" >> ObserveOutput()  # final length histogram for the report

    if cfg.tokenize.enabled:
        tokenize = Tokenize(cfg.tokenize)
        docs, tokens = docs | "tokenize" >> tokenize
        if cfg.mix.enabled:  # token budgets per group: documents dropped, kept or repeated
            docs, tokens = (docs, tokens) | "mix" >> Mix(cfg.mix)
        pack_groups = shard_count(input_bytes, PACK_GROUP_MB)
        sequences = tokens | "bucket" >> Bucket(cfg.tokenize, pack_groups)
        order += ["tokenize", "bucket"]
        seq_shards = cfg.tokenize.shards or shard_count(input_bytes, cfg.tokenize.shard_target_mb)
        if "parquet" in cfg.tokenize.formats and cfg.tokenize.shuffle_seed is None:
            _ = sequences | "WriteSequences" >> WriteSequences(
                output_dir, cfg.tokenize.buckets, tokenize.info.vocab_size, cfg.tokenize.pack,
                shard_count(input_bytes, cfg.tokenize.shard_target_mb), codec,
            )
        if WriteTrainerFormats.needed(cfg.tokenize):  # megatron, mds, shuffled Parquet
            _ = sequences | "WriteTrainerFormats" >> WriteTrainerFormats(
                cfg.tokenize, output_dir, tokenize.info.vocab_size, seq_shards, codec)

    _ = docs | "WriteDocuments" >> WriteDocuments(output_dir, doc_shards, codec)
    all_rejected = tuple(rejected_parts) | "AllRejected" >> beam.Flatten()
    bias_of_rejected = count_rejected(cfg)  # the bias figures before filtering (counters only)
    if bias_of_rejected is not None:
        _ = all_rejected | "BiasOfRejected" >> bias_of_rejected
    if cfg.output.rejected_text == "scrubbed":  # most of a crawl never meets the pii stage
        all_rejected = all_rejected | "ScrubRejected" >> ScrubRejected(cfg.pii)
    _ = all_rejected | "WriteRejected" >> WriteRejected(
        output_dir, rejected_shards, cfg.output.rejected_text is not False, codec
    )
    _ = (
        unreadable
        | "UnreadableJson" >> beam.Map(
            lambda u: json.dumps({"path": u.path, "error": u.error, "records_read": u.records_read})
        )
        | "WriteUnreadable" >> beam.io.WriteToText(f"{output_dir}/{RUN_DIR}/unreadable", file_name_suffix=".jsonl")
    )
    return PipelinePlan(order, files)
