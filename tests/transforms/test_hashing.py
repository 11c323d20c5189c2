"""The shared power table: B**i and B**-i modulo 2**64, grown on demand, for any odd base."""

from __future__ import annotations

import numpy as np
import pytest

from corpusforge.transforms.hashing import U64, PowerTable


def test_powers_and_inverses_cancel_and_match_python_integers():
    base = 0x100000001B3
    table = PowerTable(base, size=8)
    powers, inverses = table.ensure(1000)  # grows past its first size
    assert len(powers) >= 1000
    with np.errstate(over="ignore"):
        assert np.all(powers[:1000] * inverses[:1000] == U64(1))
    assert [int(p) for p in powers[:5]] == [pow(base, i, 1 << 64) for i in range(5)]
    assert int(powers[999]) == pow(base, 999, 1 << 64)


def test_an_even_base_is_refused():
    with pytest.raises(ValueError, match="odd"):
        PowerTable(2)


def _splitmix64_reference(x: int) -> int:
    """splitmix64's finaliser on Python integers (the published constants and shifts)."""
    m = (1 << 64) - 1
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & m
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def test_splitmix64_matches_the_reference_and_every_stage_uses_the_one_copy():
    from corpusforge.transforms.decontam import text as decontam_text
    from corpusforge.transforms.dedup import minhash
    from corpusforge.transforms.hashing import splitmix64

    values = [0, 1, 0x9E3779B97F4A7C15, (1 << 64) - 1]
    mixed = splitmix64(np.array(values, dtype=U64))
    assert [int(v) for v in mixed] == [_splitmix64_reference(v) for v in values]
    assert minhash.splitmix64 is splitmix64 and decontam_text.splitmix64 is splitmix64


def test_id_digest_is_stable_and_orders_dedup_and_packing_alike():
    import hashlib

    from corpusforge.transforms.dedup.exact import id_of, node_key
    from corpusforge.transforms.hashing import id_digest
    from corpusforge.transforms.tokenize.bucket_stage import pack_group

    assert id_digest("doc-1") == hashlib.blake2b(b"doc-1", digest_size=8).digest()
    assert node_key("doc-1") == id_digest("doc-1") + b"doc-1" and id_of(node_key("doc-1")) == "doc-1"
    assert pack_group("doc-1", 7) == int.from_bytes(id_digest("doc-1"), "big") % 7
