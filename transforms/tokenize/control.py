"""Control tokens for conditional training (``tokenize.control_tokens``, issue 21 part 2).

A model pre-trained with a token that says what a document is (PaLM 2 tags toxicity this way;
Korbak et al. 2023) can be steered at inference by that token. Each rule reads one column of the
document and turns its value into ``<|{field}:{name}|>``, placed after BOS and before the text:

- numeric columns (``toxicity_score``): ``bins`` are ascending edges, ``names`` one per bin; a value
  equal to an edge falls in the bin above it; a missing or NaN value gets no token;
- string columns (``lang``): one token per value listed in ``values``. The list is explicit so the
  token set, hence the ids, is fixed on the driver before any worker tokenizes; other values get
  no token.

``fraction`` tags only that share of the documents, chosen by :func:`stable_unit` of the id (salted
with the field, so two rules choose independently): the same documents on any worker count.

The tokens are added to the tokenizer as special tokens (HF ``add_special_tokens``) in rule order;
the driver computes their ids once (:func:`build_control`), every worker re-derives them from its
own copy of the tokenizer and refuses to run on a difference, and the run writes the extended
tokenizer to ``OUT/tokenizer.json`` so training decodes the same ids. Text that merely spells a
control token stays plain text (the tokenizer encodes special tokens as text, see loading.py).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import AddedToken, Tokenizer

from corpusforge.schemas.config import ConfigError, ControlTokenRule, TokenizeConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.hashing import stable_unit
from corpusforge.transforms.tokenize.loading import load_tokenizer

TOKENIZER_FILE = "tokenizer.json"
COUNTER_PREFIX = "control:"  # tokenize counters: documents per control token

_DOC_TYPES = {f.name: str(f.type) for f in dataclasses.fields(Document)}


def token_text(field: str, name: str) -> str:
    return f"<|{field}:{name}|>"


def _kind(field: str, key: str) -> str:
    """``numeric`` or ``string``: what the Document column holds (checked before the run)."""
    annotation = _DOC_TYPES.get(field)
    if annotation is None:
        raise ConfigError(f"{key}.field: {field!r} is not a document column (one of {sorted(_DOC_TYPES)})")
    if annotation.startswith(("Float", "Int", "int", "float")):
        return "numeric"
    if annotation.startswith("str"):
        return "string"
    raise ConfigError(f"{key}.field: column {field!r} ({annotation}) is neither numeric nor a string")


@dataclass(frozen=True)
class ControlRule:
    """One validated rule: the column, how its value maps to a token name, and the tagged share."""

    field: str
    numeric: bool
    bins: tuple[float, ...]
    names: tuple[str, ...]  # numeric: one per bin; string: the accepted values
    fraction: float

    @classmethod
    def from_config(cls, rule: ControlTokenRule, key: str) -> ControlRule:
        kind = _kind(rule.field, key)
        if kind == "numeric" and rule.bins is None:
            raise ConfigError(f"{key}.bins: {rule.field!r} is numeric: give bins and names, not values")
        if kind == "string" and rule.values is None:
            raise ConfigError(f"{key}.values: {rule.field!r} is a string column: give values, not bins")
        names = rule.names if kind == "numeric" else rule.values
        return cls(rule.field, kind == "numeric", tuple(rule.bins or ()), tuple(names or ()), rule.fraction)

    @property
    def tokens(self) -> list[str]:
        return [token_text(self.field, n) for n in self.names]

    def name_for(self, doc: Document) -> str | None:
        """The token name this document gets from the rule, or None (no value, outside, not chosen)."""
        value = getattr(doc, self.field)
        if value is None:
            return None
        if self.numeric:
            value = float(value)
            if math.isnan(value):
                return None
            name = self.names[bisect.bisect_right(self.bins, value)]
        else:
            name = value if value in self.names else None
        if name is None or not chosen(doc.id, self.field, self.fraction):
            return None
        return name


def chosen(doc_id: str, field: str, fraction: float) -> bool:
    """Whether the document is in the rule's tagged share (stable hash, never ``hash()``)."""
    return fraction >= 1.0 or stable_unit(doc_id, f"control:{field}") < fraction


