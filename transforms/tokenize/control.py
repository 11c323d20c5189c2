"""Control tokens for conditional training (``tokenize.control_tokens``, issue 21 part 2).

A model pre-trained with a token that says what a document is (PaLM 2 tags toxicity this way;
Korbak et al. 2023) can be steered at inference by that token. Each rule reads one column of the
document and turns its value into ``<|{field}:{name}|>``, placed after BOS and before the text:

- numeric columns (``toxicity_score``): ``bins`` are ascending edges, ``names`` one per bin; a value
  equal to an edge falls in the bin above it; a missing or NaN value gets no token;
- string columns (``lang``): one token per value listed in ``values`` (other values get no token),
  or, without ``values``, one token per value *seen*: a Beam combine over the documents that reach
  tokenize collects each such field's distinct values (bounded: more than ``max_values`` fails the
  run naming the key), sorted, as a side input, so the token set and its ids are the same on any
  worker count. A value is escaped for the token (:func:`escape_value`: ``%XX`` for ``|``, ``<``,
  ``>``, ``%``, white space and unprintable characters); an empty value gets no token.

``fraction`` tags only that share of the documents, chosen by :func:`stable_unit` of the id (salted
with the field, so two rules choose independently): the same documents on any worker count.

The tokens are added to the tokenizer as special tokens (HF ``add_special_tokens``) in rule order;
the driver computes their ids once (:func:`build_control`), every worker re-derives them from its
own copy of the tokenizer and refuses to run on a difference, and the run writes the extended
tokenizer to ``OUT/tokenizer.json`` so training decodes the same ids (with values seen, the graph
writes it once the values are known, and stats.json reads the tokens back from it). Text that merely spells a
control token stays plain text (the tokenizer encodes special tokens as text, see loading.py).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
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


def escape_value(value: str) -> str | None:
    """A string value as a token name, or None for an empty value (no token, as for a missing one).

    ``|``, ``<`` and ``>`` would make the token ambiguous (``<|lang:a|b|>``), white space would be
    split by readers of the vocabulary and unprintable characters are invisible: each such
    character (and ``%``, so the escaping is reversible) becomes ``%XX`` per UTF-8 byte. Other
    characters, non-ASCII letters included, stay as they are."""
    if not value:
        return None
    out = []
    for c in value:
        if c in "|<>%" or c.isspace() or not c.isprintable():
            out.append("".join(f"%{b:02X}" for b in c.encode("utf-8")))
        else:
            out.append(c)
    return "".join(out)


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
    names: tuple[str, ...]  # numeric: one per bin; string: the accepted values (escaped)
    fraction: float
    seen: bool = False  # string field without ``values``: names are the values seen (see resolved)
    max_values: int = 64
    key: str = "tokenize.control_tokens"
    listed: bool = False  # string field with ``values``: the names are those values, as written

    @classmethod
    def from_config(cls, rule: ControlTokenRule, key: str) -> ControlRule:
        kind = _kind(rule.field, key)
        if kind == "numeric" and rule.bins is None:
            raise ConfigError(f"{key}.bins: {rule.field!r} is numeric: give bins and names, not values")
        if kind == "string" and rule.bins is not None:
            raise ConfigError(f"{key}.values: {rule.field!r} is a string column: give values, not bins")
        names = rule.names if kind == "numeric" else rule.values
        return cls(
            rule.field,
            kind == "numeric",
            tuple(rule.bins or ()),
            tuple(names or ()),
            rule.fraction,
            seen=kind == "string" and rule.values is None,
            listed=kind == "string" and rule.values is not None,
            max_values=rule.max_values,
            key=key,
        )

    def resolved(self, names: Sequence[str]) -> ControlRule:
        """This values-seen rule with its token names: the escaped values seen, sorted."""
        if len(names) > self.max_values:
            raise ConfigError(
                f"{self.key}.max_values: {self.field!r} has more than {self.max_values} distinct values "
                f"in the documents (e.g. {sorted(names)[:5]}); list the wanted ones in values or raise max_values"
            )
        return dataclasses.replace(self, names=tuple(sorted(names)), seen=False)

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
        else:  # listed values are matched as written (the config refuses |, <, > and spaces in them)
            name = value if self.listed else escape_value(value)
            if name not in self.names:
                name = None
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

    @property
    def seen_rules(self) -> list[ControlRule]:
        """The rules whose tokens come from the values seen (not known before the run)."""
        return [r for r in self.rules if r.seen]

    def resolve(self, seen: dict[str, Sequence[str]]) -> ControlTokens:
        """The rules with the values seen per field (escaped names) and the ids that gives: the
        same sorted values give the same ids on every worker."""
        rules = [r.resolved(seen.get(r.field, ())) if r.seen else r for r in self.rules]
        tokens = [t for r in rules for t in r.tokens]
        return ControlTokens(self.spec, rules, add_control_tokens(load_tokenizer(self.spec), tokens))

    def setup(self) -> None:
        """On a worker: add the tokens to this worker's tokenizer and check the driver's ids."""
        if self.seen_rules:
            return  # ids are fixed by resolve, once the values seen are known
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
        """The vocabulary the sequences' schema must hold; with values-seen rules an upper bound
        (every such rule at its ``max_values``), since the graph is built before they are known."""
        if not self.seen_rules:
            return max(self.ids.values()) + 1
        base = load_tokenizer(self.spec).get_vocab_size(with_added_tokens=True)
        return base + len(self.tokens) + sum(r.max_values for r in self.seen_rules)


class SeenValues(beam.CombineFn):
    """Distinct escaped values of the values-seen fields over all documents: ``{field: [sorted
    names]}``. Each set stops growing one past the rule's ``max_values`` (enough to refuse), so
    the accumulator stays small whatever the corpus; more than ``max_values`` fails here, naming
    the key."""

    def __init__(self, rules: Sequence[ControlRule]) -> None:
        self.rules = list(rules)

    def create_accumulator(self) -> dict[str, set[str]]:
        return {r.field: set() for r in self.rules}

    def add_input(self, acc: dict[str, set[str]], doc: Document) -> dict[str, set[str]]:
        for r in self.rules:
            value = getattr(doc, r.field)
            names = acc[r.field]
            if value is not None and len(names) <= r.max_values:
                name = escape_value(value)
                if name is not None:
                    names.add(name)
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, set[str]]]) -> dict[str, set[str]]:
        out = self.create_accumulator()
        for acc in accs:
            for field, names in acc.items():
                out[field] |= names
        return out

    def extract_output(self, acc: dict[str, set[str]]) -> dict[str, list[str]]:
        seen = {field: sorted(names) for field, names in acc.items()}
        for r in self.rules:
            r.resolved(seen[r.field])  # refuses more than max_values
        return seen


def write_resolved_tokenizer(seen: dict[str, list[str]], output_dir: str, control: ControlTokens) -> str:
    """Write ``OUT/tokenizer.json`` from inside the graph, once the values seen are known."""
    path = write_tokenizer(output_dir, control.resolve(seen))
    assert path is not None
    return path


def resolve_from_file(output_dir: str, control: ControlTokens) -> ControlTokens:
    """The resolved control tokens of a finished run, read back from its ``OUT/tokenizer.json``
    (the values-seen tokens are the added tokens ``<|field:...|>`` of those fields)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(f"{output_dir.rstrip('/')}/{TOKENIZER_FILE}") as f:
        tok = Tokenizer.from_str(f.read().decode("utf-8"))
    added = [t.content for _, t in sorted(tok.get_added_tokens_decoder().items())]
    seen = {}
    for r in control.seen_rules:
        prefix = f"<|{r.field}:"
        seen[r.field] = [t[len(prefix) : -2] for t in added if t.startswith(prefix) and t.endswith("|>")]
    return control.resolve(seen)


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
    """Write ``OUT/tokenizer.json`` (only when rules exist: without them the output is unchanged;
    with values-seen rules the graph writes it, :func:`write_resolved_tokenizer`)."""
    if control is None or control.seen_rules:
        return None
    from apache_beam.io.filesystems import FileSystems

    path = f"{output_dir.rstrip('/')}/{TOKENIZER_FILE}"
    with FileSystems.create(path) as f:
        f.write(control.tokenizer_json().encode("utf-8"))
    return path


def control_summary(
    counters: dict[str, dict[str, int]], control: ControlTokens | None, output_dir: str | None = None
) -> dict[str, Any] | None:
    """``stats.json``'s ``control_tokens``: documents per control token (0 for a token no document
    got), over the kept documents (the ones tokenized), from the ``control:<token>`` counters."""
    if control is None:
        return None
    if control.seen_rules:
        if output_dir is None:
            return None
        control = resolve_from_file(output_dir, control)
    tokenize = counters.get("tokenize", {})
    return {
        "documents": {t: tokenize.get(COUNTER_PREFIX + t, 0) for t in control.tokens},
        "ids": dict(control.ids),
        "tokenizer": TOKENIZER_FILE,
    }
