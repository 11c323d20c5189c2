"""The compiled hashing and look-up (transforms/decontam/_grams.c) against the numpy paths.

A user must get the same contamination verdicts whether the module was built or not (a wheel without
a compiler, a worker with one), so the compiled path is compared hash for hash and hit for hit with
the numpy definitions: on hostile texts (empty, one word, punctuation only, several-character case
folds, text that NFKC changes, other scripts, emoji, lone surrogates, the batch separator, very
long), on every dev page against the eight dev benchmarks, and with ``action: cut``."""

from __future__ import annotations

import gzip
import json
import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from corpusforge.schemas.config import DecontaminationConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms.decontam import index as index_module
from corpusforge.transforms.decontam import text as text_module
from corpusforge.transforms.decontam.stage import Decontaminator
from corpusforge.transforms.decontam.text import word_hashes, word_hashes_docs, word_hashes_many

pytestmark = pytest.mark.skipif(
    text_module._grams is None, reason="transforms/decontam/_grams.c was not compiled here"
)

QUESTION = (
    "Question: A lighthouse keeper climbs 117 steps to the lamp room three times every night. "
    "How many steps does the keeper climb in a week?"
)
SHORT = "Which river flows through the old town of Quedlinburg?"  # 9 words: matched whole
HOSTILE = [
    "",
    "word",
    "  \t\n ",
    "-- ... !!! ???",
    "Straße İstanbul ﬁsh ŉ ΐ ǰ",  # case folds to several characters
    "ﬁne ｆｕｌｌｗｉｄｔｈ ① ² Å e\u0301 \u2026 nbsp\u00a0here",  # NFKC changes these
    "Москва 東京 القاهرة Ελλάδα עברית हिन्दी ไทย 한국어",
    "emoji \U0001f600 math \U0001d400\U0001d401 \U0010ffff",
    "lone \ud800 surrogate \udfff",
    "a\x1eb record\x1eseparator",
    "dik-dik it's co-operate e.g. U.S.A. 1,000.5",
    QUESTION.upper(),
    "x " * 30_000,  # many one-letter words
    ("a" * 5000 + " ") * 20,  # very long words
]


def test_word_hashes_match_numpy_on_hostile_texts():
    hashes, counts = word_hashes_docs(HOSTILE)
    batch = word_hashes_many(HOSTILE)
    assert np.array_equal(hashes, batch.hashes)
    assert counts.tolist() == batch.n_words.tolist() == [word_hashes(t).size for t in HOSTILE]
    assert counts[0] == 0 and counts[1] == 1 and counts[3] == 0


def test_word_hashes_match_numpy_on_random_unicode():
    """Random mixes of ASCII, Latin accents, combining marks, compatibility characters, several-
    character folds, Hangul jamo, astral characters and separators: one text at a time."""
    pool = (
        "aZ09 ,.-'\n\t\x1e"
        "éÉßẞİıŉǰΐﬁﬀ①²Å\u00a0\u2026\u2019"
        "\u0301\u0323\u0308\u093c\u09be\u0bbe"
        "\u1100\u1161\u11a8\uac00"
        "МоскваΣσς東京"
        "\U0001f600\U0001d400\U00010400"
    )
    rng = random.Random(7)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 80))) for _ in range(2000)]
    hashes, counts = word_hashes_docs(texts)
    assert np.array_equal(hashes, np.concatenate([word_hashes(t) for t in texts]))
    assert counts.tolist() == [word_hashes(t).size for t in texts]


def test_nfkc_of_the_unsafe_spans_is_nfkc_of_the_text():
    """_nfkc_compiled normalises only the spans around characters that are not stable starters; on
    random mixes of composing, reordering, compatibility and Hangul characters (and each unsafe BMP
    character between sampled safe ones) it must give ``unicodedata.normalize`` of the whole."""
    pool = (
        "aZe ,.'\n"
        "éÉßİŉǰΐﬁ①²Å\u00a0\u2026\u2019\u0301\u0323\u0308\u0b47\u0b3e\u0cc6\u0cc2\u0cd5"
        "\u1100\u1161\u11a8\uac00\u30ab\uff76\uff9e\u0f73\u0344"
        "\U0001f600\U0001d400\U00011099\U000110ba"
    )
    rng = random.Random(1)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 30))) for _ in range(5000)]
    bitmap = np.unpackbits(np.frombuffer(text_module._unsafe_bitmap(), np.uint8), bitorder="little")
    unsafe = [chr(c) for c in np.flatnonzero(bitmap) if not 0xD800 <= c < 0xE000]
    safe = [chr(c) for c in np.flatnonzero(bitmap == 0)]
    assert 3000 < len(unsafe) < 5000 and "e" in safe and "\u0301" in unsafe and "\u1161" in unsafe
    texts += [x + u + y for u in unsafe for x, y in [rng.sample(safe, 2)]]
    assert [text_module._nfkc_compiled(t) for t in texts] == [unicodedata.normalize("NFKC", t) for t in texts]


