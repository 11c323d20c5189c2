"""The stage base class: per-worker state is built once per copy and never pickled with the graph."""

from __future__ import annotations

import pickle

from corpusforge.schemas.records import Document
from corpusforge.transforms.base import DocumentStage, StageCounters


class _Counting(DocumentStage):
    name = "counting"
    per_worker = ("model",)
    model: list[str] | None = None
    setups = 0

    def setup(self) -> None:
        type(self).setups += 1
        self.model = ["heavy"] * 1000

    def process(self, doc: Document) -> Document:
        return doc


def test_ready_sets_up_once_and_a_pickled_copy_drops_the_worker_state():
    stage = _Counting()
    assert stage.ready() is stage and stage.ready() is stage
    assert _Counting.setups == 1 and stage.model is not None
    assert isinstance(stage.counters, StageCounters) and stage.counters.namespace == "corpusforge.counting"
    clone = pickle.loads(pickle.dumps(stage))
    assert clone.model is None and clone.counters is None  # nothing heavy travelled with the graph
    clone.ready()
    assert _Counting.setups == 2 and clone.model == stage.model
