"""The ordered chain of document stages, built from the config.

Each entry turns the config into a composite PTransform mapping documents to ``(kept, rejected)``,
or None when its section is disabled. The order is the data flow of DESIGN.md: cheap per-document
filters first, decontamination before deduplication, PII after deduplication.
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

from corpusforge.schemas.config import Config, ConfigError
from corpusforge.transforms.base import ApplyStage
from corpusforge.transforms.bias.lexicon import Lexicon, LexiconError
from corpusforge.transforms.bias.stage import tag_bias
from corpusforge.transforms.decontam.index import resolve_sources
from corpusforge.transforms.decontam.stage import Decontaminate, Decontaminator
from corpusforge.transforms.dedup.exact import DeduplicateExact
from corpusforge.transforms.dedup.index import DedupIndexError, IndexParams, resolve_previous
from corpusforge.transforms.dedup.near import DeduplicateNear, NearParams
from corpusforge.transforms.dedup.previous import DeduplicatePrevious
from corpusforge.transforms.language.stage import IdentifyLanguage
from corpusforge.transforms.normalize.stage import Normalize
from corpusforge.transforms.pii.stage import pii_stage
from corpusforge.transforms.prompt.patterns import PatternError, load_patterns
from corpusforge.transforms.prompt.stage import tag_prompt
from corpusforge.transforms.quality.stage import FilterQuality
from corpusforge.transforms.toxicity.stage import tag_toxicity

StageFactory = Callable[[Config], beam.PTransform | None]


def _normalize(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(Normalize()) if cfg.normalize.enabled else None


def _settings(section) -> dict:
    """A section's keys as constructor arguments: the config names are the logic's parameter names."""
    return section.model_dump(exclude={"enabled"})


def _language(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(IdentifyLanguage(**_settings(cfg.language))) if cfg.language.enabled else None


def _quality(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(FilterQuality(cfg.quality)) if cfg.quality.enabled else None


def _decontamination(cfg: Config) -> beam.PTransform | None:
    c = cfg.decontamination
    if not c.enabled:
        return None
    try:  # fail at start-up, naming the key, rather than on a worker after the run has begun
        resolve_sources(c.benchmarks)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"decontamination.benchmarks: {exc}") from None
    return Decontaminate(Decontaminator(**_settings(c)))


def _pii(cfg: Config) -> beam.PTransform | None:
    return ApplyStage(pii_stage(cfg.pii)) if cfg.pii.enabled else None


def near_params(cfg: Config) -> NearParams:
    """The MinHash/LSH parameters of the run (also those of its dedup index, near dedup on or off)."""
    return NearParams.resolve(**_settings(cfg.dedup.near))


def _dedup_previous(cfg: Config) -> beam.PTransform | None:
    c = cfg.dedup
    if not c.previous or not (c.exact.enabled or c.near.enabled):
        return None
    params = near_params(cfg)
    try:  # at start-up: a missing index or one with other parameters fails before anything runs
        sources = resolve_previous(c.previous, IndexParams.of(params), exact_only=not c.near.enabled)
    except DedupIndexError as exc:
        raise ConfigError(str(exc)) from None
    return DeduplicatePrevious(sources, params, exact=c.exact.enabled, near=c.near.enabled)


def _dedup_exact(cfg: Config) -> beam.PTransform | None:
    return DeduplicateExact() if cfg.dedup.exact.enabled else None


def _dedup_near(cfg: Config) -> beam.PTransform | None:
    c = cfg.dedup.near
    if not c.enabled:
        return None
    return DeduplicateNear(NearParams.resolve(**_settings(c)))


def _toxicity(cfg: Config) -> beam.PTransform | None:
    return tag_toxicity(cfg.toxicity)


def _prompt(cfg: Config) -> beam.PTransform | None:
    c = cfg.prompt
    if c.enabled:
        try:  # a bad pattern fails at start-up, naming where it came from
            load_patterns(c.patterns_file, c.extra_patterns)
        except PatternError as exc:
            raise ConfigError(f"prompt.patterns_file: {exc}" if c.patterns_file and str(c.patterns_file) in str(exc)
                              else f"prompt: {exc}") from None
    return tag_prompt(c)


def _bias(cfg: Config) -> beam.PTransform | None:
    if cfg.bias.enabled:
        try:  # a bad lexicon fails at start-up, naming the file and line
            Lexicon.load(cfg.bias.lexicon)
        except LexiconError as exc:
            raise ConfigError(f"bias.lexicon: {exc}") from None
    return tag_bias(cfg)


STAGES: list[tuple[str, StageFactory]] = [
    ("normalize", _normalize),
    # Decontamination first among the filters: at ~3,000 docs/s per core it is cheaper than language
    # ID and the quality rules, and every contaminated input document is then reported as such (the
    # per-benchmark leakage figures do not depend on which pages the quality rules would drop). It
    # also runs before dedup, so a contaminated copy can never be the one a cluster keeps.
    ("decontamination", _decontamination),
    ("language", _language),
    ("quality", _quality),
    ("prompt", _prompt),  # before dedup: with its filter on, a rejected copy never decides a cluster
    ("dedup_previous", _dedup_previous),  # first of dedup: a copy of an earlier release is named as such
    ("dedup_exact", _dedup_exact),
    ("dedup_near", _dedup_near),
    ("pii", _pii),  # after dedup: it changes text that dedup compares in its original form
    ("toxicity", _toxicity),  # late: it scores only what survives, and only tags by default
    ("bias", _bias),  # after toxicity: it reads the same classifier; tagging only
]


# Stages after deduplication (they may change text): the dedup index is taken before them.
_NAMES = [name for name, _ in STAGES]
POST_DEDUP = frozenset(_NAMES[_NAMES.index("dedup_near") + 1:])


def enabled_stages(cfg: Config) -> list[tuple[str, beam.PTransform]]:
    out = []
    for name, factory in STAGES:
        transform = factory(cfg)
        if transform is not None:
            out.append((name, transform))
    return out
