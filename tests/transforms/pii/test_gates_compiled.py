"""The PII stage's compiled digit-run and IBAN gates (``_gates.c``) give exactly the spans of the
regexes they stand for (``_DIGIT_RUN``, ``_IBAN_GATE``), on real text (the dev corpus where
``../shared`` exists, the embedded sample otherwise), on random strings over the characters the
gates decide on, and on the boundaries of each rule (run lengths 6 and 7, separators, Unicode
digits, a match's end read by the next one's look-behind)."""

from __future__ import annotations

import random

import pytest

from corpusforge.transforms.pii import engine
from tests.helpers import dev_or_sample_texts

_gates = pytest.importorskip(
    "corpusforge.transforms.pii._gates", reason="transforms/pii/_gates.c was not compiled here"
)

EDGES = [
    "",
    "1",
    "1234567",  # first and last digit 6 apart: the shortest run
    "123456",  # 5 apart: none
    "12 34 56 78",
    "(555) 123-4567 ext. 89",
    "+1 (555) 123 4567 +",
    "2019-05-12 and 1.2.3.4 and 10/11/2012.",
    "  --123456--7  ",
    "\u0661\u0662\u0663\u0664\u0665\u0666\u0667",  # Arabic-Indic digits are \\d
    "\u00b2\u00b3\u00b9\u00b2\u00b3\u00b9\u00b2",  # superscripts are not decimal
    "1" * 5000,
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "AB12CD34EF56",  # the second candidate's letters are inside the first match
    "AB12-CD3",  # separator, then only three
    "AB12 ",
    "AB12",
    "A12BCDE",
    "ab12cdef xy99-zzzz \u00e9\u00e912abcd",
]


def _fuzz(alphabet: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def test_digit_runs_are_the_regex_matches():
    texts = dev_or_sample_texts() + EDGES + _fuzz("0123456789 .-/()+x\n\u0663\u00b2", 20_000, seed=1)
    found = 0
    for t in texts:
        want = engine._digit_runs_regex(t)
        assert _gates.digit_runs(t) == want, t[:200]
        found += len(want)
    assert found > 1000


def test_iban_hits_are_the_regex_matches():
    texts = dev_or_sample_texts() + EDGES + _fuzz("ABzq0129 -\u00e9", 20_000, seed=2)
    found = 0
    for t in texts:
        want = engine._iban_hits_regex(t)
        assert _gates.iban_hits(t) == want, t[:200]
        found += len(want)
    assert found > 1000


def test_the_gates_use_the_compiled_walks_and_reject_bytes():
    assert engine._digit_runs is _gates.digit_runs and engine._iban_hits is _gates.iban_hits
    with pytest.raises(TypeError):
        _gates.digit_runs(b"1234567")
    with pytest.raises(TypeError):
        _gates.iban_hits(b"AB12CDEF")
