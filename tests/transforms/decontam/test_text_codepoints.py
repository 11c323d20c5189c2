"""The fast code points (NFKC word by word, case folding by table) equal the plain definition,
``unicodedata.normalize("NFKC", text).casefold()``, on every code point, on dev pages and on texts
built to stress the boundaries (combining marks next to spaces and newlines, multi-character folds,
compatibility characters, lone surrogates)."""

from __future__ import annotations

import gzip
import json
import random
import sys
import unicodedata

import numpy as np

from corpusforge.transforms.decontam import text as T
from tests.helpers import SAMPLE_DIR


def _same(text: str) -> bool:
    return np.array_equal(T._codepoints(text), T._codepoints_reference(text))


def test_every_code_point_alone_and_after_a_letter():
    chars = [chr(cp) for cp in range(0x80, sys.maxunicode + 1)]
    # in blocks (one call per 4k characters), each character also after a letter and a space
    for i in range(0, len(chars), 4096):
        block = chars[i : i + 4096]
        assert _same("".join(block)), hex(ord(block[0]))
        assert _same("".join("A" + c + " " for c in block)), hex(ord(block[0]))


def test_fold_table_is_casefold_for_every_code_point():
    table = T._fold_table()
    for cp in range(sys.maxunicode + 1):
        folded = chr(cp).casefold()
        want = ord(folded) if len(folded) == 1 else T._MULTI
        assert table[cp] == want, hex(cp)


def test_nfkc_equals_normalize_at_stable_boundaries():
    rng = random.Random(5)
    pool = list("aeiouAEIOUßİſ \n\t") + [
        "\u0301",
        "\u0308",
        "\u0323",
        "\u00a0",
        "\u2126",
        "\u1100",
        "\u1161",
        "\u11a8",
        "\uac00",
        "\ufb01",
        "\u2122",
        "\u2026",
        "\uff08",
        "\u00bd",
        "\u1e9b",
        "\u0345",
        "\ud800",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))
        assert T._nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text)
        assert _same(text), ascii(text)
    # long lines, which are halved at spaces before normalising
    for _ in range(200):
        text = "".join(rng.choice(pool + ["word"] * 20) for _ in range(rng.randint(200, 1500)))
        assert T._nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text[:80])


def test_same_code_points_on_sample_and_dev_pages(dev_corpus):
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    texts += [json.loads(line)["text"] for line in (SAMPLE_DIR / "articles.jsonl").read_text().splitlines()]
    assert sum(not t.isascii() for t in texts) > 500
    assert [t[:60] for t in texts if not _same(t)] == []
    joined = chr(0x1E).join(texts[:300])  # a batch, as word_hashes_many joins them
    assert _same(joined)
