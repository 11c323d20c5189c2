"""Byte-level BPE encoding with a per-worker word cache: the library's ids, several times faster.

Why: with a GPT-2/NeoX style tokenizer, ``encode_batch`` spends most of its time re-splitting and
re-merging words it has already seen thousands of times (web text has a small working vocabulary:
2,000 pages hold ~2.4 M words but only ~130 k distinct ones). A byte-level BPE tokenizes every
pre-token on its own, so the ids of a word never depend on its neighbours; caching them per word is
exact. This module reproduces the pipeline *around* the BPE model and asks the library's own model
for every word it has not seen:

1. added tokens that are not special are cut out first (longest match at the leftmost position;
   non-normalized ones on the raw text, then normalized ones), exactly like ``AddedVocabulary``;
2. each remaining piece is split with the GPT-2 pre-tokenizer pattern (the same pattern the
   ``ByteLevel`` pre-tokenizer runs, here with Python's ``re``);
3. each word's UTF-8 bytes are mapped to the byte-level alphabet and tokenized by the tokenizer's
   model (``Tokenizer(model)``: no normalizer, no pre-tokenizer), then cached.

Exactness is checked, not assumed. The split in step 2 depends only on which of four classes each
character falls in (letter, number, white space, other), so every distinct character is probed once
against the library's own pre-tokenizer before a document containing it takes this path; a
character on which the two regex engines disagree (Unicode versions differ at the margins) sends its
documents to the library. A document also goes to the library when it is not NFC (for an NFC
normalizer) or spells a special token (special tokens are encoded as text; we do not reproduce how).
Tokenizers of another shape (SentencePiece/Metaspace, a custom split regex, BPE dropout, added tokens
with ``single_word``/``lstrip``/``rstrip``) never use the cache: :func:`word_cache_encoder` says no.

Two implementations give the same ids. Where the package was installed with a C compiler,
:class:`CompiledWordCacheEncoder` splits and looks up a document in one pass of
``transforms/_pretokenize.c`` (characters classed by a table it fills and probes as they appear);
elsewhere :class:`WordCacheEncoder` does it with ``re`` and the standard library. Tests run both.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import unicodedata
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from corpusforge.transforms.tokenize.loading import library_encoder

try:  # compiled where the package was installed with a C compiler (setup.py); else pure Python
    from corpusforge.transforms.tokenize import _pretokenize
except ImportError:
    _pretokenize = None

LOG = logging.getLogger(__name__)

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


# Beyond this many cached words the cache starts afresh (ids never change, only speed does): about
# 200 bytes a word, so at most ~100 MB per worker.
MAX_CACHED_WORDS = 1 << 19


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


# Where a character is probed: "C" stands for it (see WordCacheEncoder._verify_chars).
_PROBES = ("aCa!C!1C1",)
_ASCII_PROBES = ("aCa", "1C1", "!C!", " CC", "C a", "a C", "C\nC", "'C")


def _probes(c: str) -> list[str]:
    return [p.replace("C", c) for p in (_ASCII_PROBES if c.isascii() else _PROBES)]


class WordCacheEncoder:
    """Encodes texts to the ids ``tok.encode_batch(texts, add_special_tokens=False)`` gives."""

    def __init__(self, tok: Tokenizer, spec: dict[str, Any]) -> None:
        self._library = library_encoder(tok)
        self._model_only = Tokenizer(tok.model)
        self._pre_tokenizer = tok.pre_tokenizer
        self._nfc = spec.get("normalizer") is not None
        alphabet = byte_level_alphabet()
        self._to_alphabet = str.maketrans({chr(b): c for b, c in enumerate(alphabet)})
        self._mapped_nul = alphabet[0]
        added = spec.get("added_tokens", [])
        plain = [t for t in added if not t.get("special")]
        self._raw_added = _literal_alternation([t["content"] for t in plain if not t.get("normalized")])
        self._normalized_added = _literal_alternation(
            [
                unicodedata.normalize("NFC", t["content"]) if self._nfc else t["content"]
                for t in plain
                if t.get("normalized")
            ]
        )
        self._added_ids = {t["content"]: (t["id"],) for t in plain}
        if self._nfc:
            self._added_ids.update({unicodedata.normalize("NFC", t["content"]): (t["id"],) for t in plain})
        specials = [t["content"] for t in added if t.get("special")]
        self._special = _literal_alternation(specials)
        # an added token is its own word; the cache starts with nothing else: the words a worker
        # meets are learned in its first batches (seeding the whole vocabulary costs more set-up
        # time than it saves)
        self._has_added = self._raw_added is not None or self._normalized_added is not None
        self._seed = dict(self._added_ids)
        self._cache: dict[str, tuple[int, ...]] = dict(self._seed)
        self.library_docs = 0  # documents this worker sent to the library (for tests and counters)
        self._init_splitting()

    def _init_splitting(self) -> None:
        """The regex splitters, and the ASCII characters probed for each."""
        self._patterns = gpt2_patterns()  # (quick, exact)
        self._splitters = tuple(p.findall for p in self._patterns)
        self._classes = gpt2_char_classes()
        self._spans_by_signature: dict[tuple[int | bool, ...], list[list[tuple[int, int]]]] = {}
        # per splitter, the characters on which it agrees with the library's pre-tokenizer, and not
        self._agrees: tuple[set[str], set[str]] = (set(), set())
        self._disagrees: tuple[set[str], set[str]] = (set(), set())
        ascii_chars = [chr(c) for c in range(128)]
        self._verify_chars(ascii_chars)
        self._ascii_quick = set(ascii_chars) <= self._agrees[0]

    # -- exactness checks --------------------------------------------------------------------

    def _verify_chars(self, chars: Sequence[str]) -> None:
        """Probe each character against the library's pre-tokenizer, for both splitters.

        The probes put the character between letters, digits and punctuation: it joins the run of
        the one whose class (letter, number, other) it has, and stands alone between all three
        when it is white space, so the spans of the pieces tell its class; the pattern does
        nothing with a character outside ASCII but class it (it matches none of the pattern's
        literals), so agreeing on these probes is agreeing on every text. ASCII characters (the
        literals: space, apostrophe, the contraction letters) also get probes with spaces, new
        lines and apostrophes. Splits are compared as character spans, which the library reports.

        Our side of the probes is computed once per class signature (:func:`gpt2_char_classes`):
        characters outside ASCII with the same signature are split identically by the pattern, so
        the first one's spans stand for all of them; only the library is asked about each one.
        """
        for c in chars:
            probes = _probes(c)
            expected = self._library_spans(probes)
            if expected is None:
                for disagrees in self._disagrees:
                    disagrees.add(c)
                continue
            for k, pattern in enumerate(self._patterns):
                if c.isascii():
                    ours = [[m.span() for m in pattern.finditer(p)] for p in probes]
                else:
                    signature = (k, *(bool(cls.fullmatch(c)) for cls in self._classes[k]))
                    ours = self._spans_by_signature.get(signature)
                    if ours is None:
                        ours = [[m.span() for m in pattern.finditer(p)] for p in probes]
                        self._spans_by_signature[signature] = ours
                (self._agrees[k] if ours == expected else self._disagrees[k]).add(c)

    def _library_spans(self, probes: list[str]) -> list[list[tuple[int, int]]] | None:
        """Where the library's own pre-tokenizer splits each probe; ``None`` when it refuses one
        (a lone surrogate is not UTF-8: the library raises, and so will it on such a document)."""
        pre_tokenize = self._pre_tokenizer.pre_tokenize_str
        try:
            return [[span for _, span in pre_tokenize(p)] for p in probes]
        except Exception:
            return None

    def _library_only(self, text: str) -> bool:
        """Text the cache never reproduces: it spells a special token (the library encodes those
        as text in a way we do not copy) or is not NFC (for a tokenizer that normalizes)."""
        if self._special is not None and self._special.may_occur(text):
            return True
        return self._nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text)

    def _splitter_for(self, text: str) -> Any:
        """The splitter that reproduces the library on ``text``, or ``None``: the library's turn."""
        if self._library_only(text):
            return None
        if text.isascii():
            if self._ascii_quick:
                return self._splitters[0]
            chars = set(text)
        else:
            chars = set(text)
            unseen = chars - self._agrees[1] - self._disagrees[1]
            if unseen:
                self._verify_chars(sorted(unseen))
        for k, split_words in enumerate(self._splitters):
            if chars <= self._agrees[k]:
                return split_words
        return None

    # -- encoding ------------------------------------------------------------------------------

    def _map(self, word: str) -> str:
        """``word``'s UTF-8 bytes in the byte-level alphabet (each byte read as Latin-1, translated)."""
        return word.encode("utf-8").decode("latin-1").translate(self._to_alphabet)

    def _map_all(self, words: list[str]) -> list[str]:
        """:meth:`_map` of each word, in a few calls for all of them: joined at NUL, whose byte
        alone becomes the alphabet's NUL character; a word holding a NUL is mapped on its own."""
        mapped = self._map("\x00".join(words)).split(self._mapped_nul)
        return mapped if len(mapped) == len(words) else [self._map(w) for w in words]

    def _pieces(self, text: str) -> list[str]:
        """``text`` cut at its added tokens: text at even positions, added tokens at odd ones."""
        pieces = [text]
        for pattern in (self._raw_added, self._normalized_added):
            if pattern is not None and any(pattern.may_occur(p) for p in pieces[::2]):
                cut: list[str] = []
                for j, piece in enumerate(pieces):
                    if j % 2:
                        cut += (piece, "")  # keeps the token at an odd position
                        continue
                    parts = pattern.split(piece)  # its group puts the matches at odd positions
                    if cut:
                        cut[-1] += parts[0]  # "" + first part: even positions stay text
                        cut += parts[1:]
                    else:
                        cut = parts
                pieces = cut
        return pieces

    def _words(self, text: str, split_words: Any) -> list[str]:
        """The pre-tokens of ``text``; an added token is one word standing for itself."""
        if not self._has_added:
            return split_words(text)
        pieces = self._pieces(text)
        if len(pieces) == 1:
            return split_words(text)
        words: list[str] = []
        for j, piece in enumerate(pieces):
            if j % 2:
                words.append(piece)
            elif piece:
                words += split_words(piece)
        return words

    def _model_ids(self, words: list[str]) -> list[tuple[int, ...]]:
        """The model's ids for each pre-token in ``words``.

        One call for all of them: the words as one pre-tokenized sequence (one Encoding, not one per
        word: a third of the cost), cut back into words where the word index changes.
        """
        if not words:
            return []
        encoding = self._model_only.encode(
            self._map_all(words), is_pretokenized=True, add_special_tokens=False
        )
        ids = tuple(encoding.ids)  # tuples of ints: the garbage collector stops tracking them
        word_index = np.asarray(encoding.word_ids, dtype=np.int64)
        starts = np.flatnonzero(np.diff(word_index, prepend=-1)).tolist()
        if len(starts) != len(words):  # every byte-level word has at least one token
            raise RuntimeError("word cache: the model returned no token for a word")
        return [ids[a:b] for a, b in zip(starts, [*starts[1:], len(ids)], strict=True)]

    def _bound_cache(self) -> None:
        if len(self._cache) > MAX_CACHED_WORDS + len(self._seed):
            self._cache = dict(self._seed)

    def _learn(self, words: set[str]) -> None:
        """Cache the model's ids of those ``words`` not cached yet (one call to the model)."""
        unseen = list(words.difference(self._cache))
        self._cache.update(zip(unseen, self._model_ids(unseen), strict=True))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        self._bound_cache()
        cache = self._cache
        lookup = cache.__getitem__
        out: list[list[int]] = [[] for _ in texts]
        missed: list[tuple[int, list[str]]] = []
        unseen: set[str] = set()
        slow: list[int] = []
        for i, text in enumerate(texts):
            split_words = self._splitter_for(text)
            if split_words is None:
                slow.append(i)
                continue
            words = self._words(text, split_words)
            try:
                out[i] = list(chain.from_iterable(map(lookup, words)))
            except KeyError:  # words not seen yet: encoded below with the batch's other new words
                missed.append((i, words))
                unseen.update(set(words).difference(cache))
        if missed:
            self._learn(unseen)
            for i, words in missed:
                out[i] = list(chain.from_iterable(map(lookup, words)))
        self._from_library(texts, slow, out)
        return out

    def _from_library(self, texts: Sequence[str], slow: list[int], out: list[list[int]]) -> None:
        """The library's ids for the documents at ``slow`` (text the cache does not reproduce)."""
        if slow:
            self.library_docs += len(slow)
            for i, ids in zip(slow, self._library([texts[i] for i in slow]), strict=True):
                out[i] = ids


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


