"""A bounded least-recently-used cache of scored lines, for the bias stage.

Why: web pages repeat lines (navigation, cookie notices, footers, quoted posts), and the bias
stage's costliest step is scoring the lines that hold a mention with the toxicity classifier. A
line's mentions and score depend on that line's text alone (each unit is scored from its own terms,
see :meth:`corpusforge.transforms.bias.stage.BiasTagger._toxic_flags`), so a line seen before can
reuse them: the signals are the same with the cache as without it, on any number of workers (each
worker has its own cache; only its hit rate differs). Bounded in entries and in the total length
of its keys (the lines themselves, compared exactly, so no hash collision can change a signal; a
web line can be 100 KB long), so a worker's memory stays bounded on any corpus.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class LineCache(Generic[V]):
    """``capacity`` entries and ``max_chars`` characters (bytes) of keys at most; when either is
    exceeded the least recently used entries go first, and a key longer than ``max_chars`` is not
    kept. Keys are ``str`` or ``bytes``."""

    def __init__(self, capacity: int, max_chars: int = 1 << 24) -> None:
        if capacity <= 0 or max_chars <= 0:
            raise ValueError(
                f"LineCache capacity and max_chars must be positive, got {capacity}, {max_chars}"
            )
        self.capacity = capacity
        self.max_chars = max_chars
        self._entries: OrderedDict[Any, V] = OrderedDict()
        self.chars = 0  # total length of the keys held
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
        size = len(key)
        if size > self.max_chars:
            return
        if key in self._entries:
            self.chars -= size
        self._entries[key] = value
        self._entries.move_to_end(key)
        self.chars += size
        while len(self._entries) > self.capacity or self.chars > self.max_chars:
            old, _ = self._entries.popitem(last=False)
            self.chars -= len(old)

    def clear(self) -> None:
        self._entries.clear()
        self.chars = self.hits = self.misses = 0
