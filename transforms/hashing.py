"""Stable hashing shared by every stage: the 64-bit constants, the splitmix64 finaliser, the 8-byte
id digest, and powers of a polynomial hash's base for hashes of slices read off prefix sums.

Each lives here once so that two stages that must agree (or that merely hash the same way) cannot
drift apart; all are fixed, so hashes are stable across processes, machines and runs (never
Python's salted ``hash()``).

Why a power table: the polynomial hash of a slice, ``sum(x[j] * B**(j - start))``, equals
``(P[end] - P[start]) * B**-start`` with prefix sums ``P[i] = sum(x[j] * B**j)``, all in wrapping
uint64 arithmetic (B is odd, so it has an inverse modulo 2**64). numpy computes ``P`` for a whole
document in one pass; the powers and inverse powers it needs are computed once per process and
grown on demand. Near-duplicate word hashes (``minhash``) and decontamination's word and gram hashes
(``decontam_text``) both read them from here.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

U64 = np.uint64
# Odd 64-bit constants, hence invertible modulo 2**64 (usable as polynomial bases and multipliers).
GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio
FNV_PRIME = 0x100000001B3  # FNV-1's 64-bit prime
SPLITMIX_MUL1 = U64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser multipliers
SPLITMIX_MUL2 = U64(0x94D049BB133111EB)
ID_DIGEST_BYTES = 8


def splitmix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a ``uint64`` array: spreads every input bit over the whole word.

    Mixes ``h`` in place and returns it (callers pass an array they own, usually a fresh temporary).
    """
    h ^= h >> U64(30)
    h *= SPLITMIX_MUL1
    h ^= h >> U64(27)
    h *= SPLITMIX_MUL2
    h ^= h >> U64(31)
    return h


def id_digest(doc_id: str) -> bytes:
    """8 bytes of blake2b of a document id: the stable order and grouping key of documents (dedup's
    kept-copy choice, the pack groups and packing order), never Python's salted ``hash()``."""
    return hashlib.blake2b(doc_id.encode("utf-8"), digest_size=ID_DIGEST_BYTES).digest()


class PowerTable:
    """``B**i`` and ``B**-i`` modulo 2**64 for ``i`` below the table's size (thread-safe growth)."""

    def __init__(self, base: int, size: int = 1 << 16) -> None:
        if base % 2 == 0:
            raise ValueError("the base of a polynomial hash modulo 2**64 must be odd (invertible)")
        self.base = base
        self.inverse = pow(base, -1, 1 << 64)
        self.pow = np.ones(1, dtype=U64)
        self.inv = np.ones(1, dtype=U64)
        self._lock = threading.Lock()
        self.ensure(size)

    def ensure(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The tables (powers, inverse powers), at least ``n`` long."""
        if len(self.pow) < n:
            with self._lock:
                if len(self.pow) < n:
                    size = max(n, 2 * len(self.pow))
                    with np.errstate(over="ignore"):
                        powers = np.full(size, self.base, dtype=U64)
                        powers[0] = 1
                        inverses = np.full(size, self.inverse, dtype=U64)
                        inverses[0] = 1
                        self.pow, self.inv = np.cumprod(powers, dtype=U64), np.cumprod(inverses, dtype=U64)
        return self.pow, self.inv


def stable_unit(key: str, salt: str = "") -> float:
    """A number in [0, 1) from ``blake2b(salt, key)``: the same for a key on every worker, run and
    Python process (never Python's salted ``hash()``), so a share of documents chosen by it is fixed."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / float(1 << 64)
