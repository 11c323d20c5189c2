"""Text preparation for the toxicity classifier: drop platform artefacts, undo masked profanity.

Both steps make the score depend on what a text says rather than on how a platform or a writer
dressed it, which matters when the text comes from another source than the model's training data:

* **Artefacts**: user mentions (``@name``, and the ``@USER`` placeholder of anonymised corpora),
  URLs (and the ``URL`` placeholder), retweet markers and HTML entities carry no offence but their
  tokens enter the L2 norm of the TF-IDF vector and some carry learned weights (``url``, ``user``,
  ``rt``), so the same insult would score differently with three mentions in front of it.
* **Masking**: ``f*ck``, ``sh!t``, ``b1tch``, ``a$$hole`` hide words the model knows well; a token
  with mask or leet characters is replaced by the strongly offensive vocabulary word it spells, when
  exactly one shape fits. The target words come from the model itself (terms whose mean weight is at
  least ``MASK_TARGET_MIN_WEIGHT``), not from a hand-made list, so model and unmasking stay in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ARTEFACTS = re.compile(
    r"@\w+|https?://\S+|www\.\S+|&#?\w+;|\bRT\b|\bURL\b",
)
# A token that may be masked: starts with a letter, 3-16 characters of letters, digits and mask
# symbols, and holds at least one mask symbol or digit (checked below).
_CANDIDATE = re.compile(r"(?<![\w@#$*])[a-z][a-z0-9*#$@!%]{2,15}(?![\w*#$@!%])")
_MASKS = set("*#$@!%0123456789")
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a", "!": "i"}
MASK_TARGET_MIN_WEIGHT = 2.5


def strip_artefacts(text: str) -> str:
    """``text`` without mentions, URLs, retweet markers and HTML entities (each becomes a space)."""
    if "@" in text or "//" in text or "www." in text or "&" in text or "RT" in text or "URL" in text:
        return _ARTEFACTS.sub(" ", text)
    return text


class Unmasker:
    """Replace masked spellings of known offensive words (``f*ck`` -> ``fuck``) in lower-case text."""

    def __init__(self, targets: Iterable[str]) -> None:
        self.by_length: dict[int, list[str]] = {}
        for word in sorted(set(targets)):
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
        if token.isalpha() or not any(c in _MASKS for c in token):
            return token
        if sum(c.isalpha() for c in token) * 2 < len(token):
            return token  # mostly symbols or digits: a code, not a word
        fits = [w for w in self.by_length.get(len(token), ()) if self._fits(token, w)]
        return fits[0] if len(fits) == 1 else token

    def __call__(self, lowered: str) -> str:
        if not any(c in lowered for c in "*#$@!%0123456789"):
            return lowered
        return _CANDIDATE.sub(lambda m: self.unmask_token(m.group()), lowered)
