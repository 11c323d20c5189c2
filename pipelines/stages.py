"""The ordered chain of document stages, built from the config.

Each entry turns the config into a composite PTransform mapping documents to ``(kept, rejected)``,
or None when its section is disabled. The order is the data flow of DESIGN.md: cheap per-document
filters first, decontamination before deduplication, PII after deduplication.
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

from corpusforge.pipelines.config import Config
from corpusforge.transforms.base import ApplyStage
from corpusforge.transforms.normalize import Normalize
from corpusforge.transforms.toxicity import tag_toxicity

StageFactory = Callable[[Config], beam.PTransform | None]


def _normalize(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(Normalize()) if cfg.normalize.enabled else None


def _toxicity(cfg: Config) -> beam.PTransform | None:
    return tag_toxicity(cfg.toxicity)


STAGES: list[tuple[str, StageFactory]] = [
    ("normalize", _normalize),
    # language, quality, decontamination, dedup_exact, dedup_near, pii go here, in that order.
    ("toxicity", _toxicity),  # last: it scores only what survives, and only tags by default
]


def enabled_stages(cfg: Config) -> list[tuple[str, beam.PTransform]]:
    out = []
    for name, factory in STAGES:
        transform = factory(cfg)
        if transform is not None:
            out.append((name, transform))
    return out
