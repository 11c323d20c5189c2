"""The compiled signature loop (``_minhash.c``) gives the numpy blocks' signature bit for bit, on
real text (the dev corpus where ``../shared`` exists, the embedded sample otherwise) and on the
edges: no shingle, one, a document longer than one block of ``_CHUNK`` shingles, hashes and
coefficients at the ends of uint32 (where the products wrap)."""

from __future__ import annotations

import numpy as np
import pytest

from corpusforge.transforms.dedup import minhash
from corpusforge.transforms.dedup.minhash import MinHasher, Permutations
from tests.helpers import DEV, dev_or_sample_texts

_minhash = pytest.importorskip(
    "corpusforge.transforms.dedup._minhash", reason="transforms/dedup/_minhash.c was not compiled here"
)


def _blocks(perms: Permutations, shingles: np.ndarray) -> np.ndarray:
    out = np.full(perms.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    return perms._signature_blocks(minhash.fmix32(shingles.astype(np.uint32)), out)


def test_compiled_signatures_are_the_numpy_ones_on_real_text():
    hasher = MinHasher(128, 5, 1)
    texts = dev_or_sample_texts() + ["", "one", "x " * 20_000, "\u00e9t\u00e9 \u4e2d\u6587 " * 300]
    for text in texts:
        shingles = hasher.shingles(text)
        got = hasher.perms.signature(shingles)
        assert got.dtype == np.uint32 and got.tobytes() == _blocks(hasher.perms, shingles).tobytes()
    assert len(texts) > 100 or DEV.exists() is False


def test_compiled_signatures_at_the_edges():
    rng = np.random.default_rng(3)
    extreme = np.array([0, 1, 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF], dtype=np.uint32)
    perms = Permutations(
        np.concatenate(
            [extreme | np.uint32(1), rng.integers(0, 1 << 32, 58, dtype=np.uint32) | np.uint32(1)]
        ),
        np.concatenate([extreme, rng.integers(0, 1 << 32, 58, dtype=np.uint32)]),
    )
    for n in (0, 1, 2, minhash._CHUNK - 1, minhash._CHUNK, minhash._CHUNK + 1, 3 * minhash._CHUNK + 7):
        shingles = rng.integers(0, 1 << 63, n, dtype=np.uint64)
        shingles[: min(n, 6)] = extreme[: min(n, 6)]
        assert perms.signature(shingles).tobytes() == _blocks(perms, shingles).tobytes()
    assert (perms.signature(np.zeros(0, dtype=np.uint64)) == np.iinfo(np.uint32).max).all()


def test_minimum_affine_checks_its_buffers():
    a = np.ones(4, dtype=np.uint32)
    with pytest.raises(ValueError):
        _minhash.minimum_affine(np.ones(3, dtype=np.uint32), a, np.ones(5, dtype=np.uint32), a.copy())
    with pytest.raises(TypeError):
        _minhash.minimum_affine(np.ones(3, dtype=np.uint32), a, a, b"read-only out")


@pytest.mark.parametrize("space", ["\x85", "\u1680", "\u2028", "\u2029"])
def test_comparison_text_turns_each_other_space_into_a_space(space):
    # non-ASCII text (the only kind the substitution applies to), the space at the ends and inside
    for text in (f"\u00e9{space}x", f"{space}\u00e9", f"\u00e9{space}{space}", "\u00e9x"):
        assert minhash.comparison_text(text) == minhash._OTHER_SPACE.sub(" ", text).casefold()
    assert minhash.comparison_text(f"\u00e9{space}x") == "\u00e9 x"
