"""``mix:``: token-budget mixing of document groups, between ``tokenize`` and ``bucket``.

Mixing by document count turns a 1:1 web:books mix into ~10:1 in tokens; trainers budget tokens.
A deterministic two-pass sampler:

1. count each group's tokens (``n_tokens`` of its kept documents; the group is ``mix.by``, a
   document column or a metadata field);
2. per group, with target T and A tokens available: every document is used ``floor(T / A)`` times
   (at most ``mix.max_epochs``), then, in a stable hash order of the ids, whole documents are taken
   once more while they fit in what is left of T. Documents are never split; a target that would
   need more than ``max_epochs`` is met as far as it can be and reported (``capped``).

A target naming a group that pass 1 finds no document of (a typo, or a source the filters removed
whole) fails the run with one line naming ``mix.targets.<group>``: the group check is a side input
of the plan, so no ``sequences/`` (nor any trainer format) is written before it passes.
``mix.allow_empty_groups: true`` runs on instead (a config shared by corpora that lack some
groups): that group's share then goes unmet and stats.json marks it ``no_documents``.

Shares (floats) are of the total kept tokens, so the mixed corpus is as large as the clean one;
integers are token counts. Groups the targets do not name are left out (``mix_uses`` 0).

``documents/`` keeps every document once with ``mix_uses``; the token stream carries each document
``mix_uses`` times, the repeats named ``<id>#<k>`` (k = 1, 2, ...) so that their rows are told
apart and spread over shards by the shuffle; provenance strips the suffix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.schemas.config import MixConfig
from corpusforge.schemas.records import DOCUMENT_FIELDS, Document
from corpusforge.transforms.base import StageCounters

REPEAT_SEP = "#"


def group_of(doc: Document, by: str) -> str:
    """The document's group: a column's value, else the metadata field's (``""`` when absent)."""
    if by in DOCUMENT_FIELDS and by != "metadata":
        value = getattr(doc, by)
    else:
        try:
            value = json.loads(doc.metadata or "{}").get(by)
        except (ValueError, AttributeError):
            value = None
    return "" if value is None else str(value)


def target_tokens(target: float | int, total: int) -> int:
    """A share of ``total`` (float) or a token count (int)."""
    return target if isinstance(target, int) else round(target * total)


def _order(doc_id: str) -> tuple[bytes, str]:
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8, person=b"cf-mix").digest(), doc_id


