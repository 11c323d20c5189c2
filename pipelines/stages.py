"""The ordered chain of document stages: a table of (name, config section, transform).

Every stage is built the same way: its section is read off the validated config (the section is the
only home of the stage's defaults and derived values) and, when ``enabled``, handed to the stage
family's composite transform, which maps documents to ``(kept, rejected)``. The order is the data
flow of DESIGN.md: cheap per-document filters first, decontamination before deduplication, PII after
deduplication.

Adding a stage: give it a section model in ``schemas/config.py`` (with ``enabled``) and a field on
:class:`~corpusforge.schemas.config.Config`, a composite ``PTransform`` taking that section in its
family's package, and one row below, where it belongs in the data flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import apache_beam as beam

from corpusforge.schemas.config import Config
from corpusforge.transforms.bias import TagBiasSignals
from corpusforge.transforms.decontam import Decontaminate
from corpusforge.transforms.dedup import DeduplicateExact, DeduplicateNear
from corpusforge.transforms.dedup.index import NearParams
from corpusforge.transforms.dedup.previous import DeduplicatePrevious
from corpusforge.transforms.language import IdentifyLanguage
from corpusforge.transforms.normalize import Normalize
from corpusforge.transforms.pii import ScrubPII
from corpusforge.transforms.prompt import TagPromptSignals
from corpusforge.transforms.quality import FilterQuality
from corpusforge.transforms.toxicity import TagToxicity


@dataclass(frozen=True)
class StageRow:
    """One stage: its name (the graph label and stats.json key), where its section sits in the
    config (a dotted path), and the composite transform built from that section (plus the sections
    named in ``reads``, for a stage that shares another's settings). The stage's ``enabled`` switch is
    its own section's."""

    name: str
    section: str
    transform: Callable[..., beam.PTransform]
    reads: tuple[str, ...] = ()
    # For a stage whose section has no ``enabled`` switch of its own: whether it runs, from the section
    when: Callable[[Any], bool] | None = None

    def section_of(self, cfg: Config) -> Any:
        return attrgetter(self.section)(cfg)

    def enabled(self, cfg: Config) -> bool:
        section = self.section_of(cfg)
        return self.when(section) if self.when is not None else section.enabled

    def build(self, cfg: Config) -> beam.PTransform:
        return self.transform(self.section_of(cfg), *(attrgetter(r)(cfg) for r in self.reads))


STAGES: tuple[StageRow, ...] = (
    StageRow("normalize", "normalize", Normalize),
    # Decontamination first among the filters: at ~3,000 docs/s per core it is cheaper than language
    # ID and the quality rules, and every contaminated input document is then reported as such (the
    # per-benchmark leakage figures do not depend on which pages the quality rules would drop). It
    # also runs before dedup, so a contaminated copy can never be the one a cluster keeps.
    StageRow("decontamination", "decontamination", Decontaminate),
    StageRow("language", "language", IdentifyLanguage),
    StageRow("quality", "quality", FilterQuality),
    StageRow(
        "prompt", "prompt", TagPromptSignals
    ),  # before dedup: with its filter on, a rejected copy never decides a cluster
    # first of dedup: a copy of an earlier release is named as such, whatever this run holds
    StageRow("dedup_previous", "dedup", DeduplicatePrevious.from_section, when=DeduplicatePrevious.wanted),
    StageRow("dedup_exact", "dedup.exact", DeduplicateExact),
    StageRow("dedup_near", "dedup.near", DeduplicateNear),
    StageRow("pii", "pii", ScrubPII),  # after dedup: it changes text that dedup compares in its original form
    StageRow(
        "toxicity", "toxicity", TagToxicity
    ),  # late: it scores only what survives, and only tags by default
    StageRow(
        "bias", "bias", TagBiasSignals, reads=("toxicity",)
    ),  # after toxicity: it reads the same classifier
)


# The sections whose own ``enabled`` switch turns a stage of the chain off, in data-flow order (a
# stage with ``when`` runs by another rule: dedup_previous when ``dedup.previous`` names an index).
SWITCHED_SECTIONS: tuple[str, ...] = tuple(row.section for row in STAGES if row.when is None)

# Stages after deduplication (they may change text): the dedup index is taken before them.
_NAMES = [row.name for row in STAGES]
POST_DEDUP = frozenset(_NAMES[_NAMES.index("dedup_near") + 1 :])


def near_params(cfg: Config) -> NearParams:
    """The MinHash/LSH parameters of the run (also those of its dedup index, near dedup on or off)."""
    return NearParams.of(cfg.dedup.near)


def enabled_stages(cfg: Config) -> list[tuple[str, beam.PTransform]]:
    """``(name, transform)`` of every enabled stage, in data-flow order."""
    out = []
    for row in STAGES:
        if row.enabled(cfg):
            out.append((row.name, row.build(cfg)))
    return out