# Text the encoder must split and encode exactly like the library before it is used: contractions in
# every case, runs and mixtures of white space, digits, punctuation, letters of several scripts. It
# guards against a tokenizers release whose ByteLevel pattern differs from GPT-2's in a way the
# per-character probes cannot see (the probes only check how characters are classed).
SELF_CHECK_TEXTS = (
    "I'm sure you're right; we'll see, they've gone, she'd say it's John's. I'M YOU'RE 'S 'Ll 'lL",
    "don't 'twas rock'n'roll '' ''' 's 't 're 've 'm 'll 'd x's y't",
    "a  b   c\t\td \n\n e \r\n f\u00a0g\u3000h \x0b\x0c i  \n  j   ",
    "Numbers 1234567890 12,345.67 3rd 4th x2 2x ½ ² Ⅻ and symbols #$%&*+-/<=>@[]^_`{|}~ !!! ???",
    "Grüße aus Köln; naïve café, Ελληνικά, Кириллица, 中文字符, 日本語のテキスト, 한국어, עברית, العربية",
    "emoji 👍🏽👨‍👩‍👧 and ZWJ\u200d, combining e\u0301 a\u0308, snake_case __init__ CamelCase",
    "   leading spaces, trailing spaces   ",
)


def _matches_library(encoder: WordCacheEncoder, tok: Tokenizer) -> bool:
    expected = library_encoder(tok)(list(SELF_CHECK_TEXTS))
    got = encoder.encode_batch(list(SELF_CHECK_TEXTS))
    encoder.library_docs = 0  # the check's own fallbacks are not the run's
    return got == expected


def word_cache_encoder(tok: Tokenizer) -> WordCacheEncoder | None:
    """A :class:`WordCacheEncoder` for ``tok``, or ``None`` when its pipeline is not one we reproduce
    (by its description, or by a self-check against the library on :data:`SELF_CHECK_TEXTS`)."""
    if not getattr(tok, "encode_special_tokens", False):
        return None  # special tokens in the text would be extracted; we only reproduce "as text"
    spec = json.loads(tok.to_str())
    if not _eligible(spec):
        return None
    encoder = (CompiledWordCacheEncoder if _pretokenize is not None else WordCacheEncoder)(tok, spec)
    if not _matches_library(encoder, tok):
        LOG.warning("tokenize: the word cache does not reproduce this tokenizer exactly; using the library")
        return None
    return encoder
