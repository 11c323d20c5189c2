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

This module holds the pure-Python encoder, its exactness checks (the per-character probes and the
self-check on :data:`SELF_CHECK_TEXTS`) and the factory that picks an encoder. The pre-tokenizer
rules both encoders reproduce live in :mod:`.pretokenize_rules`, the compiled encoder and its C
module import in :mod:`.compiled_cache`, the learned words kept on disk between workers and runs in
:mod:`.word_store`.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from corpusforge.transforms.tokenize.loading import library_encoder
from corpusforge.transforms.tokenize.pretokenize_rules import (
    _eligible,
    _literal_alternation,
    byte_level_alphabet,
    gpt2_char_classes,
    gpt2_patterns,
)

LOG = logging.getLogger(__name__)

# Beyond this many cached words the cache starts afresh (ids never change, only speed does): about
# 200 bytes a word, so at most ~100 MB per worker.
MAX_CACHED_WORDS = 1 << 19

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
        # time than it saves), or read back from the words earlier workers learned (preload, fed
        # by word_store.py)
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

    def preload(self, table: dict[str, tuple[int, ...]]) -> None:
        """Start from words learned before (:mod:`.word_store`: the model's ids of each word)."""
        room = MAX_CACHED_WORDS - (len(self._cache) - len(self._seed))
        if 0 < len(table) <= room:
            self._cache.update(table)
            self._cache.update(self._seed)  # an added token stays its own word

    def learned(self) -> dict[str, tuple[int, ...]]:
        """The words this worker holds besides the added tokens (what :mod:`.word_store` keeps)."""
        if len(self._cache) == len(self._seed):
            return {}
        seed = self._seed
        return {w: ids for w, ids in self._cache.items() if w not in seed}

    @property
    def n_learned(self) -> int:
        return len(self._cache) - len(self._seed)

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
    # imported here, not at the top: compiled_cache subclasses WordCacheEncoder, defined above
    from corpusforge.transforms.tokenize import compiled_cache

    compiled = compiled_cache._pretokenize is not None  # read per call: tests patch it to None
    encoder = (compiled_cache.CompiledWordCacheEncoder if compiled else WordCacheEncoder)(tok, spec)
    if not _matches_library(encoder, tok):
        LOG.warning("tokenize: the word cache does not reproduce this tokenizer exactly; using the library")
        return None
    return encoder
