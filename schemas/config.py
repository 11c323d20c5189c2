"""Configuration: YAML in, typed and validated objects out, once, before any pipeline is built.

Each top-level section is a stage (or the input/output) and maps to one pydantic model with
``extra="forbid"``, so a misspelt key fails at start-up with its full dotted path. Defaults live on
the models; ``configs/default.yaml`` documents every one of them and a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NUMBERS = (int, float, int | None, float | None)


class ConfigError(ValueError):
    """A configuration problem, always phrased with the full dotted key path."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: Any) -> Any:
        """YAML's true/false are ints to pydantic (``ngram: true`` would mean 1): refuse them."""
        field = cls.model_fields.get(info.field_name)
        if isinstance(value, bool) and field is not None and field.annotation in _NUMBERS:
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


class InputConfig(Section):
    format: Literal["auto", "jsonl", "parquet"] = "auto"
    text_field: str = "text"
    id_field: str = "id"
    source_field: str | None = "source"
    url_field: str | None = "url"
    max_chars: int = Field(1_000_000, gt=0)
    split_mb: int = Field(64, gt=0)
    compressed_split_mb: float = Field(8.0, gt=0)  # gzip/zstd JSONL: one read stripe per this many MB
    spill_inflated: bool = True  # gzip/zstd JSONL: the id scan keeps the inflated lines for the reads
    part_mb: float = Field(1024.0, gt=0)  # --incremental: input MB (as stored) per part
    on_unreadable: Literal["fail", "skip"] = "fail"


class OutputConfig(Section):
    # true: raw text; false: none; "scrubbed": the text (and url, metadata) after PII scrubbing
    rejected_text: bool | Literal["scrubbed"] = True
    shard_target_mb: int = Field(256, gt=0)
    sharding: Literal["auto", "fixed", "runner"] = "auto"
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    # dedup_index/ for later releases: auto writes it when exact or near dedup runs (see Config)
    dedup_index: bool | Literal["auto"] = "auto"


class NormalizeConfig(Section):
    enabled: bool = True


class LanguageConfig(Section):
    """Language identification with langdetect (seeded, on a bounded sample of the text)."""

    enabled: bool = True
    keep: list[str] = Field(default_factory=lambda: ["en"])
    min_score: float = Field(0.65, ge=0.0, le=1.0)
    sample_chars: int = Field(1500, gt=0)
    sample_chunks: int = Field(3, gt=0)
    seed: int = 0
    n_trial: int = Field(3, gt=0)
    method: Literal["naive_bayes", "sampling"] = "naive_bayes"


