"""The faster word split and n-gram signals give exactly the reference implementations' answers
(a loop over ``str.split()``; every n-gram length hashed over the whole text) on dev and sample
pages and on texts built to repeat n-grams of every length, with Unicode whitespace and
punctuation-only tokens."""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections import Counter

from corpusforge.transforms.quality.signals import (
    _PUNCT,
    ngram_signals,
    ngram_signals_reference,
    split_words,
    split_words_reference,
)
from tests.helpers import SAMPLE_DIR

WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def _repetitive_texts(n: int, seed: int = 11) -> list[str]:
    """Word streams that repeat runs of 1-12 words, sometimes back to back, with punctuation and
    Unicode whitespace between tokens."""
    rng = random.Random(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "—", "...", "(a)", "b.", "Zoë", "«x»", "1", "don't", "•"]
    out = []
    for _ in range(n):
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 40))]
        for _ in range(rng.randint(0, 4)):
            if len(words) > 2:
                i = rng.randrange(len(words))
                run = words[i : i + rng.randint(1, 12)]
                j = rng.randrange(len(words) + 1)
                words[j:j] = run * rng.randint(1, 3)
        seps = [
            rng.choice([" ", " ", " ", "\n", rng.choice(WHITESPACE), rng.choice(_PUNCT) + " "]) for _ in words
        ]
        out.append("".join(w + s for w, s in zip(words, seps, strict=True)))
    return out


def _pages(dev_corpus) -> list[str]:
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        dev = [json.loads(line)["text"] for line in f]
    sample = [json.loads(line)["text"] for line in (SAMPLE_DIR / "articles.jsonl").read_text().splitlines()]
    return dev + sample


def test_split_words_equals_the_reference(dev_corpus):
    texts = _pages(dev_corpus) + _repetitive_texts(2000) + ["".join(WHITESPACE) + "a" + "".join(WHITESPACE)]
    assert [t[:60] for t in texts if split_words(t) != split_words_reference(t)] == []


def test_ngram_signals_equal_the_reference(dev_corpus):
    texts = _pages(dev_corpus)[::4] + _repetitive_texts(2000)
    bad = []
    repeated = 0
    for t in texts:
        words = split_words(t)
        want = ngram_signals_reference(words, len(t))
        repeated += any(v > 0 for v in want[1].values())
        if ngram_signals(words, len(t)) != want or ngram_signals(words, len(t), Counter(words)) != want:
            bad.append(t[:60])
    assert bad == []
    assert repeated > 300  # the texts do exercise the duplicate n-grams