def write_bench(path: Path) -> str:
    path.write_text(json.dumps({"q": QUESTION, "s": SHORT, "n": "1 2 3 4 5 6 7 8 9 10 11 12 13 14"}) + "\n")
    return str(path)


def test_lookup_matches_one_document_at_a_time(tmp_path):
    logic = Decontaminator(DecontaminationConfig(benchmarks=[write_bench(tmp_path / "quiz.jsonl")]))
    logic.ready()
    index = logic.index
    texts = [
        "",
        QUESTION,
        "filler words here " + SHORT + " and " + QUESTION.lower() + " " + SHORT,
        SHORT[:-10],  # too short for anything
        " ".join(QUESTION.split()[:12]),  # 12 words of the question ...
        " ".join(QUESTION.split()[12:24]),  # ... and the next 12: never matched across documents
        *HOSTILE,
    ]
    words, n_words = word_hashes_docs(texts)
    doc, start, length, item = index.lookup_docs(words, n_words)
    compiled, python = index_module._grams, None
    index_module._grams = python
    try:
        expected = index.lookup_docs(words, n_words)
    finally:
        index_module._grams = compiled
    assert [a.tolist() for a in (doc, start, length, item)] == [a.tolist() for a in expected]
    assert sorted(set(doc.tolist())) == [1, 2, 6 + HOSTILE.index(QUESTION.upper())]
    assert sorted(set(length.tolist())) == [9, 13]  # the short item whole, the question's 13-grams


@pytest.mark.shared
def test_dev_pages_get_the_same_verdicts(dev_corpus):
    """Every dev page (and the hostile texts) against the eight dev benchmarks: check_batch's
    compiled verdicts equal check's, one page at a time; with ``action: cut`` on the pages that match
    (the others pass untouched either way)."""
    benchmarks = sorted(str(p) for p in (dev_corpus / "benchmarks").glob("*.jsonl"))
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [Document(id=str(i), text=json.loads(line)["text"]) for i, line in enumerate(f)]
    docs += [Document(id=f"hostile-{i}", text=t) for i, t in enumerate(HOSTILE)]
    for action in ("reject", "cut"):
        logic = Decontaminator(DecontaminationConfig(benchmarks=benchmarks, action=action))
        logic.ready()
        batched = [v for s in range(0, len(docs), 64) for v in logic.check_batch(docs[s : s + 64])]
        assert batched == [logic.check(d) for d in docs]
        docs = [d for d, v in zip(docs, batched, strict=True) if v.hits]  # the cut round: those that match
        assert len(docs) >= 100  # the dev corpus plants contaminated pages: the comparison saw hits
    assert any(v.cut for v in batched)


def test_numpy_batch_path_stays_the_fallback(tmp_path, monkeypatch):
    """Without the module (a wheel built with CORPUSFORGE_PURE_PYTHON) check_batch takes the numpy
    batch path; it must decide as the compiled one."""
    logic = Decontaminator(DecontaminationConfig(benchmarks=[write_bench(tmp_path / "quiz.jsonl")]))
    logic.ready()
    docs = [Document(id=str(i), text=t) for i, t in enumerate([QUESTION, "x " + SHORT, *HOSTILE])]
    compiled = logic.check_batch(docs)
    monkeypatch.setattr(text_module, "_grams", None)
    monkeypatch.setattr(index_module, "_grams", None)
    assert word_hashes_docs(HOSTILE)[1].tolist() == [word_hashes(t).size for t in HOSTILE]
    assert logic.check_batch(docs) == compiled
    assert [bool(v.rejection) for v in compiled[:2]] == [True, True]


def test_class_table_skips_only_planes_without_any_other_class():
    """The class table leaves the unassigned and private-use planes at "word" without looking; every
    code point there must be one (the whole of Unicode classified one by one, as the definition)."""
    table = text_module._class_table()
    skipped = [cp for lo, hi in text_module._ALL_WORD_PLANES for cp in range(lo, hi)]
    assert all(text_module._class_of(chr(cp)) == text_module._WORD for cp in skipped)
    assert (table[skipped] == text_module._WORD).all()
    assert table[ord(" ")] == text_module._SPACE and table[ord("-")] == text_module._DELETE
    assert table[0xE0001] == text_module._DELETE  # LANGUAGE TAG (Cf), in plane 14: still classified
