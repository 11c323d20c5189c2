"""Text preparation for the toxicity classifier: drop platform artefacts, undo masked profanity.

Both steps make the score depend on what a text says rather than on how a platform or a writer
dressed it, which matters when the text comes from another source than the model's training data:

* **Artefacts**: user mentions (``@name``, and the ``@USER`` placeholder of anonymised corpora),
  URLs (and the ``URL`` placeholder), retweet markers and HTML entities carry no offence but their
  tokens enter the L2 norm of the TF-IDF vector and some carry learned weights (``url``, ``user``,
  ``rt``), so the same insult would score differently with three mentions in front of it.
* **Masking**: ``f*ck``, ``sh!t``, ``b1tch``, ``a$$hole`` hide words the model knows well; a token
  with mask or leet characters is replaced by the strongly offensive vocabulary word it spells (the
  one with the largest weight when several fit: ``sh*t`` is ``shit`` rather than ``shut``). The target words come from the model itself (terms whose mean weight is at
  least ``MASK_TARGET_MIN_WEIGHT``), not from a hand-made list, so model and unmasking stay in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

try:  # the optional compiled scans (setup.py); the regex paths below find the same places
    from corpusforge.transforms.toxicity import _terms
except ImportError:  # pragma: no cover - depends on the build
    _terms = None

# The look-ahead lets the regex engine skip most positions with one character test (3x faster).
_ARTEFACTS = re.compile(r"(?=[@hw&RU])(?:@\w+|https?://\S+|www\.\S+|&#?\w+;|\bRT\b|\bURL\b)")
# Where a masked word may be: a run of mask or leet characters followed by a letter (``f*ck``,
# ``b1tch``) or made of two or more masks (``a$$``); the letter before is checked in Python. The
# pattern starts with a character class, which lets the regex engine skip ahead fast (2.5x faster
# than starting with the letter before). Rare in ordinary text, so the per-token work is rare too.
_HINT = re.compile(r"[*#$@!%0134]+(?:[a-z]|(?<=[*#$][*#$]))")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789*#$@!%")
_MASKS = set("*#$@!%0123456789")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i"}
MASK_TARGET_MIN_WEIGHT = 2.5


# Every match of ``_ARTEFACTS`` starts with one of these (its alternatives' literal prefixes).
_ARTEFACT_STARTS = ("@", "http", "www.", "&", "RT", "URL")


def strip_artefacts(text: str) -> str:
    """``text`` without mentions, URLs, retweet markers and HTML entities (each becomes a space).

    The same as ``_ARTEFACTS.sub(" ", text)`` (the reference, tested against it), the same object
    when nothing matches, but the regex is tried only where a match can start: the places
    :data:`_ARTEFACT_STARTS` are found by ``str.find`` (memchr-fast), left to right, each tried
    with ``match`` unless an earlier match covers it, which is exactly the leftmost, non-overlapping
    scan ``sub`` makes. A regex scan stops at every ``h`` and ``w`` of the text (a third of the
    toxicity stage's preparation on web text); this stops only at the candidates."""
    starts: list[int] = []
    for lit in _ARTEFACT_STARTS:
        i = text.find(lit)
        while i >= 0:
            starts.append(i)
            i = text.find(lit, i + 1)
    if not starts:
        return text
    starts.sort()
    pieces: list[str] = []
    last = 0
    match = _ARTEFACTS.match
    for i in starts:
        if i < last:
            continue  # inside the artefact matched before
        m = match(text, i)
        if m is not None:
            pieces.append(text[last:i])
            last = m.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return " ".join(pieces)


class Unmasker:
    """Replace masked spellings of known offensive words (``f*ck`` -> ``fuck``) in lower-case text."""

    def __init__(self, targets: Mapping[str, float]) -> None:
        """``targets``: word -> model weight. Candidates are tried by weight, then alphabetically."""
        self.by_length: dict[int, list[str]] = {}
        for word in sorted(targets, key=lambda w: (-targets[w], w)):
            if word.isalpha() and word.isascii():
                self.by_length.setdefault(len(word), []).append(word)

    def _fits(self, token: str, word: str) -> bool:
        for c, w in zip(token, word, strict=True):
            if c == w:
                continue
            if c in "*#%" or _LEET.get(c) == w:
                continue
            return False
        return True

    def unmask_token(self, token: str) -> str:
        if not 3 <= len(token) <= 16 or token.isalpha() or not any(c in _MASKS for c in token):
            return token
        if sum(c.isalpha() for c in token) * 2 < len(token):
            return token  # mostly symbols or digits: a code, not a word
        for word in self.by_length.get(len(token), ()):
            if self._fits(token, word):
                return word
        return token

    @staticmethod
    def _hints(lowered: str) -> Iterator[tuple[int, int]]:
        """(start, end) of every ``_HINT`` match with a letter a-z before it, in order: from the
        candidates of the compiled ``hint_starts`` where ``_terms`` was built (``_HINT`` tried only
        there; see ``_terms.c`` for why that finds the same matches), else from ``finditer``."""
        if _terms is not None and hasattr(_terms, "hint_starts"):
            match = _HINT.match
            for start in _terms.hint_starts(lowered):
                m = match(lowered, start)
                if m is not None:
                    yield start, m.end()
            return
        for hint in _HINT.finditer(lowered):
            start = hint.start()
            if start and "a" <= lowered[start - 1] <= "z":
                yield start, hint.end()

    def __call__(self, lowered: str) -> str:
        out: list[str] = []
        last = done = 0
        n = len(lowered)
        for start, end in self._hints(lowered):
            if start < done:
                continue  # inside a token already looked at
            while start > 0 and lowered[start - 1] in _TOKEN_CHARS:
                start -= 1
            while end < n and lowered[end] in _TOKEN_CHARS:
                end += 1
            done = end
            token = lowered[start:end].rstrip("!")  # "sh*t!": the exclamation mark is punctuation
            word = self.unmask_token(token)
            if word != token:
                out += (lowered[last:start], word)
                last = start + len(token)
        if not out:
            return lowered
        out.append(lowered[last:])
        return "".join(out)
