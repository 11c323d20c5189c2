"""The bias lexicon: identity terms and gendered words, each with its category, and the matcher.

The file format is plain text so that a reviewer can read and extend it (see
``package/assets/bias_lexicon.txt``): ``category: term, term, ...`` per line, ``#`` comments. Terms
are lower-cased and split into words with the same word pattern the stage uses on documents, so a
term matches exactly when its words appear in sequence ("he" never matches inside "the", and
"non-binary" matches "Non-Binary" and "non binary" alike).

Matching is set work in C (``frozenset.isdisjoint`` first, so a line with no lexicon word costs
nothing in Python; then one intersection and a ``list.count`` per word present), not one pattern
per term. That is the pure-Python path's matcher; the compiled pass (``_bias_match.c``) matches
the same terms, given as :meth:`Lexicon.term_table`, while it walks a unit's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# Words: runs of letters, digits and underscores, as in the toxicity classifier's term pattern.
WORD = re.compile(r"\w+")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*")
ASSET_NAME = "bias_lexicon.txt"
# The gendered-word categories, reported as the female:male ratio rather than as identities.
FEMALE, MALE = "female", "male"


class LexiconError(ValueError):
    """A malformed lexicon file; the message names the file and the line."""


def default_lexicon_path() -> Path:
    return Path(str(resources.files("corpusforge").joinpath("assets", ASSET_NAME)))


@dataclass(frozen=True)
class Lexicon:
    """Terms by first word. ``single`` maps a one-word term to its categories; ``multi`` maps the
    first word of a longer term to (the following words, categories) pairs."""

    categories: tuple[str, ...]
    single: dict[Any, tuple[str, ...]]
    multi: dict[Any, tuple[tuple[tuple[Any, ...], tuple[str, ...]], ...]]
    keys: frozenset[Any]  # str words, or bytes words after :meth:`encoded`

    @classmethod
    def from_entries(cls, entries: Sequence[tuple[str, str]]) -> Lexicon:
        """Build from (category, term) pairs; a term listed under two categories counts for both."""
        single: dict[str, list[str]] = {}
        multi: dict[tuple[str, ...], list[str]] = {}
        for category, term in entries:
            words = tuple(WORD.findall(term.lower()))
            target = single.setdefault(words[0], []) if len(words) == 1 else multi.setdefault(words, [])
            if category not in target:
                target.append(category)
        by_first: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for words, cats in sorted(multi.items()):
            by_first.setdefault(words[0], []).append((words[1:], tuple(cats)))
        categories = tuple(dict.fromkeys(c for c, _ in entries))
        return cls(
            categories,
            {w: tuple(c) for w, c in single.items()},
            {w: tuple(v) for w, v in by_first.items()},
            frozenset(single) | frozenset(by_first),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> Lexicon:
        """Read a lexicon file (default: the one shipped with corpusforge)."""
        path = Path(path) if path is not None else default_lexicon_path()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LexiconError(f"{path}: cannot read bias lexicon ({exc})") from None
        return cls.from_entries(parse_lexicon(text, str(path)))

    def encoded(self) -> Lexicon:
        """The same lexicon with UTF-8 ``bytes`` words, to match the stage's byte-level words."""

        def enc(words: tuple[str, ...]) -> tuple[bytes, ...]:
            return tuple(w.encode("utf-8") for w in words)

        return Lexicon(
            self.categories,
            {w.encode("utf-8"): c for w, c in self.single.items()},
            {w.encode("utf-8"): tuple((enc(rest), c) for rest, c in v) for w, v in self.multi.items()},
            frozenset(k.encode("utf-8") for k in self.keys),
        )

    def term_table(self) -> dict[Any, tuple[tuple[tuple[Any, ...], tuple[int, ...]], ...]]:
        """The lexicon for the compiled pass (``_bias_match.scan_mentions``): each first word mapped
        to its terms as (following words, category ids) pairs, the ids indexing :attr:`categories`
        and a one-word term's following words empty; the same terms :meth:`match` matches."""
        ids = {c: i for i, c in enumerate(self.categories)}
        table: dict[Any, tuple[tuple[tuple[Any, ...], tuple[int, ...]], ...]] = {}
        for w in self.keys:
            entries = [((), tuple(ids[c] for c in self.single[w]))] if w in self.single else []
            entries += [(tuple(rest), tuple(ids[c] for c in cats)) for rest, cats in self.multi.get(w, ())]
            table[w] = tuple(entries)
        return table

    def match(self, words: Sequence[Any]) -> list[str]:
        """The category of every mention in ``words`` (lower-cased), one entry per mention and category.

        The lexicon words present are found by one set intersection and counted by ``list.count``
        (both in C), so Python work is per mention, not per word; only a multi-word term walks the
        positions of its first word."""
        present = self.keys.intersection(words)
        if not present:
            return []
        out: list[str] = []
        n = len(words)
        for w in sorted(present):
            cats = self.single.get(w)
            if cats is not None:
                out += cats * words.count(w)
            longer = self.multi.get(w)
            if longer is None:
                continue
            i = words.index(w)
            while True:
                for rest, more in longer:
                    k = len(rest)
                    if i + k < n and tuple(words[i + 1 : i + 1 + k]) == rest:
                        out += more
                try:
                    i = words.index(w, i + 1)
                except ValueError:
                    break
        return out


def parse_lexicon(text: str, name: str = "<lexicon>") -> list[tuple[str, str]]:
    """(category, term) pairs of a lexicon file's text; :class:`LexiconError` names ``name:line``."""
    entries: list[tuple[str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        category, sep, terms = line.partition(":")
        category = category.strip()
        if not sep:
            raise LexiconError(f"{name}:{lineno}: expected 'category: term, term, ...', got {raw.strip()!r}")
        if not _CATEGORY.fullmatch(category):
            raise LexiconError(
                f"{name}:{lineno}: category {category!r} must be lower-case letters, digits and _"
            )
        for term in terms.split(","):
            term = term.strip()
            if not term:
                raise LexiconError(f"{name}:{lineno}: empty term in category {category!r}")
            if not WORD.search(term):
                raise LexiconError(f"{name}:{lineno}: term {term!r} has no word characters")
            entries.append((category, term))
    if not entries:
        raise LexiconError(f"{name}: the bias lexicon has no entries")
    return entries
