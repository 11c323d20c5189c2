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
from corpusforge.transforms.language import IdentifyLanguage
from corpusforge.transforms.normalize import Normalize
from corpusforge.transforms.quality import FilterQuality

StageFactory = Callable[[Config], beam.PTransform | None]


def _normalize(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(Normalize()) if cfg.normalize.enabled else None


def _language(cfg: Config) -> beam.PTransform | None:
    c = cfg.language
    if not c.enabled:
        return None
    return ApplyStage(
        IdentifyLanguage(
            keep=c.keep,
            min_score=c.min_score,
            seed=c.seed,
            sample_chars=c.sample_chars,
            sample_chunks=c.sample_chunks,
            n_trial=c.n_trial,
        )
    )


def _quality(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(FilterQuality(cfg.quality)) if cfg.quality.enabled else None


STAGES: list[tuple[str, StageFactory]] = [
    ("normalize", _normalize),
    ("language", _language),
    ("quality", _quality),
]


def enabled_stages(cfg: Config) -> list[tuple[str, beam.PTransform]]:
    out = []
    for name, factory in STAGES:
        transform = factory(cfg)
        if transform is not None:
            out.append((name, transform))
    return out