def add_control_tokens(tok: Tokenizer, tokens: Sequence[str]) -> dict[str, int]:
    """Add ``tokens`` as special tokens (in this order) and return their ids. Not normalized and
    never stripped, so each decodes back to exactly its text."""
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
    ids = {t: tok.token_to_id(t) for t in tokens}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        raise ConfigError(f"tokenize.control_tokens: the tokenizer did not take {missing}")
    return ids  # type: ignore[return-value]


class ControlTokens:
    """The rules and their token ids: the per-document ids to insert, and the extended tokenizer."""

    def __init__(self, spec: str | None, rules: Sequence[ControlRule], ids: dict[str, int]) -> None:
        self.spec = spec
        self.rules = list(rules)
        self.ids = dict(ids)

    @property
    def tokens(self) -> list[str]:
        return [t for rule in self.rules for t in rule.tokens]

    def setup(self) -> None:
        """On a worker: add the tokens to this worker's tokenizer and check the driver's ids."""
        ids = add_control_tokens(load_tokenizer(self.spec), self.tokens)
        if ids != self.ids:
            raise RuntimeError(
                f"control token ids differ on this worker ({ids}) from the driver's ({self.ids}): "
                "the workers read a different tokenizer"
            )

    def tokens_for(self, doc: Document) -> list[str]:
        """The control tokens of ``doc``, in rule order."""
        out = []
        for rule in self.rules:
            name = rule.name_for(doc)
            if name is not None:
                out.append(token_text(rule.field, name))
        return out

    def insert(self, doc: Document, ids: list[int], after: int) -> tuple[list[int], list[str]]:
        """``ids`` with the document's control token ids at position ``after`` (1 past a BOS)."""
        tokens = self.tokens_for(doc)
        if not tokens:
            return ids, tokens
        return ids[:after] + [self.ids[t] for t in tokens] + ids[after:], tokens

    def tokenizer_json(self) -> str:
        """The tokenizer the run used, control tokens added, as ``tokenizer.json`` text."""
        tok = load_tokenizer(self.spec)
        add_control_tokens(tok, self.tokens)
        tok.encode_special_tokens = False  # the file is for training/decoding: the library's default
        return tok.to_str(pretty=True)

    @property
    def vocab_size(self) -> int:
        return max(self.ids.values()) + 1


def build_control(cfg: TokenizeConfig) -> ControlTokens | None:
    """Validate the rules against the document columns and fix the token ids, on the driver
    (before the graph is built, so a bad rule fails at start-up naming its key)."""
    if not cfg.control_tokens:
        return None
    rules = [
        ControlRule.from_config(r, f"tokenize.control_tokens[{i}]") for i, r in enumerate(cfg.control_tokens)
    ]
    fields = [r.field for r in rules]
    dup = sorted({f for f in fields if fields.count(f) > 1})
    if dup:
        raise ConfigError(f"tokenize.control_tokens: more than one rule for {dup}")
    tokens = [t for r in rules for t in r.tokens]
    ids = add_control_tokens(load_tokenizer(cfg.tokenizer), tokens)
    return ControlTokens(cfg.tokenizer, rules, ids)


def write_tokenizer(output_dir: str, control: ControlTokens | None) -> str | None:
    """Write ``OUT/tokenizer.json`` (only when rules exist: without them the output is unchanged)."""
    if control is None:
        return None
    from apache_beam.io.filesystems import FileSystems

    path = f"{output_dir.rstrip('/')}/{TOKENIZER_FILE}"
    with FileSystems.create(path) as f:
        f.write(control.tokenizer_json().encode("utf-8"))
    return path


def control_summary(
    counters: dict[str, dict[str, int]], control: ControlTokens | None
) -> dict[str, Any] | None:
    """``stats.json``'s ``control_tokens``: documents per control token (0 for a token no document
    got), over the kept documents (the ones tokenized), from the ``control:<token>`` counters."""
    if control is None:
        return None
    tokenize = counters.get("tokenize", {})
    return {
        "documents": {t: tokenize.get(COUNTER_PREFIX + t, 0) for t in control.tokens},
        "ids": dict(control.ids),
        "tokenizer": TOKENIZER_FILE,
    }