class GopherQualityConfig(Section):
    enabled: bool = True
    min_doc_words: int = Field(50, ge=0)
    max_doc_words: int = Field(100_000, gt=0)
    min_avg_word_length: float = Field(3.0, ge=0)
    max_avg_word_length: float = Field(10.0, gt=0)
    max_symbol_word_ratio: float = Field(0.1, ge=0)
    max_bullet_lines_ratio: float = Field(0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float = Field(0.3, ge=0, le=1)
    min_alpha_words_ratio: float = Field(0.8, ge=0, le=1)
    min_stop_words: int = Field(2, ge=0)


class GopherRepetitionConfig(Section):
    enabled: bool = True
    dup_line_frac: float = Field(0.3, ge=0, le=1)
    dup_para_frac: float = Field(0.3, ge=0, le=1)
    dup_line_char_frac: float = Field(0.2, ge=0, le=1)
    dup_para_char_frac: float = Field(0.2, ge=0, le=1)
    top_2gram_char_frac: float = Field(0.20, ge=0, le=1)
    top_3gram_char_frac: float = Field(0.18, ge=0, le=1)
    top_4gram_char_frac: float = Field(0.16, ge=0, le=1)
    dup_5gram_char_frac: float = Field(0.15, ge=0, le=1)
    dup_6gram_char_frac: float = Field(0.14, ge=0, le=1)
    dup_7gram_char_frac: float = Field(0.13, ge=0, le=1)
    dup_8gram_char_frac: float = Field(0.12, ge=0, le=1)
    dup_9gram_char_frac: float = Field(0.11, ge=0, le=1)
    dup_10gram_char_frac: float = Field(0.10, ge=0, le=1)


class C4Config(Section):
    enabled: bool = True
    lorem_ipsum: bool = True
    curly_brace: bool = True
    filter_no_terminal_punct: bool = False
    min_words_per_line: int = Field(5, ge=0)
    max_javascript_lines_ratio: float = Field(0.1, ge=0, le=1)
    max_policy_lines_ratio: float = Field(0.5, ge=0, le=1)
    min_sentences: int = Field(3, ge=0)


class FineWebConfig(Section):
    enabled: bool = True
    line_punct_thr: float = Field(0.12, ge=0, le=1)
    line_punct_exclude_zero: bool = False
    short_line_thr: float = Field(0.67, ge=0, le=1)
    short_line_length: int = Field(30, gt=0)
    max_char_dup_ratio: float = Field(0.1, ge=0, le=1)  # signal and rule: char_dup_ratio
    max_list_ratio: float = Field(0.3, ge=0)  # signal and rule: list_ratio


class ExtraConfig(Section):
    """Rules beyond the papers, for junk kinds their rules do not target directly."""

    enabled: bool = True
    max_mojibake_ratio: float = Field(0.05, ge=0)
    # 1.0 = off: an all-capitals copy of a page would be rejected here before deduplication sees
    # it, leaving its original unpaired; set 0.5 where shouting pages matter more than that.
    max_all_caps_words_ratio: float = Field(1.0, ge=0, le=1)


class QualityConfig(Section):
    """Rule-based quality filtering; each family can be switched off on its own."""

    enabled: bool = True
    min_lines_for_line_ratios: int = Field(4, ge=0)
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebConfig = Field(default_factory=FineWebConfig)
    extra: ExtraConfig = Field(default_factory=ExtraConfig)


class BenchmarkEntry(Section):
    """A benchmark named explicitly: ``path`` may be a glob; ``fields`` None means every string."""

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    fields: list[str] | None = None


class DecontaminationConfig(Section):
    enabled: bool = True
    benchmarks: list[str | BenchmarkEntry] = Field(default_factory=list)
    ngram: int = Field(13, ge=3)
    min_words: int = Field(8, ge=1)
    max_item_frequency: int = Field(20, ge=1)
    min_matches: int = Field(1, ge=1)
    action: Literal["reject", "cut"] = "reject"
    cut_margin: int = Field(10, ge=0)
    cut_min_keep_frac: float = Field(0.5, ge=0.0, le=1.0)
    detail_chars: int = Field(200, ge=0)


PII_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "IBAN_CODE",
    "US_SSN",
    "SECRET",
    "CREDENTIAL",
    "PERSON",
    "LOCATION",
)
# the entities only a spaCy NER model detects (pii.ner_model); the others have pattern recognizers
NER_ENTITIES: tuple[str, ...] = ("PERSON", "LOCATION")


class PiiConfig(Section):
    enabled: bool = True
    entities: list[Literal[PII_ENTITIES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IP_ADDRESS",
            "IBAN_CODE",
            "US_SSN",
            "SECRET",
            "CREDENTIAL",
        ]
    )
    score_threshold: float = Field(0.5, ge=0.0, le=1.0)
    placeholder: str = "<{entity}>"
    ner_model: str | None = None
    context_chars: int = Field(48, ge=0)
    window_chars: int = Field(160, ge=32)
    max_chunk_chars: int = Field(4000, ge=512)
    skip_urls: bool = True
    batch_size: int = Field(64, ge=1)

    @field_validator("placeholder")
    @classmethod
    def _placeholder_ok(cls, value: str) -> str:
        try:
            value.format(entity="X")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"must be a format string using only {{entity}} ({exc})") from None
        return value


class MixConfig(Section):
    """Token-budget mixing of groups of documents (transforms/tokenize/mix.py); off by default."""

    enabled: bool = False
    by: str = Field("source", min_length=1)  # a document column (source, lang, ...) or a metadata field
    # shares of the total tokens (floats summing to 1) or token counts (integers)
    targets: dict[str, float | int] = Field(default_factory=dict)
    max_epochs: int = Field(4, ge=1)
    # a target whose group has no documents fails the run (after pass 1) unless this is true
    allow_empty_groups: bool = False

    @field_validator("targets")
    @classmethod
    def _shares_or_counts(cls, v: dict[str, float | int]) -> dict[str, float | int]:
        if any(isinstance(x, bool) or x < 0 for x in v.values()):
            raise ValueError("targets are shares or token counts, never negative or true/false")
        kinds = {isinstance(x, int) for x in v.values()}
        if len(kinds) > 1:
            raise ValueError("give every target as a share (float) or every one as a token count (integer)")
        if kinds == {False} and abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares sum to {sum(v.values()):g}, not 1")
        return v

    @model_validator(mode="after")
    def _targets_when_enabled(self) -> MixConfig:
        if self.enabled and not self.targets:
            raise ValueError("targets: at least one group is needed when mix is enabled")
        return self


