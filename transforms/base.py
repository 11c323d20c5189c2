"""The stage framework: pure per-document logic plus a thin composite PTransform around it.

A stage's logic is a small class with no Beam in it (:class:`DocumentStage`): ``setup`` builds heavy
objects once per worker, ``process`` turns one document into either a (possibly annotated) document
or a :class:`RejectReason` (or a :class:`RejectedDocument` when the rejected record should carry the stage's
annotation, e.g. the score that got it rejected). :class:`ApplyStage` wraps any such logic as a composite transform that
returns ``(kept, rejected)`` through tagged outputs and counts everything with Beam metrics under
``corpusforge.<stage>``. Global stages (deduplication, duplicate ids) build their own composites but
use :class:`StageCounters` so that their numbers land in stats.json the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from corpusforge.schemas.records import Document, RejectedDocument, RejectReason

NAMESPACE_PREFIX = "corpusforge."
KEPT_TAG = "kept"
REJECTED_TAG = "rejected"

# Counter names shared by every stage; a rejection reason is counted under "rejected:<reason>".
IN, KEPT, CHARS_IN, CHARS_KEPT = "in", "kept", "chars_in", "chars_kept"
REJECTED_PREFIX = "rejected:"
HIST_PREFIX = "hist:"


class StageCounters:
    """Lazily created Beam counters for one stage (creating them per element would be wasteful)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.namespace = NAMESPACE_PREFIX + stage
        self._counters: dict[str, Any] = {}

    def inc(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(self.namespace, name)
        counter.inc(n)

    def observe(self, name: str, value: float, edges: Sequence[float]) -> None:
        """Count ``value`` into a histogram with ascending bucket ``edges``.

        Beam has no histogram metric, so each bucket is a counter ``hist:<name>:<lower bound>``
        (``-inf`` for values below the first edge); stats.json turns them back into histograms.
        """
        i = bisect.bisect_right(edges, value)
        lower = "-inf" if i == 0 else repr(float(edges[i - 1]))
        self.inc(f"{HIST_PREFIX}{name}:{lower}")

    def saw(self, doc: Document) -> None:
        self.inc(IN)
        self.inc(CHARS_IN, len(doc.text or ""))

    def kept(self, doc: Document) -> None:
        self.inc(KEPT)
        self.inc(CHARS_KEPT, len(doc.text or ""))

    def rejected(self, rejection: RejectReason) -> None:
        self.inc(REJECTED_PREFIX + rejection.reason)


class WorkerState:
    """One mechanism for per-worker state: what ``setup`` builds is never pickled with the graph.

    Heavy objects (models, indexes, compiled rules, counters) are built once per worker in
    :meth:`setup`; a subclass names the attributes holding them in ``per_worker`` and gives each a
    class-level default (usually None), so a pickled copy drops them and reads the default until set
    up again. :meth:`ready` runs ``setup`` once per copy: DoFns call it in their own ``setup``, and
    code using the logic outside a pipeline (tests, tools, benchmarks) calls it before use, instead
    of hand-written ``if x is None: setup()`` guards.
    """

    per_worker: tuple[str, ...] = ()
    _ready: bool = False

    def setup(self) -> None:
        """Build heavy objects (models, indexes). Called once per worker before any document."""

    def ready(self) -> WorkerState:
        """Set up this copy if it is not yet (idempotent); returns ``self``."""
        if not self._ready:
            self.setup()
            self._ready = True
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in (*self.per_worker, "_ready"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class DocumentStage(WorkerState):
    """Pure per-document logic. Subclasses set ``name`` and implement ``process``.

    ``process_batch`` exists for stages that are cheaper batched (tokenization, PII); the default
    maps ``process`` over the batch. A stage instance is pickled into the graph, so keep heavy state
    out of ``__init__`` and build it in ``setup``.
    """

    name: str = "stage"
    batch_size: int = 0  # > 0: ApplyStage hands the logic batches of up to this many documents
    # The stage's counters (built by ready(), per worker): the logic adds its extra counters and
    # histograms (``observe``) here, and ApplyStage counts in/kept/rejected through the same object.
    counters: StageCounters | None = None

    def ready(self) -> DocumentStage:
        super().ready()
        if self.counters is None:
            self.counters = StageCounters(self.name)
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("counters", None)
        return state

    def process(self, doc: Document) -> Document | RejectReason | RejectedDocument:
        """The kept (possibly annotated) document, or why it is rejected. Return a
        :class:`RejectedDocument` instead of a bare :class:`RejectReason` to keep the annotations the stage
        computed (a detected language, quality signals) on the rejected record."""
        raise NotImplementedError

    def process_batch(self, docs: Sequence[Document]) -> list[Document | RejectReason | RejectedDocument]:
        return [self.process(doc) for doc in docs]

    def reject(self, detail: str, info: str | None = None, duplicate_of: str | None = None) -> RejectReason:
        """A rejection named ``<stage>:<detail>`` (lower case, as the data contract says)."""
        return RejectReason(
            reason=f"{self.name}:{detail}".lower(), stage=self.name, detail=info, duplicate_of=duplicate_of
        )


class _ApplyStageFn(beam.DoFn):
    def __init__(self, logic: DocumentStage, batched: bool) -> None:
        self.logic = logic
        self.batched = batched

    def setup(self) -> None:
        self.counters = self.logic.ready().counters

    def _route(self, doc: Document, outcome: Document | RejectReason | RejectedDocument) -> Iterable[Any]:
        if isinstance(outcome, RejectedDocument):
            # The stage annotated the document before rejecting it (e.g. toxicity keeps the score
            # that got the document rejected), so rejected/ shows the annotation.
            self.counters.rejected(outcome.rejection)
            yield pvalue.TaggedOutput(REJECTED_TAG, outcome)
        elif isinstance(outcome, RejectReason):
            self.counters.rejected(outcome)
            yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, outcome))
        else:
            self.counters.kept(outcome)
            yield outcome

    def process(self, element: Any) -> Iterable[Any]:
        docs = element if self.batched else (element,)
        for doc in docs:
            self.counters.saw(doc)
        outcomes = self.logic.process_batch(docs) if self.batched else (self.logic.process(element),)
        for doc, outcome in zip(docs, outcomes, strict=True):
            yield from self._route(doc, outcome)


class ApplyStage(beam.PTransform):
    """Run a :class:`DocumentStage` over documents; returns ``(kept, rejected)`` PCollections."""

    def __init__(self, logic: DocumentStage) -> None:
        super().__init__(label=logic.name)
        self.logic = logic

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        batched = self.logic.batch_size > 0
        if batched:
            docs = docs | "Batch" >> beam.BatchElements(
                min_batch_size=max(1, self.logic.batch_size // 4), max_batch_size=self.logic.batch_size
            )
        results = docs | "Apply" >> beam.ParDo(_ApplyStageFn(self.logic, batched)).with_outputs(
            REJECTED_TAG, main=KEPT_TAG
        )
        return results[KEPT_TAG], results[REJECTED_TAG]
