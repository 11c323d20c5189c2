"""Length observation: document length histograms for the run report, cheap and pass-through.

The report shows how long documents are before any stage ran (observed in ``validate`` on every
parsed document) and after the last one (observed by :class:`ObserveOutput` just before the kept
documents are written, as the pseudo-stage ``output``). Both use the same bucket edges so the two
distributions can be drawn on one axis.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from corpusforge.schemas.records import Document
from corpusforge.transforms.base import StageCounters

# Histogram of document length in characters. Roughly logarithmic, so that tweets and books both
# get a readable bucket; a presentation choice, not a threshold.
LENGTH_HISTOGRAM = "chars"
LENGTH_EDGES: tuple[float, ...] = (
    0,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
)
OUTPUT_STAGE = "output"


def observe_length(counters: StageCounters, doc: Document) -> None:
    """Count ``doc``'s length (characters) into the shared length histogram."""
    counters.observe(LENGTH_HISTOGRAM, len(doc.text or ""), LENGTH_EDGES)


class _ObserveFn(beam.DoFn):
    def __init__(self, stage: str) -> None:
        self.stage = stage

    def setup(self) -> None:
        self.counters = StageCounters(self.stage)

    def process(self, doc: Document) -> Iterator[Document]:
        self.counters.saw(doc)
        self.counters.kept(doc)
        observe_length(self.counters, doc)
        yield doc


class ObserveOutput(beam.PTransform):
    """Pass documents through unchanged, counting them and their lengths under ``stage``."""

    def __init__(self, stage: str = OUTPUT_STAGE) -> None:
        super().__init__()
        self.stage = stage

    def expand(self, docs: beam.PCollection) -> beam.PCollection:
        return docs | "Observe" >> beam.ParDo(_ObserveFn(self.stage))
