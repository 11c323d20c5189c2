"""Stage ``pii``: replace personal data in kept text with typed placeholders; never rejects.

Personal data in training text leaks into model outputs. This stage wraps
:class:`~corpusforge.transforms.pii.engine.PiiScrubber` (presidio with our recognizers, gated and
windowed so that documents without candidates never reach the analyzer) as a batched
:class:`~corpusforge.transforms.base.DocumentStage`. Each document gets ``pii_counts`` (replacements
per entity type, empty when none) and the stage counts ``replaced:<TYPE>`` totals, ``docs_with_pii``,
and how much reached the analyzer past the gates (``analyzed_docs``, ``analyzed_chars``, to be read
against ``in`` and ``chars_in``); stats.json reports them under ``stages.pii.counters``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from corpusforge.schemas.config import PiiConfig
from corpusforge.schemas.records import Document, Rejection
from corpusforge.transforms.base import ApplyStage, DocumentStage
from corpusforge.transforms.pii.engine import PiiScrubber, ner_model_available
from corpusforge.transforms.pii.recognizers import NER_ENTITIES

REPLACED_PREFIX = "replaced:"
log = logging.getLogger(__name__)


class PiiRedactor(DocumentStage):
    """Batched PII scrubbing; the presidio engine is built in ``setup`` (once per worker)."""

    name = "pii"

    def __init__(self, cfg: PiiConfig | None = None) -> None:
        cfg = cfg or PiiConfig()
        self.scrubber = PiiScrubber(cfg)
        self.batch_size = cfg.batch_size

    def setup(self) -> None:
        self.scrubber.ready()

    def process(self, doc: Document) -> Document | Rejection:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | Rejection]:
        results = self.scrubber.scrub_batch([d.text or "" for d in docs])
        out: list[Document | Rejection] = []
        for doc, res in zip(docs, results, strict=True):
            if res.analyzed_chars and self.counters is not None:
                self.counters.inc("analyzed_docs")
                self.counters.inc("analyzed_chars", res.analyzed_chars)
            if res.counts and self.counters is not None:
                self.counters.inc("docs_with_pii")
                for entity, n in res.counts.items():
                    self.counters.inc(REPLACED_PREFIX + entity, n)
            out.append(replace(doc, text=res.text, pii_counts=dict(res.counts)))
        return out


def resolve_entities(cfg: PiiConfig) -> PiiConfig:
    """``cfg`` with the entities this run can detect: naming an installed spaCy NER package in
    ``pii.ner_model`` turns PERSON and LOCATION on as well; without one they are dropped and the run
    says so once, when the pipeline is built (never per worker or document)."""
    entities = list(cfg.entities)
    if ner_model_available(cfg.ner_model):
        entities += [e for e in NER_ENTITIES if e not in entities]
    else:
        entities = [e for e in entities if e not in NER_ENTITIES]
        if cfg.ner_model:
            log.warning("pii: PERSON and LOCATION detection is off: pii.ner_model=%r is not an installed "
                        "spaCy model (it is never downloaded)", cfg.ner_model)
        else:
            # a warning, not info: it must be seen once per run whatever the log level
            log.warning("pii: PERSON and LOCATION detection is off (set pii.ner_model to an installed spaCy "
                        "NER model to turn it on)")
    return cfg.model_copy(update={"entities": entities})


class ScrubPII(ApplyStage):
    """Stage ``pii`` from its section (``cfg.pii``): documents -> ``(kept, [])``, text scrubbed."""

    def __init__(self, cfg: PiiConfig) -> None:
        self.cfg = resolve_entities(cfg)
        super().__init__(PiiRedactor(self.cfg))