def plan_group(
    members: Sequence[tuple[str, int]], target: int, max_epochs: int
) -> tuple[dict[str, int], dict[str, Any]]:
    """Uses per document id of one group, and the group's report (target, available, achieved)."""
    available = sum(n for _, n in members)
    if available == 0:
        return {d: 0 for d, _ in members}, {
            "target": target,
            "available": 0,
            "achieved": 0,
            "capped": target > 0,
        }
    full = min(target // available, max_epochs)
    left = target - full * available if full < max_epochs else 0
    uses = {d: full for d, _ in members}
    for doc_id, n in sorted(members, key=lambda m: _order(m[0])):
        if left <= 0:
            break
        if 0 < n <= left:
            uses[doc_id] += 1
            left -= n
    achieved = sum(uses[d] * n for d, n in members)
    capped = full == max_epochs and achieved < target
    return uses, {"target": target, "available": available, "achieved": achieved, "capped": capped}


def repeat_ids(doc_id: str, uses: int) -> list[str]:
    """The ids of a document's copies in the token stream: itself, then ``<id>#1``, ``<id>#2``..."""
    return [doc_id if k == 0 else f"{doc_id}{REPEAT_SEP}{k}" for k in range(uses)]


def source_id(stream_id: str, known: set[str] | None = None) -> str:
    """The ``documents/`` id of a row's doc id (a repeat's suffix removed)."""
    if known is not None and stream_id in known:
        return stream_id
    base, sep, k = stream_id.rpartition(REPEAT_SEP)
    return base if sep and k.isdigit() else stream_id


SUMMARY_TAG = "summary"


class EmptyGroupError(ValueError):
    """A target names a group with no documents in this run's data (known only after pass 1)."""


def check_groups(present: Iterable[str], cfg: MixConfig) -> list[str]:
    """The targeted groups without documents; raises :class:`EmptyGroupError` for the first (in
    the config's order) unless ``mix.allow_empty_groups``."""
    have = set(present)
    empty = [g for g in cfg.targets if g not in have]
    if empty and not cfg.allow_empty_groups:
        g = empty[0]
        others = f" (and {', '.join(empty[1:])})" if len(empty) > 1 else ""
        raise EmptyGroupError(
            f"mix.targets.{g}: no document has {cfg.by} = {g!r}{others}; "
            "fix the target or set mix.allow_empty_groups: true"
        )
    return empty


class _PlanFn(beam.DoFn):
    def __init__(self, cfg: MixConfig) -> None:
        self.targets, self.max_epochs = dict(cfg.targets), cfg.max_epochs

    def setup(self) -> None:
        self.counters = StageCounters("mix")

    def process(
        self, element: tuple[str, Iterable[tuple[str, int]]], total: int, empty_groups: list[str]
    ) -> Iterable[Any]:
        # empty_groups: only to order the plan after the check (check_groups raised if it failed)
        group, members = element
        members = list(members)
        if group not in self.targets:
            self.counters.inc(f"left_out:{group}", sum(n for _, n in members))
            for doc_id, _ in members:
                yield doc_id, 0
            return
        uses, report = plan_group(members, target_tokens(self.targets[group], total), self.max_epochs)
        for key in ("target", "available", "achieved"):
            self.counters.inc(f"{key}:{group}", report[key])
        self.counters.inc("tokens", report["achieved"])
        if report["capped"]:
            self.counters.inc(f"capped:{group}")
        yield from uses.items()


def _with_uses(element: tuple[str, dict[str, list]]) -> Iterable[Document]:
    _, joined = element
    uses = joined["uses"][0] if joined["uses"] else 0
    for doc in joined["doc"]:
        yield dataclasses.replace(doc, mix_uses=uses)


def _repeated(element: tuple[str, dict[str, list]]) -> Iterable[tuple[str, list[int]]]:
    doc_id, joined = element
    uses = joined["uses"][0] if joined["uses"] else 0
    for ids in joined["ids"]:
        for stream_id in repeat_ids(doc_id, uses):
            yield stream_id, ids


class Mix(beam.PTransform):
    """``(documents with n_tokens, (doc_id, ids))`` in; the same with ``mix_uses`` set and each
    document's ids repeated ``mix_uses`` times out."""

    def __init__(self, cfg: MixConfig) -> None:
        super().__init__(label="mix")
        self.cfg = cfg

    def expand(
        self, pcolls: tuple[beam.PCollection, beam.PCollection]
    ) -> tuple[beam.PCollection, beam.PCollection]:
        docs, tokens = pcolls
        by = self.cfg.by
        meta = docs | "Group" >> beam.Map(lambda d: (group_of(d, by), (d.id, d.n_tokens or 0)))
        total = meta | "Tokens" >> beam.Map(lambda kv: kv[1][1]) | "Total" >> beam.CombineGlobally(sum)
        cfg = self.cfg
        empty = (
            meta
            | "Groups" >> beam.Map(lambda kv: kv[0])
            | "DistinctGroups" >> beam.Distinct()
            | "AllGroups" >> beam.combiners.ToList()
            | "CheckGroups" >> beam.Map(lambda groups: check_groups(groups, cfg))
        )
        uses = (
            meta
            | "ByGroup" >> beam.GroupByKey()
            | "Plan" >> beam.ParDo(_PlanFn(cfg), pvalue.AsSingleton(total), pvalue.AsSingleton(empty))
        )
        keyed_docs = docs | "KeyDocs" >> beam.Map(lambda d: (d.id, d))
        docs_out = (
            {"doc": keyed_docs, "uses": uses}
            | "JoinDocs" >> beam.CoGroupByKey()
            | "SetUses" >> beam.FlatMap(_with_uses)
        )
        tokens_out = (
            {"ids": tokens, "uses": uses}
            | "JoinTokens" >> beam.CoGroupByKey()
            | "Repeat" >> beam.FlatMap(_repeated)
        )
        return docs_out, tokens_out


def mix_summary(counters: dict[str, dict[str, int]], cfg: MixConfig) -> dict[str, Any] | None:
    """stats.json's ``mix`` section: per group target, available and achieved tokens, and whether a
    target was capped by ``max_epochs`` or named a group with no documents."""
    if not cfg.enabled:
        return None
    c = counters.get("mix", {})
    left_out = {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("left_out:")}
    total = sum(c.get(f"available:{g}", 0) for g in cfg.targets) + sum(left_out.values())
    groups = {}
    for g, target in cfg.targets.items():
        available = c.get(f"available:{g}", 0)
        groups[g] = {
            "target": target_tokens(target, total),
            "available": available,
            "achieved": c.get(f"achieved:{g}", 0),
            "capped": bool(c.get(f"capped:{g}", 0)),
            "no_documents": available == 0,
        }
    return {
        "by": cfg.by,
        "max_epochs": cfg.max_epochs,
        "tokens": c.get("tokens", 0),
        "groups": groups,
        "left_out_tokens": left_out,
    }
