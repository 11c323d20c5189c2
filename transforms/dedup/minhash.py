"""MinHash signatures of word n-gram shingles, computed with vectorised arithmetic (no Beam here).

Why this is not ``datasketch.MinHash.update`` per shingle: building Python strings for every
shingle and hashing them one by one costs more than everything else in deduplication. Here each
document is reduced to a byte array once, every word is hashed once with a polynomial hash over
prefix sums (numpy, no Python loop per word), n-gram hashes are linear combinations of neighbouring
word hashes, and the ``num_perm`` hash functions are applied to all shingles at once as a matrix.
The permutations are datasketch's own ("affine32" scheme), so the result is exactly the
``hashvalues`` datasketch would compute for the same shingle hashes, and it can be handed to
datasketch as a ``LeanMinHash`` (:func:`as_lean_minhash`) for its estimators and LSH index.

Text is compared in a normal form (Unicode NFKC, case-folded, whitespace collapsed). Digits are
kept as they are: pages of number tables differ only in their digits and must not look alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from corpusforge.transforms.hashing import FNV_PRIME, GOLDEN, PowerTable, splitmix64

try:  # the optional compiled signature loop (setup.py); the numpy blocks give the same values
    from corpusforge.transforms.dedup import _minhash
except ImportError:  # pragma: no cover - depends on the build
    _minhash = None

_U64 = np.uint64
_MASK32 = _U64(0xFFFFFFFF)
# ASCII whitespace bytes. After NFKC every Unicode space (NBSP, U+2000..U+200A, U+3000) is U+0020.
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
# Shingles are permuted in chunks so that a very long document never needs a huge matrix.
_CHUNK = 4096
SCHEME = "affine32"  # datasketch's permutation scheme our signatures follow


# Whitespace that str.split() knows and NFKC leaves alone; everything else NFKC turns into U+0020.
_OTHER_SPACE = re.compile("[\x85\u1680\u2028\u2029]")


def comparison_text(text: str) -> str:
    """The comparison form without collapsing whitespace (the word hasher skips runs itself).

    Splitting and re-joining every word costs more than hashing them, so the near-duplicate path
    uses this; its words are exactly those of :func:`dedup_comparison_form` (tested).
    """
    if not text.isascii():
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        # the regex stops at every character of a non-ASCII text; four substring tests do not
        if "\x85" in text or "\u1680" in text or "\u2028" in text or "\u2029" in text:
            text = _OTHER_SPACE.sub(" ", text)
    return text.casefold()


def dedup_comparison_form(text: str) -> str:
    """The comparison form: NFKC, case-folded, runs of whitespace collapsed to one space."""
    return " ".join(comparison_text(text).split())


def exact_hash(text: str) -> bytes:
    """A stable 128-bit digest of the comparison form (never Python's salted ``hash()``)."""
    return exact_hash_of_comparison_text(comparison_text(text))


def exact_hash_of_comparison_text(norm: str) -> bytes:
    """:func:`exact_hash` from a :func:`comparison_text` already made (the index needs both)."""
    return hashlib.blake2b(" ".join(norm.split()).encode("utf-8"), digest_size=16).digest()


def word_power_table(size: int = 1 << 16) -> PowerTable:
    """The powers :func:`word_hashes` reads (one table per hasher)."""
    return PowerTable(FNV_PRIME, size)


def word_hashes(norm: str, powers: PowerTable) -> np.ndarray:
    """64-bit hashes of the whitespace-separated words of ``norm`` (a :func:`comparison_text`)."""
    data = np.frombuffer(norm.encode("utf-8"), dtype=np.uint8)
    if data.size == 0:
        return np.empty(0, dtype=_U64)
    pow_, inv = powers.ensure(data.size + 1)
    ws = _WS[data]
    # word boundaries: a start is a non-space after a space (or at 0), an end a space after a non-space
    edge = np.diff(np.concatenate(([True], ws, [True])).view(np.int8))
    starts = np.flatnonzero(edge == -1)
    ends = np.flatnonzero(edge == 1)
    with np.errstate(over="ignore"):
        prefix = np.empty(data.size + 1, dtype=_U64)
        prefix[0] = 0
        np.cumsum(data.astype(_U64) * pow_[: data.size], dtype=_U64, out=prefix[1:])
        h = (prefix[ends] - prefix[starts]) * inv[starts]
        h += (ends - starts).astype(_U64)  # the length, so that a word and its zero-prefixed form differ
        return splitmix64(h)


def shingle_hashes(words: np.ndarray, ngram: int) -> np.ndarray:
    """32-bit hashes of the word n-grams; a document shorter than ``ngram`` words is one shingle.

    The n-gram hash is a sum of the word hashes multiplied by position-dependent odd constants
    (order matters), mixed again. An empty document gets the one hash of the empty shingle.
    """
    n = min(ngram, len(words))
    if n == 0:
        return np.zeros(1, dtype=_U64)
    count = len(words) - n + 1
    with np.errstate(over="ignore"):
        h = np.full(count, _U64(n), dtype=_U64)
        for k in range(n):
            h += words[k : k + count] * _U64((GOLDEN * (2 * k + 1)) & 0xFFFFFFFFFFFFFFFF)
        return splitmix64(h) >> _U64(32)


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, as datasketch's "affine32" scheme applies it before permuting."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


@dataclass(frozen=True)
class Permutations:
    """The ``num_perm`` permutations of datasketch's "affine32" scheme: ``x -> a * x + b mod 2**32``.

    ``a`` and ``b`` are taken from ``datasketch.MinHash(num_perm, seed, scheme="affine32")``, so a
    signature here is bit for bit the one datasketch computes for the same 32-bit shingle hashes
    (tested), only for a whole document at once in uint32 arithmetic, which is what makes one
    signature cost a few hundred microseconds rather than milliseconds.
    """

    a: np.ndarray
    b: np.ndarray

    @classmethod
    def create(cls, num_perm: int, seed: int) -> Permutations:
        """The scheme's coefficients for ``seed``: from numpy's ``RandomState(seed)``, ``num_perm``
        odd multipliers (``2k + 1``, ``k < 2**31``), then ``num_perm`` offsets below ``2**32``, both
        drawn as uint32, which is how datasketch draws them (tested against it). Drawn here rather
        than read off a ``datasketch.MinHash``: importing datasketch imports scipy, ~1 CPU s in
        every worker before its first bundle."""
        gen = np.random.RandomState(seed)
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        return cls(a, b)

    @property
    def num_perm(self) -> int:
        return len(self.a)

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        out = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        hv = fmix32(shingles.astype(np.uint32))
        if _minhash is not None and self.a.dtype == np.uint32 and self.b.dtype == np.uint32:
            # the same minimum in one compiled loop, without the blocks below
            _minhash.minimum_affine(hv, np.ascontiguousarray(self.a), np.ascontiguousarray(self.b), out)
            return out
        return self._signature_blocks(hv, out)

    def _signature_blocks(self, hv: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The minimum in numpy, ``_CHUNK`` shingles at a time (the reference; the fallback)."""
        for i in range(0, len(hv), _CHUNK):
            block = hv[i : i + _CHUNK, None] * self.a
            block += self.b
            np.minimum(out, block.min(axis=0), out=out)
        return out


class MinHasher:
    """Signatures for documents: build once per worker (``setup``), call :meth:`signature` per text."""

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1) -> None:
        if num_perm < 1 or ngram < 1:
            raise ValueError("num_perm and ngram must be positive")
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        self.perms = Permutations.create(num_perm, seed)
        self.powers = word_power_table()

    def shingles(self, text: str) -> np.ndarray:
        return shingle_hashes(word_hashes(comparison_text(text), self.powers), self.ngram)

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature of ``text``: ``num_perm`` uint32 values."""
        return self.perms.signature(self.shingles(text))

    def signature_of_comparison_text(self, norm: str) -> np.ndarray:
        """:meth:`signature` from a :func:`comparison_text` already made."""
        return self.perms.signature(shingle_hashes(word_hashes(norm, self.powers), self.ngram))


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The share of equal signature positions: an unbiased estimate of the shingle Jaccard."""
    return float(np.count_nonzero(a == b)) / len(a)


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two shingle-hash arrays (as sets): the exact check behind an estimate."""
    ua, ub = np.unique(a), np.unique(b)
    inter = len(np.intersect1d(ua, ub, assume_unique=True))
    return inter / (len(ua) + len(ub) - inter)


def as_lean_minhash(signature: np.ndarray, seed: int = 1):
    """The signature as a datasketch ``LeanMinHash`` (for its estimators and ``MinHashLSH``)."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=seed, hashvalues=signature, scheme=SCHEME)


# ---- LSH banding -------------------------------------------------------------------------------


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """Probability that two documents at Jaccard ``s`` share at least one band."""
    return 1.0 - (1.0 - s**rows) ** bands


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One shuffle key per band: the band index and the band's raw signature bytes."""
    raw = signature[: bands * rows].tobytes()
    width = rows * signature.itemsize
    return [i.to_bytes(2, "big") + raw[i * width : (i + 1) * width] for i in range(bands)]