class ReportConfig(Section):
    """report.html and run progress (not a stage: it reads the outputs after the run)."""

    enabled: bool = True
    examples_per_reason: int = Field(3, ge=0)
    kept_examples: int = Field(5, ge=0)
    example_chars: int = Field(300, gt=0)
    progress_every_s: float = Field(30.0, ge=0)


class DedupExactConfig(Section):
    enabled: bool = True


class DedupNearConfig(Section):
    enabled: bool = True
    threshold: float = Field(0.8, gt=0, le=1)
    num_perm: int = Field(128, ge=8, le=1024)
    ngram: int = Field(5, ge=1, le=32)
    seed: int = 1
    lsh_threshold: float = Field(0.7, gt=0, le=1)
    bands: int = Field(0, ge=0)
    rows: int = Field(0, ge=0)
    verify_threshold: float | None = Field(None, gt=0, le=1)
    max_bucket_reps: int = Field(8, ge=1)
    max_rounds: int = Field(10, ge=1, le=64)
    single_worker_max_edges: int = Field(100_000, ge=0)
    exact_verify: bool = False

    @model_validator(mode="after")
    def _bands_fit(self) -> DedupNearConfig:
        if (self.bands == 0) != (self.rows == 0):
            raise ValueError("bands and rows are set together (both 0 derives them from lsh_threshold)")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    @property
    def band_rows(self) -> tuple[int, int]:
        """The LSH banding used: ``(bands, rows)`` as set, or derived from ``lsh_threshold`` when both are 0."""
        if self.bands and self.rows:
            return self.bands, self.rows
        return choose_bands(self.lsh_threshold, self.num_perm)

    @property
    def verify_at(self) -> float:
        """The estimated Jaccard a bucket member must reach: ``verify_threshold``, else ``threshold``."""
        return self.threshold if self.verify_threshold is None else self.verify_threshold


