"""Prompt-scaffolding patterns: the shipped file, extra patterns from the config, one compiled regex.

Every pattern belongs to one signal (a field of :class:`~corpusforge.schemas.records.PromptSignals`).
All patterns are joined into a single alternation with one named group per signal, so a document is
scanned once whatever the number of patterns, and each match names its signal (``m.lastgroup``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from importlib import resources
from pathlib import Path

from corpusforge.schemas.records import PromptSignals

SIGNALS: tuple[str, ...] = tuple(f.name for f in fields(PromptSignals))
ASSET_NAME = "prompt_patterns.txt"


class PatternError(ValueError):
    """A malformed pattern; the message names where it came from (file and line, or config key)."""


def default_patterns_path() -> Path:
    return Path(str(resources.files("corpusforge").joinpath("assets", ASSET_NAME)))


def _checked(signal: str, pattern: str, where: str) -> tuple[str, str]:
    if signal not in SIGNALS:
        raise PatternError(f"{where}: unknown signal {signal!r} (one of {', '.join(SIGNALS)})")
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise PatternError(f"{where}: bad regular expression {pattern!r} ({exc})") from None
    if compiled.groups:  # named groups would collide with the signal groups; plain ones are wasteful
        raise PatternError(f"{where}: use (?:...) instead of capturing groups in {pattern!r}")
    if compiled.match(""):
        raise PatternError(f"{where}: pattern {pattern!r} matches the empty string")
    return signal, pattern


def parse_patterns(text: str, name: str = "<patterns>") -> list[tuple[str, str]]:
    """(signal, pattern) pairs of a patterns file; errors name ``name:line``."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        signal, sep, pattern = line.partition(":")
        if not sep or not pattern.strip():
            raise PatternError(f"{name}:{lineno}: expected 'signal: regular expression', got {line!r}")
        out.append(_checked(signal.strip(), pattern.strip(), f"{name}:{lineno}"))
    return out


def load_patterns(
    path: str | Path | None = None,
    extra: Mapping[str, Iterable[str]] | None = None,
    extra_key: str = "prompt.extra_patterns",
) -> list[tuple[str, str]]:
    """The shipped (or given) patterns file plus ``extra`` patterns per signal from the config."""
    path = Path(path) if path is not None else default_patterns_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatternError(f"{path}: cannot read prompt patterns ({exc})") from None
    out = parse_patterns(text, str(path))
    for signal, patterns in (extra or {}).items():
        for i, p in enumerate(patterns):
            out.append(_checked(signal, p, f"{extra_key}.{signal}[{i}]"))
    return out


def compile_patterns(patterns: Iterable[tuple[str, str]]) -> re.Pattern[str]:
    """One regex: ``(?P<signal>p1|p2|...)|...`` for every signal with at least one pattern."""
    by_signal: dict[str, list[str]] = {}
    for signal, p in patterns:
        by_signal.setdefault(signal, []).append(p)
    parts = [f"(?P<{s}>{'|'.join(f'(?:{p})' for p in by_signal[s])})" for s in SIGNALS if s in by_signal]
    return re.compile("|".join(parts), re.MULTILINE)
