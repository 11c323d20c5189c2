"""The GPT-2 byte-level pre-tokenizer rules the word cache reproduces, spelled for Python's ``re``.

Why a module of its own: these are facts about the library's ``ByteLevel`` pre-tokenizer and
``AddedVocabulary`` (the split pattern, its four character classes, the byte-level alphabet, which
tokenizer.json shapes we reproduce at all, how added tokens are cut out), not about caching. Both
encoders (:mod:`.word_cache`, pure Python, and :mod:`.compiled_cache`, the C module) build on them,
and a change in a tokenizers release is looked for here first.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

# White space as Unicode defines it (``re``'s own ``\s`` adds U+001C..U+001F).
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.cache
def _numbers_beyond_decimal() -> str:
    """A ``re`` character-class body for the numbers that are not decimal digits (Nl, No: "²", "½",
    "Ⅱ"): ``re`` counts them as word characters but not as ``\\d``, where Unicode says \\p{N}."""
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)) in ("Nl", "No"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )


def _class_fragments(exact: bool) -> tuple[str, str, str, str]:
    """The four character classes of the GPT-2 pattern as ``re`` fragments: letter, number, other,
    white space (see :func:`gpt2_patterns` for the quick and the exact spelling)."""
    extra, ws = (_numbers_beyond_decimal() if exact else ""), _WHITE_SPACE
    letter = rf"[^\W\d_{extra}]" if exact else r"[^\W\d_]"
    number = rf"[\d{extra}]" if exact else r"\d"
    return letter, number, rf"(?:[^{ws}\w]|_)", f"[{ws}]"


@functools.cache
def gpt2_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    r"""GPT-2's byte-level pre-tokenization pattern, the one the ``ByteLevel`` pre-tokenizer runs::

        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

    spelled out twice for the standard library's ``re`` (faster here than the ``regex`` module).
    The quick form takes letters as word characters that are not ``\d`` or "_" and numbers as
    ``\d``; it is wrong only for the Nl/No numbers ("²", "½", "Ⅱ"), which ``re`` counts as word
    characters. The exact form lists those numbers (a third slower, so only for documents that
    contain one). White space is Unicode's in both. The letters alternative comes first (a few per
    cent faster): it cannot start where a contraction does (at an apostrophe), so the order of the
    alternatives that can match at one position is unchanged. Built once per process.
    """
    patterns = []
    for exact in (False, True):
        letter, number, other, ws = _class_fragments(exact)
        patterns.append(
            re.compile(
                rf" ?{letter}+|'(?:s|t|re|ve|m|ll|d)| ?{number}+| ?{other}+|{ws}+(?![^{_WHITE_SPACE}])|{ws}+"
            )
        )
    return patterns[0], patterns[1]


@functools.cache
def gpt2_char_classes() -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    """For the quick and the exact pattern, one regex per character class it is built from.

    A character outside ASCII matches none of the pattern's literals (space, apostrophe, the
    contraction letters), so which of these classes it belongs to decides everything the pattern
    does with it: two such characters in the same classes are split the same way in any text.
    """
    return tuple(tuple(re.compile(f) for f in _class_fragments(exact)) for exact in (False, True))  # type: ignore[return-value]


def byte_level_alphabet() -> list[str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, soft hyphen...) are
    moved, in order, to code points 256 and up, so no byte becomes white space or a control.
    """
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in kept}
    moved = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + moved)
            moved += 1
    return [table[b] for b in range(256)]


def _eligible(spec: dict[str, Any]) -> bool:
    """Whether the tokenizer.json describes a pipeline this module reproduces exactly."""
    normalizer = spec.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "NFC":
        return False
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space", True):
        return False
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
        return False
    return not any(
        t.get("single_word") or t.get("lstrip") or t.get("rstrip") for t in spec.get("added_tokens", [])
    )


_TRIE_MAX_DEPTH = 256


def _trie_pattern(contents: Sequence[str]) -> str:
    """A regex matching the longest of ``contents`` that starts at a position, spelled as a trie.

    Same matches as the alternation of the contents longest first, but ``re`` then tests one
    character per branch instead of every content at every position (NeoX's 23 runs of spaces
    share their prefix): three times faster. A node where a content ends makes the rest optional;
    greedy, so a longer content wins, and the branches after a node start with distinct characters.
    """
    trie: dict[str, Any] = {}
    for content in contents:
        node = trie
        for ch in content:
            node = node.setdefault(ch, {})
        node[""] = {}  # a content ends here

    def spell(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + spell(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return spell(trie)


class _LiteralSplitter:
    """Cuts text at the leftmost-longest occurrences of a set of literal strings (added tokens).

    ``split`` returns text at even positions and matches at odd ones. ``may_occur`` is a cheap
    pre-check (a few substring searches) so that most documents never run the alternation.
    """

    def __init__(self, contents: Sequence[str]) -> None:
        ordered = sorted(set(contents), key=lambda s: (-len(s), s))
        if max(map(len, ordered)) <= _TRIE_MAX_DEPTH:
            self._pattern = re.compile("(" + _trie_pattern(ordered) + ")")
        else:  # the trie is spelled recursively, one level per character
            self._pattern = re.compile("(" + "|".join(re.escape(s) for s in ordered) + ")")
        # a content containing another one occurs only where that one does
        self._cover = [s for s in ordered if not any(o != s and o in s for o in ordered)]
        self.split = self._pattern.split

    def may_occur(self, text: str) -> bool:
        return any(s in text for s in self._cover)


def _literal_alternation(contents: Sequence[str]) -> _LiteralSplitter | None:
    return _LiteralSplitter(contents) if contents else None
