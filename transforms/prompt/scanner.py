"""The gated prompt scan: test each pattern's literal gate, run the alternation of the rest only.

Same counts as one scan with the alternation of every pattern (``PromptScanner`` over
:func:`~corpusforge.transforms.prompt.patterns.compile_patterns`): a pattern whose gate fails cannot
match anywhere in the text, and a branch that matches nowhere never changes which branch wins at a
position. The alternation of each set of active patterns is built the same way, in the same order,
and compiled once per worker (most documents activate none or one or two small sets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from corpusforge.schemas.records import PromptSignals
from corpusforge.transforms.prompt.gates import Gate, derive_gate, encoded, fold_encoded
from corpusforge.transforms.prompt.patterns import SIGNALS, compile_patterns

_ZERO = dict.fromkeys(SIGNALS, 0)
_CACHE_LIMIT = 4096  # distinct active sets compiled per worker; beyond it, compiled per document


class GatedPromptScanner:
    """Pure logic, no Beam: ``scan(text)`` gives the same :class:`PromptSignals` as the full scan."""

    def __init__(self, patterns: Iterable[tuple[str, str]]) -> None:
        self.patterns = list(patterns)
        self.gates: list[Gate] = [derive_gate(p) for _, p in self.patterns]
        self._always = tuple(i for i, g in enumerate(self.gates) if not g.clauses)
        self._gated = [(i, g, g.needs_fold) for i, g in enumerate(self.gates) if g.clauses]
        self._regexes: dict[tuple[int, ...], re.Pattern[str]] = {}

    def active(self, text: str) -> tuple[int, ...]:
        """Indices (in pattern order) of the patterns that may match ``text``."""
        raw = encoded(text)
        folded: bytes | None = None
        on = list(self._always)
        for i, gate, needs_fold in self._gated:
            if needs_fold and folded is None:
                folded = fold_encoded(text, raw)
            if gate.passes(raw, folded):
                on.append(i)
        on.sort()
        return tuple(on)

    def _regex(self, active: tuple[int, ...]) -> re.Pattern[str]:
        regex = self._regexes.get(active)
        if regex is None:
            regex = compile_patterns(self.patterns[i] for i in active)
            if len(self._regexes) < _CACHE_LIMIT:
                self._regexes[active] = regex
        return regex

    def scan(self, text: str) -> PromptSignals:
        active = self.active(text)
        counts = dict(_ZERO)
        if active:
            for m in self._regex(active).finditer(text):
                counts[m.lastgroup] += 1  # type: ignore[index]
        return PromptSignals(**counts)
