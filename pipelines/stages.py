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
from corpusforge.transforms.dedup_exact import DeduplicateExact
from corpusforge.transforms.dedup_near import DeduplicateNear, NearParams
from corpusforge.transforms.normalize import Normalize

StageFactory = Callable[[Config], beam.PTransform | None]


def _normalize(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(Normalize()) if cfg.normalize.enabled else None


def _dedup_exact(cfg: Config) -> beam.PTransform | None:
    return DeduplicateExact() if cfg.dedup.exact.enabled else None


def _dedup_near(cfg: Config) -> beam.PTransform | None:
    c = cfg.dedup.near
    if not c.enabled:
        return None
    return DeduplicateNear(NearParams.resolve(**c.model_dump(exclude={"enabled"})))


STAGES: list[tuple[str, StageFactory]] = [
    ("normalize", _normalize),
    # language, quality and decontamination go here: dedup must see only what they keep
    ("dedup_exact", _dedup_exact),
    ("dedup_near", _dedup_near),
    # pii and toxicity go here: they change or tag text that dedup compared in its original form
]


def enabled_stages(cfg: Config) -> list[tuple[str, beam.PTransform]]:
    out = []
    for name, factory in STAGES:
        transform = factory(cfg)
        if transform is not None:
            out.append((name, transform))
    return out
