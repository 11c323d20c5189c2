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
