"""Prompt control: tag chat transcripts, prompt templates, assistant boilerplate and jailbreaks.

Web crawls now hold chat logs, model-generated pages and prompt scaffolding that teach a base model
the wrong habits (answering as "an AI language model") or leak templates (``<|im_start|>``). Every
document gets ``prompt_signals`` (:class:`~corpusforge.schemas.records.PromptSignals`): matches per
signal of the patterns in :mod:`corpusforge.transforms.prompt.patterns`, found in one scan of the
patterns whose literal gate passes (:mod:`corpusforge.transforms.prompt.gates`).

A document is *tagged* for a signal when its count reaches that signal's threshold (counter
``tagged:<signal>``, counted even when only tagging). With ``filter`` on, a tagged document is
rejected as ``prompt:<signal>`` (the first signal in field order that reached its threshold), with
its signals kept on the rejected record. Runs before deduplication, so a filtered copy never
decides which member of a duplicate cluster survives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from corpusforge.schemas.config import ConfigError, PromptConfig
from corpusforge.schemas.records import Document, PromptSignals, RejectedDocument
from corpusforge.transforms.base import ApplyStage, DocumentStage
from corpusforge.transforms.prompt.patterns import SIGNALS, PatternError, load_patterns
from corpusforge.transforms.prompt.scanner import GatedPromptScanner


class PromptScanner:
    """Pure logic: count each signal's matches in a text with one alternation of every pattern.
    The reference the stage's gated scan (:class:`GatedPromptScanner`) must equal; no Beam here."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex

    def scan(self, text: str) -> PromptSignals:
        counts = dict.fromkeys(SIGNALS, 0)
        for m in self.regex.finditer(text):
            counts[m.lastgroup] += 1  # type: ignore[index]
        return PromptSignals(**counts)


def tagged_signals(signals: PromptSignals, thresholds: Mapping[str, int]) -> list[str]:
    """The signals at or above their threshold, in field order (a threshold of 0 switches one off)."""
    return [s for s in SIGNALS if thresholds[s] > 0 and getattr(signals, s) >= thresholds[s]]


class TagPrompt(DocumentStage):
    """Sets ``prompt_signals`` on every document; with ``filter`` rejects tagged ones."""

    name = "prompt"

    def __init__(
        self,
        thresholds: Mapping[str, int],
        filter: bool = False,
        patterns_file: str | None = None,
        extra_patterns: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.thresholds = dict(thresholds)
        self.filter = filter
        self.patterns_file = patterns_file
        self.extra_patterns = {k: list(v) for k, v in (extra_patterns or {}).items()}
        self._scanner: GatedPromptScanner | None = None

    def setup(self) -> None:
        # gated: only the patterns whose literal gate passes are scanned (same counts, ~10x less CPU)
        self._scanner = GatedPromptScanner(load_patterns(self.patterns_file, self.extra_patterns))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scanner"] = None  # compiled per worker
        return state

    def process(self, doc: Document) -> Document | RejectedDocument:
        if self._scanner is None:
            self.setup()
        assert self._scanner is not None
        signals = self._scanner.scan(doc.text or "")
        tagged = replace(doc, prompt_signals=signals)
        hits = tagged_signals(signals, self.thresholds)
        if self.counters is not None:
            for s in hits:
                self.counters.inc(f"tagged:{s}")
            if hits:
                self.counters.inc("tagged")
        if hits and self.filter:
            detail = ", ".join(f"{s}={getattr(signals, s)}" for s in hits)
            return RejectedDocument(tagged, self.reject(hits[0], detail))
        return tagged


class TagPromptSignals(ApplyStage):
    """Stage ``prompt`` from its section (``cfg.prompt``): documents -> ``(kept, rejected)``; rejects
    only with ``filter`` on. A bad pattern fails here, at start-up, naming where it came from."""

    def __init__(self, cfg: PromptConfig) -> None:
        try:
            load_patterns(cfg.patterns_file, cfg.extra_patterns)
        except PatternError as exc:
            raise ConfigError(
                f"prompt.patterns_file: {exc}"
                if cfg.patterns_file and str(cfg.patterns_file) in str(exc)
                else f"prompt: {exc}"
            ) from None
        super().__init__(
            TagPrompt(cfg.thresholds.model_dump(), cfg.filter, cfg.patterns_file, cfg.extra_patterns)
        )
        self.cfg = cfg
