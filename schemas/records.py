"""The record contract: one typed definition of every record corpusforge moves or writes.

Everything else is derived from these dataclasses: the pyarrow schemas of ``documents/``,
``rejected/`` and ``sequences/`` (see :mod:`corpusforge.schemas.arrow`) and the dict rows handed to
the Parquet writers. Add an annotation here and it appears in every output, typed, with no second
definition to keep in step.

Integer and float widths are given with ``Annotated[int, pa.int32()]``; a bare ``int`` is int64 and a
bare ``float`` is float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated, Any

import pyarrow as pa

from corpusforge.schemas.config import PII_ENTITIES

Int32 = Annotated[int, pa.int32()]
Float32 = Annotated[float, pa.float32()]

# ``pii_counts`` is a dict in flight (only the types found) but a struct on disk, one int32 field per
# entity type the config accepts: a Parquet map column cannot be read by Hugging Face ``datasets``
# ("does not have a datasets dtype equivalent"), a struct is read by every Parquet reader. Its fields
# follow ``PII_ENTITIES``, so an entity type added there appears here with no second list to edit.
PII_COUNTS_TYPE = pa.struct([pa.field(entity, pa.int32(), nullable=False) for entity in PII_ENTITIES])
PiiCounts = Annotated[dict[str, int], PII_COUNTS_TYPE]
# Counts whose keys are open-ended (bias categories come from a lexicon a user can extend): a list of
# (name, count) structs on disk, which every reader takes, where a map would not load in datasets.
NAMED_COUNTS_TYPE = pa.list_(
    pa.struct([pa.field("name", pa.string(), nullable=False), pa.field("count", pa.int32(), nullable=False)])
)
NamedCounts = Annotated[dict[str, int], NAMED_COUNTS_TYPE]


@dataclass
class QualitySignals:
    """The numbers the quality stage thresholds, kept as one typed struct column on every document
    it saw, so thresholds can be changed afterwards without re-running (as RedPajama v2 does).

    Fractions are in [0, 1]. Definitions live in :mod:`corpusforge.transforms.quality.signals`.
    """

    # Gopher quality (Rae et al. 2021)
    n_words: Int32
    n_lines: Int32
    mean_word_length: Float32
    symbol_word_ratio: Float32
    bullet_lines_ratio: Float32
    ellipsis_lines_frac: Float32
    alpha_words_frac: Float32
    stop_words: Int32
    # Gopher repetition
    dup_line_frac: Float32
    dup_para_frac: Float32
    dup_line_char_frac: Float32
    dup_para_char_frac: Float32
    top_2gram_char_frac: Float32
    top_3gram_char_frac: Float32
    top_4gram_char_frac: Float32
    dup_5gram_char_frac: Float32
    dup_6gram_char_frac: Float32
    dup_7gram_char_frac: Float32
    dup_8gram_char_frac: Float32
    dup_9gram_char_frac: Float32
    dup_10gram_char_frac: Float32
    # C4 (Raffel et al. 2020), evaluated per document: the text is never changed
    c4_lorem_ipsum: bool
    c4_curly_brace: bool
    c4_javascript_lines_frac: Float32
    c4_policy_lines_frac: Float32
    c4_kept_lines_frac: Float32
    c4_sentences: Int32
    # FineWeb (Penedo et al. 2024)
    line_punct_ratio: Float32
    short_line_ratio: Float32
    char_dup_ratio: Float32
    list_ratio: Float32
    # Beyond the papers: encoding damage, shouting (RedPajama v2's frac_all_caps_words)
    mojibake_ratio: Float32
    all_caps_words_ratio: Float32


@dataclass
class BiasSignals:
    """What the bias stage measured in one document (see :mod:`corpusforge.transforms.bias`).

    ``female`` and ``male`` count gendered words (pronouns and nouns); ``mentions`` counts identity
    terms per category (only categories with a mention appear); ``toxic_mentions`` counts, per
    category (``female`` and ``male`` included), the mentions that sit in a line or sentence the
    toxicity classifier scores at or above ``toxicity.threshold``. ``words`` is the denominator of
    the per-million-words rates in stats.json.
    """

    words: Int32
    female: Int32
    male: Int32
    mentions: NamedCounts  # written as [{name, count}, ...]
    toxic_mentions: NamedCounts


@dataclass
class PromptSignals:
    """Prompt scaffolding found in one document (see :mod:`corpusforge.transforms.prompt`): matches
    of the shipped (and configured) patterns per signal."""

    chat_markers: Int32  # role turns that start a line: "Human:", "Assistant:", "User:"
    template_tokens: Int32  # <|im_start|>, [INST], ### Instruction:, special tokens spelt as text
    assistant_boilerplate: Int32  # "As an AI language model", "I cannot fulfill this request"
    jailbreak: Int32  # "ignore all previous instructions", "you are now DAN"


@dataclass
class Document:
    """A document in flight. Stages read ``text`` and add typed annotations; none is a free dict.

    ``metadata`` holds every input field corpusforge does not interpret, as a JSON string, so that
    it comes out exactly as it went in whatever its shape.
    """

    id: str
    text: str
    source: str | None = None
    url: str | None = None
    metadata: str | None = None
    # Where the record came from: input path and byte offset (or row index) in it. Used for stable
    # tie-breaking (first occurrence wins) and for audit.
    input_path: str | None = None
    input_offset: int | None = None
    # Annotations added by stages. None means "the stage did not run on this document".
    lang: str | None = None
    lang_score: Float32 | None = None
    quality_signals: QualitySignals | None = None
    prompt_signals: PromptSignals | None = None
    duplicate_count: Int32 | None = None
    contamination: str | None = None
    pii_counts: PiiCounts | None = None  # replacements per entity type ({} when none)
    toxicity_score: Float32 | None = None
    bias: BiasSignals | None = None
    n_tokens: Int32 | None = None
    mix_uses: Int32 | None = None  # times the token-budget mix used the document (None: no mix)


@dataclass
class RejectReason:
    """Why a record did not survive. ``reason`` is ``stage:detail`` in lower case."""

    reason: str
    stage: str
    detail: str | None = None
    duplicate_of: str | None = None


@dataclass
class RejectedDocument:
    """A rejected record in flight: the document as the rejecting stage saw it, and why."""

    doc: Document
    rejection: RejectReason


@dataclass
class SequenceRow:
    """One training row of token ids, written under ``sequences/bucket=N/``."""

    input_ids: list[Int32]
    length: Int32
    doc_id: str
    chunk_index: Int32


@dataclass
class PackedRow:
    """One packed training row (``tokenize.pack: true``): documents concatenated, each ending in EOS.

    ``doc_ids[i]`` starts at token offset ``doc_starts[i]`` of the row and runs to the next start
    (or the row's end); ``chunk_indices[i]`` is the position of that piece within its document, so a
    document cut at a row boundary can be put back together.
    """

    input_ids: list[Int32]
    length: Int32
    doc_ids: list[str]
    doc_starts: list[Int32]
    chunk_indices: list[Int32]


@dataclass
class IndexRow:
    """One kept document in ``dedup_index/``: what a later run needs to find its copies.

    ``exact_hash`` is the 16-byte digest exact dedup groups by; ``band_keys`` are the LSH shuffle
    keys near dedup joins on; ``signature`` is the MinHash signature (``num_perm`` little-endian
    uint32), stored because verifying a near pair needs the earlier document and its text is not
    in the index: the signature is a fixed 4 bytes per permutation whatever the text's length,
    where the shingle hashes would make the index about as large as the text.
    """

    id: str
    release: str
    exact_hash: bytes
    band_keys: list[bytes]
    signature: bytes


DOCUMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Document))
REJECTION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RejectReason))
# Annotations that are flat dataclasses (struct columns); pyarrow wants them as dicts.
_STRUCT_FIELDS: frozenset[str] = frozenset({"quality_signals", "prompt_signals", "bias"})


def document_row(doc: Document) -> dict[str, Any]:
    """The Parquet row of a kept document (a plain dict; cheaper than ``dataclasses.asdict``)."""
    row = {name: getattr(doc, name) for name in DOCUMENT_FIELDS}
    for name in _STRUCT_FIELDS:
        value = row[name]
        if value is not None:
            row[name] = {k: named_counts_row(v) if isinstance(v, dict) else v for k, v in vars(value).items()}
    if row["pii_counts"] is not None:
        row["pii_counts"] = pii_counts_row(row["pii_counts"])
    return row


def named_counts_row(counts: dict[str, int]) -> list[dict[str, Any]]:
    """The on-disk value of a :data:`NamedCounts` dict: (name, count) pairs in the dict's order."""
    return [{"name": k, "count": v} for k, v in counts.items()]


def pii_counts_row(counts: dict[str, int]) -> dict[str, int]:
    """The struct value of ``pii_counts``: every entity type, 0 where none was replaced.

    An unknown type is an error rather than a silently dropped struct field (pyarrow ignores keys a
    struct does not have)."""
    unknown = set(counts) - set(PII_ENTITIES)
    if unknown:
        raise ValueError(
            f"pii_counts has entity types outside schemas.config.PII_ENTITIES: {sorted(unknown)}"
        )
    return {entity: counts.get(entity, 0) for entity in PII_ENTITIES}


def rejected_row(rejected: RejectedDocument, include_text: bool = True) -> dict[str, Any]:
    """The Parquet row of a rejected record: every document column, then the rejection columns."""
    row = document_row(rejected.doc)
    if not include_text:
        row["text"] = None
    for name in REJECTION_FIELDS:
        row[name] = getattr(rejected.rejection, name)
    return row


def sequence_row(seq: SequenceRow | PackedRow) -> dict[str, Any]:
    """The Parquet row of a training row (either layout)."""
    return {f.name: getattr(seq, f.name) for f in fields(seq)}


__all__ = [
    "BiasSignals",
    "DOCUMENT_FIELDS",
    "Document",
    "Float32",
    "IndexRow",
    "Int32",
    "PII_COUNTS_TYPE",
    "PiiCounts",
    "QualitySignals",
    "PackedRow",
    "PromptSignals",
    "REJECTION_FIELDS",
    "RejectedDocument",
    "RejectReason",
    "SequenceRow",
    "document_row",
    "field",
    "pii_counts_row",
    "rejected_row",
    "sequence_row",
]
