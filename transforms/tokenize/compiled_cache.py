"""The compiled word-cache encoder: the pure-Python encoder's ids, with the split and look-ups in C.

Why a module of its own: it is the one place that depends on the optional C module
``transforms/tokenize/_pretokenize.c`` (built by setup.py where a C compiler was at install;
``_pretokenize`` is ``None`` elsewhere), and it replaces the regex splitting of
:class:`~corpusforge.transforms.tokenize.word_cache.WordCacheEncoder` with a class table it fills
and probes as characters appear. :func:`~corpusforge.transforms.tokenize.word_cache.word_cache_encoder`
picks it when ``_pretokenize`` is here; tests patch ``_pretokenize`` in this module to run the
pure-Python path instead.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from corpusforge.transforms.tokenize.pretokenize_rules import _WHITE_SPACE
from corpusforge.transforms.tokenize.word_cache import WordCacheEncoder, _probes

try:  # compiled where the package was installed with a C compiler (setup.py); else pure Python
    from corpusforge.transforms.tokenize import _pretokenize
except ImportError:
    _pretokenize = None


@functools.cache
def _white_space_chars() -> frozenset[str]:
    return frozenset(c for c in map(chr, range(0x3001)) if re.fullmatch(f"[{_WHITE_SPACE}]", c))


def unicode_class(c: str, classes: Any) -> int:
    """The class Unicode gives ``c`` in the GPT-2 pattern (``classes``: the compiled module)."""
    if c in _white_space_chars():
        return classes.SPACE
    kind = unicodedata.category(c)[0]
    return classes.LETTER if kind == "L" else classes.NUMBER if kind == "N" else classes.OTHER


class CompiledWordCacheEncoder(WordCacheEncoder):
    """The same ids, with the split and the look-ups in C (``transforms/_pretokenize.c``).

    One pass over a document's text yields its ids straight from the cache, four times faster
    than the regex and the ``map``/``chain`` of the pure-Python path. The C code reads each
    character's class (letter, number, white space, other) from a table this encoder owns and
    fills as characters appear: Unicode's class, kept only when the C split of the character's
    probes matches the library's pre-tokenizer (the same probes as the pure-Python path; a
    character that fails them is marked refused and its documents go to the library).
    """

    def _init_splitting(self) -> None:
        """The class table, with the ASCII characters probed (no regex splitters here)."""
        self._table = bytearray(_pretokenize.TABLE_SIZE)
        self._check_chars([chr(c) for c in range(128)])

    def _check_chars(self, chars: Sequence[str]) -> None:
        """Class each character, then probe it (see :meth:`WordCacheEncoder._verify_chars`)."""
        table, spans = self._table, _pretokenize.spans
        for c in chars:
            table[ord(c)] = unicode_class(c, _pretokenize)
        for c in chars:
            probes = _probes(c)
            if [spans(p, table) for p in probes] != self._library_spans(probes):
                table[ord(c)] = _pretokenize.REFUSED

    def _run(self, scan: Any, piece: str, *args: Any) -> Any:
        """``scan(piece, table, *args)``, checking the characters it stops at; ``False`` when the
        piece holds a character the library splits otherwise."""
        table = self._table
        while True:
            got = scan(piece, table, *args)
            if type(got) is not int:
                return got
            if got < 0:
                return False
            self._check_chars(sorted(c for c in set(piece) if not table[ord(c)]))

    def _cached_ids(self, pieces: list[str]) -> list[int] | None | bool:
        """A document's ids from the cache, given its :meth:`_pieces`; ``None`` when a word is not
        cached yet; ``False`` when the library must encode it."""
        lookup, cache = _pretokenize.lookup, self._cache
        if len(pieces) == 1:
            return self._run(lookup, pieces[0], cache)
        ids: list[int] = []
        for j, piece in enumerate(pieces):
            if j % 2:
                ids += self._added_ids[piece]
            elif piece:
                got = self._run(lookup, piece, cache)
                if type(got) is not list:
                    return got
                ids += got
        return ids

    def _words_of(self, pieces: list[str]) -> list[str] | bool:
        """All pre-tokens of a document's text pieces; ``False`` as in :meth:`_cached_ids`."""
        words: list[str] = []
        for piece in pieces[::2]:
            got = self._run(_pretokenize.words, piece)
            if got is False:
                return False
            words += got
        return words

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        self._bound_cache()
        out: list[list[int]] = [[] for _ in texts]
        missed: list[tuple[int, list[str]]] = []
        slow: list[int] = []
        for i, text in enumerate(texts):
            if self._library_only(text):
                slow.append(i)
                continue
            pieces = self._pieces(text) if self._has_added else [text]
            ids = self._cached_ids(pieces)
            if type(ids) is list:
                out[i] = ids
            elif ids is None:
                missed.append((i, pieces))
            else:
                slow.append(i)
        if missed:
            new_words: set[str] = set()
            for _, pieces in missed:
                words = self._words_of(pieces)
                if words is not False:
                    new_words.update(words)
            self._learn(new_words)
            for i, pieces in missed:
                ids = self._cached_ids(pieces)
                if type(ids) is list:
                    out[i] = ids
                else:
                    slow.append(i)
        self._from_library(texts, sorted(slow), out)
        return out
