"""A bounded least-recently-used cache of scored lines, for the bias stage.

Why: web pages repeat lines (navigation, cookie notices, footers, quoted posts), and the bias
stage's costliest step is scoring the lines that hold a mention with the toxicity classifier. A
line's mentions and score depend on that line's text alone (each unit is scored from its own terms,
see :meth:`corpusforge.transforms.bias.stage.BiasTagger._toxic_flags`), so a line seen before can
reuse them: the signals are the same with the cache as without it, on any number of workers (each
worker has its own cache; only its hit rate differs). Bounded in entries, so a worker's memory
stays bounded on any corpus.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class LineCache(Generic[V]):
    """``capacity`` entries at most; when full, the least recently used entry goes first."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"LineCache capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[Any, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any) -> V | None:
        """The value stored for ``key`` (now the most recently used), or None."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Any, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0
