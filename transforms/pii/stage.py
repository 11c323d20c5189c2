"""Stage ``pii``: replace personal data in kept text with typed placeholders; never rejects.

Personal data in training text leaks into model outputs. This stage wraps
:class:`~corpusforge.transforms.pii.engine.PiiScrubber` (presidio with our recognizers, gated and
windowed so that documents without candidates never reach the analyzer) as a batched
:class:`~corpusforge.transforms.base.DocumentStage`. Each document gets ``pii_counts`` (replacements
per entity type, empty when none) and the stage counts ``replaced:<TYPE>`` totals, ``docs_with_pii``,
and how much reached the analyzer past the gates (``analyzed_docs``, ``analyzed_chars``, to be read
against ``in`` and ``chars_in``); stats.json reports them under ``stages.pii.counters``.

Personal data is not only in ``text``: a page's ``url`` can carry an IP host or ``user:pw@``, and
the input's extra fields (``metadata``) titles, authors' e-mails or tokens. Both are scrubbed with
the same recognizers (the URL under the same ``skip_urls`` rule), counted with the text's spans,
and ``scrubbed_urls`` / ``scrubbed_metadata`` count the documents where they changed.
:class:`ScrubRejected` applies the same scrubbing to rejected records for
``output.rejected_text: scrubbed``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from corpusforge.schemas.config import NER_ENTITIES, PiiConfig
from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import ApplyStage, DocumentStage, StageCounters

if TYPE_CHECKING:
    from corpusforge.transforms.pii.engine import PiiScrubber

REPLACED_PREFIX = "replaced:"
log = logging.getLogger(__name__)


def scrubber_for(cfg: PiiConfig) -> PiiScrubber:
    """A :class:`~corpusforge.transforms.pii.engine.PiiScrubber`, its module imported only now:
    presidio (and spaCy under it) costs about a second to import, which the driver would otherwise
    pay before the first stage runs; workers import it when they unpickle the pii stage."""
    from corpusforge.transforms.pii.engine import PiiScrubber

    return PiiScrubber(cfg)


def ner_model_available(model: str | None) -> bool:
    """Whether ``model`` names an installed spaCy package (see the engine's); False without
    importing anything when no model is named, the default."""
    if not model:
        return False
    from corpusforge.transforms.pii.engine import ner_model_available as available

    return available(model)


class PiiRedactor(DocumentStage):
    """Batched PII scrubbing; the presidio engine is built in ``setup`` (once per worker), and the
    scrubber (with the engine's module) on first use, so that building the graph imports no presidio."""

    name = "pii"

    def __init__(self, cfg: PiiConfig | None = None) -> None:
        self.cfg = cfg or PiiConfig()
        self.batch_size = self.cfg.batch_size
        self._scrubber: PiiScrubber | None = None

    @property
    def scrubber(self) -> PiiScrubber:
        if self._scrubber is None:
            self._scrubber = scrubber_for(self.cfg)
        return self._scrubber

    def setup(self) -> None:
        self.scrubber.ready()

    def process(self, doc: Document) -> Document | RejectReason:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | RejectReason]:
        return list(scrub_documents(self.scrubber, docs, self.counters))


def _strings(value: Any, out: list[str]) -> None:
    """Every string inside a JSON value, depth first (keys excluded: they are field names)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _replace_strings(value: Any, new: Iterator[str]) -> Any:
    """``value`` with its strings taken in :func:`_strings` order from ``new``."""
    if isinstance(value, str):
        return next(new)
    if isinstance(value, dict):
        return {k: _replace_strings(v, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, new) for v in value]
    return value


def scrub_documents(
    scrubber: PiiScrubber, docs: Sequence[Document], counters: StageCounters | None = None
) -> Iterator[Document]:
    """``docs`` with ``text``, ``url`` and the string values of ``metadata`` scrubbed, in one
    analyzer batch; ``pii_counts`` sums the three. Metadata that holds nothing to replace is kept
    byte for byte (it is re-serialised only when a value changed)."""
    fields: list[str] = []
    owners: list[tuple[int, str]] = []  # (doc index, "text" | "url" | "metadata")
    parsed: dict[int, Any] = {}
    for i, doc in enumerate(docs):
        fields.append(doc.text or "")
        owners.append((i, "text"))
        if doc.url:
            fields.append(doc.url)
            owners.append((i, "url"))
        if doc.metadata and scrubber.may_hold_pii(doc.metadata):
            try:
                value = json.loads(doc.metadata)
            except ValueError:
                value = doc.metadata  # not JSON: scrub it as one string
            parsed[i] = value
            strings: list[str] = []
            _strings(value, strings)
            fields.extend(strings)
            owners.extend((i, "metadata") for _ in strings)
    results = scrubber.scrub_batch(fields)
    per_doc: list[dict[str, list]] = [{"text": [], "url": [], "metadata": []} for _ in docs]
    for (i, kind), res in zip(owners, results, strict=True):
        per_doc[i][kind].append(res)
    for i, doc in enumerate(docs):
        got = per_doc[i]
        counts: dict[str, int] = {}
        for res in got["text"] + got["url"] + got["metadata"]:
            for entity, n in res.counts.items():
                counts[entity] = counts.get(entity, 0) + n
        text_res = got["text"][0]
        url = got["url"][0].text if got["url"] else doc.url
        metadata = doc.metadata
        if any(r.counts for r in got["metadata"]):
            value = _replace_strings(parsed[i], iter([r.text for r in got["metadata"]]))
            metadata = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if counters is not None:
            seen = sum(r.analyzed_chars for r in got["text"] + got["url"] + got["metadata"])
            if seen:
                counters.inc("analyzed_docs")
                counters.inc("analyzed_chars", seen)
            if counts:
                counters.inc("docs_with_pii")
                for entity, n in counts.items():
                    counters.inc(REPLACED_PREFIX + entity, n)
            if url != doc.url:
                counters.inc("scrubbed_urls")
            if metadata != doc.metadata:
                counters.inc("scrubbed_metadata")
        text = text_res.text if doc.text is not None else None
        yield replace(doc, text=text, url=url, metadata=metadata, pii_counts=counts)


class _ScrubRejectedFn(beam.DoFn):
    """Scrubs batches of rejected records (see :class:`ScrubRejected`)."""

    def __init__(self, cfg: PiiConfig) -> None:
        self.cfg = cfg  # the scrubber is made in setup: building the graph imports no presidio

    def setup(self) -> None:
        self.scrubber = scrubber_for(self.cfg)
        self.scrubber.ready()
        self._counters = StageCounters("rejected_pii")

    def process(self, batch: list[RejectedDocument]) -> Iterator[RejectedDocument]:
        docs = [r.doc for r in batch]
        for rec, doc in zip(batch, scrub_documents(self.scrubber, docs, self._counters), strict=True):
            # the rejecting stage never saw pii_counts: keep the column as it was
            yield RejectedDocument(replace(doc, pii_counts=rec.doc.pii_counts), rec.rejection)


class ScrubRejected(beam.PTransform):
    """Rejected records with text, url and metadata scrubbed (``output.rejected_text: scrubbed``).

    Most of a crawl is rejected before the pii stage (language, quality, decontamination, dedup)
    and would be written to ``rejected/`` with its raw text; this runs the same recognizers over
    it first. Batched like the stage; the output does not depend on how records are batched.
    """

    def __init__(self, cfg: PiiConfig) -> None:
        super().__init__()
        self.cfg = resolve_entities(cfg, quiet=True)
        self.batch_size = cfg.batch_size

    def expand(self, rejected: beam.PCollection) -> beam.PCollection:
        return (
            rejected
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            | "Scrub" >> beam.ParDo(_ScrubRejectedFn(self.cfg))
        )


def resolve_entities(cfg: PiiConfig, quiet: bool = False) -> PiiConfig:
    """``cfg`` with the entities this run can detect: naming an installed spaCy NER package in
    ``pii.ner_model`` turns PERSON and LOCATION on as well; without one they are dropped and the run
    says so once, when the pipeline is built (never per worker or document; ``quiet`` for a second
    scrubber of the same run)."""
    entities = list(cfg.entities)
    if ner_model_available(cfg.ner_model):
        entities += [e for e in NER_ENTITIES if e not in entities]
    else:
        entities = [e for e in entities if e not in NER_ENTITIES]
        if quiet:
            pass
        elif cfg.ner_model:
            log.warning(
                "pii: PERSON and LOCATION detection is off: pii.ner_model=%r is not an installed "
                "spaCy model (it is never downloaded)",
                cfg.ner_model,
            )
        else:
            # a warning, not info: it must be seen once per run whatever the log level
            log.warning(
                "pii: PERSON and LOCATION detection is off (set pii.ner_model to an installed spaCy "
                "NER model to turn it on)"
            )
    return cfg.model_copy(update={"entities": entities})


class ScrubPII(ApplyStage):
    """Stage ``pii`` from its section (``cfg.pii``): documents -> ``(kept, [])``, text scrubbed."""

    def __init__(self, cfg: PiiConfig) -> None:
        self.cfg = resolve_entities(cfg)
        super().__init__(PiiRedactor(self.cfg))