@lru_cache(maxsize=32)
def choose_bands(
    threshold: float, num_perm: int, fp_weight: float = 0.2, fn_weight: float = 0.8
) -> tuple[int, int]:
    """Bands and rows (bands * rows <= num_perm) minimising weighted false-positive and false-negative
    areas around ``threshold`` (the S-curve's knee).

    Weighted for recall, and meant to be given a threshold below the duplicate threshold: every
    candidate is verified afterwards, so a false positive costs one comparison while a false
    negative is a duplicate that survives. For 0.7 and 128 permutations: 18 bands of 7 rows, which
    makes a pair at Jaccard 0.8 a candidate 98.6% of the time (datasketch's 9 x 13 for 0.8: 40%).
    It lives here, not in ``transforms/dedup``, because the section derives its banding from it.
    """
    # every pair's S-curve at once, powers by repeated multiplication (cumulative products) rather
    # than ~1.3 million pow() calls: ~10 ms where the pair-by-pair loop took ~0.12 s of the
    # driver's start-up in every run (the same choice: tests/transforms/dedup/test_minhash.py)
    xs = np.linspace(0.0, 1.0, 2001)
    lo = xs <= threshold
    integrate = np.trapezoid if hasattr(np, "trapezoid") else np.trapz
    x_pow = np.cumprod(np.broadcast_to(xs, (num_perm, xs.size)), axis=0)  # row r-1: xs ** r
    errors: dict[tuple[int, int], float] = {}
    for rows in range(1, num_perm + 1):
        most = num_perm // rows
        miss_all = np.cumprod(np.broadcast_to(1.0 - x_pow[rows - 1], (most, xs.size)), axis=0)
        p = 1.0 - miss_all  # row b-1: the chance a pair at Jaccard x shares a band of b bands
        fp = integrate(p[:, lo], xs[lo], axis=1)
        fn = integrate(miss_all[:, ~lo], xs[~lo], axis=1)
        for bands, err in enumerate((fp_weight * fp + fn_weight * fn).tolist(), start=1):
            errors[bands, rows] = err
    best: tuple[float, int, int] | None = None
    for bands in range(1, num_perm + 1):  # bands-major, as ties were always broken
        for rows in range(1, num_perm // bands + 1):
            err = errors[bands, rows]
            if best is None or err < best[0] - 1e-12:
                best = (err, bands, rows)
    assert best is not None
    return best[1], best[2]


class DedupConfig(Section):
    exact: DedupExactConfig = Field(default_factory=DedupExactConfig)
    near: DedupNearConfig = Field(default_factory=DedupNearConfig)
    # earlier output folders or dedup_index folders, the oldest release first
    previous: list[str] = Field(default_factory=list)

    @field_validator("previous")
    @classmethod
    def _non_empty_paths(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("paths must be non-empty")
        return v


class ControlTokenRule(Section):
    """One rule of ``tokenize.control_tokens`` (transforms/tokenize/control.py): the document column
    it reads and how its value becomes one ``<|field:name|>`` token."""

    field: str = Field(min_length=1)
    bins: list[float] | None = None  # numeric field: ascending edges, a value equal to an edge goes above it
    names: list[str] | None = Field(
        None, validate_default=True
    )  # numeric field: len(bins) + 1 token names, lowest bin first
    # string field: the values that get a token (others get none); omitted: one token per value seen
    values: list[str] | None = None
    # string field without values: more distinct values than this in the documents fails the run
    max_values: int = Field(64, ge=1)
    fraction: float = Field(1.0, ge=0.0, le=1.0)  # share of documents tagged, by a stable hash of the id

    @field_validator("bins")
    @classmethod
    def _ascending_bins(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(a >= b for a, b in zip(v, v[1:], strict=False))):
            raise ValueError("must be a non-empty, strictly ascending list of edges")
        return v

    @field_validator("names", "values")
    @classmethod
    def _token_safe(cls, v: list[str] | None) -> list[str] | None:
        for name in v or []:
            if not name or any(c.isspace() or c in "|<>" for c in name):
                raise ValueError(f"{name!r}: token names must be non-empty, without spaces, '|', '<' or '>'")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("must not repeat a name")
        return v

    @field_validator("names")
    @classmethod
    def _one_name_per_bin(cls, v: list[str] | None, info: Any) -> list[str] | None:
        bins = info.data.get("bins")
        if bins is not None and (v is None or len(v) != len(bins) + 1):
            raise ValueError(f"{len(bins)} bins need {len(bins) + 1} names, got {0 if v is None else len(v)}")
        return v

    @model_validator(mode="after")
    def _numeric_or_string(self) -> ControlTokenRule:
        if self.bins is not None and self.values is not None:
            raise ValueError("give either bins and names (a numeric field) or values (a string field)")
        if self.bins is None and self.names is not None:
            raise ValueError("names go with bins; a string field takes values")
        return self


class TokenizeConfig(Section):
    """Tokenization and sequence-length bucketing (stages ``tokenize`` and ``bucket``)."""

    enabled: bool = True
    # None: the project's own byte-level BPE (package/assets/tokenizer.json). Otherwise a
    # tokenizer.json path on any Beam filesystem, or a model name already in the local HF cache.
    tokenizer: str | None = None
    add_bos: bool = False
    add_eos: bool = True
    bos: str | None = None  # None: taken from the tokenizer's special tokens when add_bos
    eos: str | None = None  # None: taken from the tokenizer's special tokens when add_eos
    buckets: list[int] = Field(default_factory=lambda: [512, 1024, 2048, 4096, 8192], min_length=1)
    pack: bool = False
    # Byte-level BPE tokenizers (GPT-2, NeoX, the project's own): reuse the ids of words already
    # seen on this worker. Same ids as the library (checked per character, see
    # transforms/word_cache.py; compiled where a C compiler was at install), 2-4x faster; false:
    # every document through the library.
    word_cache: bool = True
    batch_size: int = Field(256, gt=0)
    shard_target_mb: int = Field(256, gt=0)
    control_tokens: list[ControlTokenRule] = Field(default_factory=list)  # none: today's output unchanged
    # Outputs: parquet (sequences/), megatron (sequences_megatron/), mds (sequences_mds/); see
    # transforms/tokenize/outputs.py. token_dtype: ids of the trainer formats (auto: by vocabulary).
    formats: list[Literal["parquet", "megatron", "mds"]] = Field(
        default_factory=lambda: ["parquet"], min_length=1
    )
    token_dtype: Literal["auto", "uint16", "int32"] = "auto"
    shuffle_seed: int | None = Field(None, ge=0)
    shards: int = Field(0, ge=0)  # trainer-format (and shuffled Parquet) shards; 0: from shard_target_mb
    sort_buffer_mb: int = Field(256, gt=0)  # rows a shard writer sorts in memory before spilling to disk

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists a format twice")
        return v

    @field_validator("buckets")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if any(b <= 0 for b in v) or any(a >= b for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("must be strictly ascending positive token counts")
        return v


class ToxicityConfig(Section):
    """Toxicity tagging (see transforms/toxicity.py for the segment scoring and aggregation)."""

    enabled: bool = True
    filter: bool = False
    threshold: float = Field(0.7, ge=0.0, le=1.0)
    peak_weight: float = Field(0.5, ge=0.0, le=1.0)
    max_segment_terms: int = Field(64, gt=0)
    clean_text: bool = True
    min_coverage: float = Field(0.5, ge=0.0, le=1.0)
    batch_size: int = Field(256, gt=0)
    model_path: str | None = None


class PromptThresholds(Section):
    """Matches per document at which a signal tags it (and, with ``prompt.filter``, rejects it); 0: never."""

    chat_markers: int = Field(4, ge=0)
    template_tokens: int = Field(2, ge=0)
    assistant_boilerplate: int = Field(1, ge=0)
    jailbreak: int = Field(1, ge=0)


class PromptConfig(Section):
    """Prompt control (transforms/prompt/): chat transcripts, templates, assistant boilerplate, jailbreaks."""

    enabled: bool = True
    filter: bool = False
    thresholds: PromptThresholds = Field(default_factory=PromptThresholds)
    patterns_file: str | None = None  # None: the shipped package/assets/prompt_patterns.txt
    extra_patterns: dict[str, list[str]] = Field(default_factory=dict)


class BiasConfig(Section):
    """Bias signals (transforms/bias/): gendered words and identity mentions, tagging only. The
    classifier, its text cleaning and the toxic threshold are the ``toxicity`` section's."""

    enabled: bool = True
    lexicon: str | None = None  # None: the shipped package/assets/bias_lexicon.txt
    toxic_lines: bool = True
    max_segment_words: int = Field(64, gt=0)
    batch_size: int = Field(256, gt=0)
    score_cache: int = Field(16384, ge=0)  # scored lines kept per worker (LRU, 16 Mi chars); 0: none


class Config(Section):
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    toxicity: ToxicityConfig = Field(default_factory=ToxicityConfig)
    bias: BiasConfig = Field(default_factory=BiasConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    mix: MixConfig = Field(default_factory=MixConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    def writes_dedup_index(self) -> bool:
        """``output.dedup_index`` resolved. ``auto`` writes the index when exact or near dedup runs:
        a run that deduplicates is a release later runs deduplicate against, while a run with both
        off (a pass-through, a re-tokenization) would spend a MinHash signature per kept document
        on an index nobody asked for (most of a pass-through run's time)."""
        if self.output.dedup_index == "auto":
            return self.dedup.exact.enabled or self.dedup.near.enabled
        return self.output.dedup_index

    def resolved(self) -> dict[str, Any]:
        """The full config as plain data, every default filled in (written to stats.json)."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """A stable hash of the resolved config, so two runs can be compared at a glance."""
        blob = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Keys renamed so that a quality number has one name across config key, signal and rule: an old key
# is still read, with a warning naming the new one. Add a row when renaming a key.
RENAMED_KEYS: dict[str, str] = {
    "quality.fineweb.char_duplicates_ratio": "quality.fineweb.max_char_dup_ratio",
    "quality.fineweb.new_line_ratio": "quality.fineweb.max_list_ratio",
}
log = logging.getLogger(__name__)


def _rename_old_keys(tree: dict[str, Any]) -> None:
    """Move every old key of :data:`RENAMED_KEYS` found in ``tree`` to its new name, warning once each."""
    for old, new in RENAMED_KEYS.items():
        *parents, leaf = old.split(".")
        node: Any = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            continue
        new_leaf = new.rsplit(".", 1)[1]
        if new_leaf in node:
            raise ConfigError(f"{old}: renamed to {new}, and both are set; keep only {new}")
        log.warning("config: %s is renamed to %s (the old name still works for now; please update)", old, new)
        node[new_leaf] = node.pop(leaf)


def default_config_path() -> Path:
    return Path(str(resources.files("corpusforge.configs").joinpath("default.yaml")))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"--set {dotted!r}: empty key segment")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, cannot set {dotted!r} below it")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """Parse ``key.path=value`` strings; values are YAML (``[en,de]``, ``false``, ``0.7``)."""
    out = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"{key.strip()}: value {raw!r} is not valid YAML ({exc})") from exc
        out.append((key.strip(), value))
    return out


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        # list items as key[i] (tokenize.control_tokens[0].names), the way the docs spell them
        path = (
            "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".") or "<root>"
        )
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load ``path`` (or only the defaults) and apply ``--set`` overrides; validate once."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        try:
            tree = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping of sections")
    # a section whose keys are all commented out parses as null: it means "the defaults"
    tree = {k: ({} if v is None else v) for k, v in tree.items()}
    for key, value in parse_overrides(overrides):
        _set_dotted(tree, key, value)
    _rename_old_keys(tree)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
