"""The compiled quality signals (transforms/quality/_signals.c) against the pure-Python reference.

A user must get the same ``quality_signals`` and the same verdicts whether or not the C module was
built (a wheel without a compiler, a worker with one), so every field is compared by type and by
the float's exact bits (``float.hex``): on every dev page, on scale-corpus pages, on the sample, on
hostile texts (empty, whitespace of every kind, CRLF, tabs, punctuation-only lines, very long words,
surrogates, citation markers, look-alike letters in the C4 phrases) and, for the character classes
the C code re-implements, on every code point."""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from corpusforge.schemas.records import QualitySignals
from corpusforge.transforms.quality import signals
from corpusforge.transforms.quality.signals import (
    _PUNCT,
    BULLETS,
    C4_POLICY_SUBSTRINGS,
    TERMINAL_PUNCT,
    compute_signals,
    compute_signals_reference,
    split_words_reference,
)
from corpusforge.transforms.quality.stopwords import STOP_WORDS, stop_words_for
from tests.helpers import SHARED, sample_texts

pytestmark = pytest.mark.skipif(
    signals._signals is None, reason="transforms/quality/_signals.c was not compiled here"
)

# (short_line_length, c4_min_words_per_line, c4_terminal_punct): the defaults, and the other
# branches of C4's line rules
PARAMS = [(30, 5, False), (10, 3, True), (0, 0, True), (200, 0, False)]
STOP_SETS = [STOP_WORDS["en"], stop_words_for("de"), frozenset(), frozenset({"the", "ÉTÉ", "straße"})]
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# Planes 0-3 and the tags block: every assigned code point and the surrogates; the unassigned and
# private-use planes beyond, sampled (CPython's tables class them all alike)
CODE_POINTS = [*range(0x40000), *range(0xE0000, 0xE1000), *range(0x40000, sys.maxunicode + 1, 97)]


def exact(s: QualitySignals) -> tuple:
    """Every field by type and value, floats by their exact bits."""
    return tuple(
        (f.name, type(v).__name__, v.hex() if isinstance(v, float) else v)
        for f, v in zip(dataclasses.fields(s), dataclasses.astuple(s), strict=True)
    )


def differences(text: str, stop_words: frozenset[str], params: tuple[int, int, bool]) -> list:
    """The fields (name, compiled, reference) where the two paths disagree on one text."""
    got = exact(compute_signals(text, stop_words, *params))
    want = exact(compute_signals_reference(text, stop_words, *params))
    return [(g[0], g[2], w[2]) for g, w in zip(got, want, strict=True) if g != w]


def check_all(texts: list[str]) -> list:
    """(start of text, differing fields) for each text that differs; each text gets one of the
    parameter sets and stop-word sets in turn (every one is used, the run stays short)."""
    bad = []
    for i, text in enumerate(texts):
        diff = differences(text, STOP_SETS[i % len(STOP_SETS)], PARAMS[(i // len(STOP_SETS)) % len(PARAMS)])
        if diff:
            bad.append((text[:60], diff))
    return bad


def read_texts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_every_dev_and_sample_page_gets_the_reference_signals(dev_corpus):
    samples = sample_texts()
    assert len(samples) > 50
    texts = read_texts(dev_corpus / "docs.jsonl.gz") + samples
    assert check_all(texts) == []


def test_scale_corpus_pages_get_the_reference_signals(dev_corpus, tmp_path):
    """The scale corpus (pages recombined from dev paragraphs, near and exact copies, junk), as
    the benchmarks and the 8k full run use it."""
    out = tmp_path / "scale.jsonl.gz"
    make = SHARED / "tools" / "make_scale_corpus.py"
    subprocess.run(
        [sys.executable, str(make), "--docs", "150", "--seed", "11", "--out", str(out)], check=True
    )
    texts = read_texts(out)
    assert len(texts) == 150
    assert check_all(texts) == []


HOSTILE = [
    "",
    " ",
    "\n",
    "\n\n\n",
    "".join(WHITESPACE),
    "".join(WHITESPACE) + "a" + "".join(WHITESPACE),
    "line one\r\nline two\r\n\r\nline three.\r\n",
    "\tTabbed\tline\twith\ttabs.\t\n\t\n\tSecond\tparagraph.",
    "... !!! ??? --- ***\n---\n...\n• • •\n\u2026",
    "a" * 100_000,
    ("word " * 20_000).strip(),
    "x" * 5000 + " " + "y" * 5000 + "\n" + "x" * 5000,
    "Ünïcödé ÉCOLE straße İstanbul ǅemal ΣΊΣΥΦΟΣ ΌΣΟΣ ǈǋ Ⅻ ⅻ ² ½ ٣ ४",
    "日本語のテキスト。中文文本！한국어 텍스트？ そして…",
    "emoji \U0001f600\U0001f601 and math \U0001d400\U0001d401 outside the BMP",
    "lone \ud800 surrogates \udfff and \ud83d odd \uffff \U0010ffff \x00 \x1c\x1d\x1e\x1f\x85 points",
    "Ends with a citation.[3]\nAnd another one.[12][13]\nA claim[citation needed]\nSee also [edit]\n"
    "Odd marker.[a]\nArabic digits.[٣]\n[1] starts here and ends well.\n[[2]] nested.\n[]",
    "Wikipedia style line one has enough words here.[3]\nLine two also has enough words.[edit]\n"
    "Line three has enough words, they say.[citation needed]",
    "This page uses coo\u212aies (a Kelvin sign) to work.\nUSE OF COOKIES is covered.\n"
    "JAVASCRİPT with a dotted capital I is needed.\nPlease enable JavaScript in your browser now.\n"
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\nLOREM İPSUM is not matched there.\n"
    "Read our Terms of Use and Privacy Policy and the Cookie Policy today.",
    "function f() { return 1; } is code with a brace in a long line.\nanother { brace here too ok",
    "Ã© and Ã¨ and â€™ and Ã\u0080 are mojibake; Café is not. â€œquotedâ€\u009d ðŸ˜€",
    "#hash #tags ... and .... and ..... and ...... ellipses… ……",
    'Sentence one.Sentence two!Three? four. Five… "Quoted." (Paren.) [Bracket.] ’Tis.”\n'
    'No end here\nEnds with closing marks.")]\n??? !!! ...',
    "- bullet one\n* bullet two\n• bullet three\n· middle dot\n– en dash\n— em dash\n▶ play",
    "same line\nsame line\n  same line  \nother line\nsame line",
    "para one\n\npara one\n \n\t\npara two\n\n\n\npara one\n\u2028\u2029\n\npara one",
    "A B C D A B C D A B C D",
    "the the the the the the the the the the the the",
    "THE CAT SAT ON THE MAT. IT IS ALL CAPS HERE. Ok A I X.",
    "_under_ __dunder__ 3rd 1st ½ ²nd ٣x x٣ Ⅷ",
]


def test_hostile_texts_get_the_reference_signals():
    bad = []
    for text in HOSTILE:
        for k, params in enumerate(PARAMS):  # every parameter set, each with another stop-word set
            stop_words = STOP_SETS[k]
            if diff := differences(text, stop_words, params):
                bad.append((text[:40], params, diff))
    assert bad == []


def _random_texts(n: int, seed: int = 17) -> list[str]:
    """Texts made of the pieces every signal reacts to, in random order and spacing: repeated word
    runs (n-grams), bullets, terminal marks, citation markers, C4 phrases in odd casings, mojibake,
    Unicode whitespace and newlines (lines, paragraphs)."""
    rng = random.Random(seed)
    pieces = [
        *"the cat sat on mat Zoë ÉTÉ straße NASA IT x y".split(),
        *BULLETS,
        *TERMINAL_PUNCT,
        *rng.sample(_PUNCT, 12),
        *C4_POLICY_SUBSTRINGS,
        "[3]",
        "[edit]",
        "[citation needed]",
        "[",
        "]",
        "{",
        "lorem ipsum",
        "JavaScript",
        "coo\u212aie policy",  # KELVIN SIGN: lower() makes it a 'k'
        "COOKIE POLICY",
        "Ã©",
        "â€™",
        "...",
        "\u2026",
        "#",
        "Kelvin\u212a",
        "\u0130",
        "\ud800",
        "A.",
        "b!",
    ]
    out = []
    for _ in range(n):
        words = [rng.choice(pieces) for _ in range(rng.randint(0, 60))]
        for _ in range(rng.randint(0, 3)):  # repeat runs of 1-12 pieces, sometimes back to back
            if len(words) > 2:
                i = rng.randrange(len(words))
                run = words[i : i + rng.randint(1, 12)]
                j = rng.randrange(len(words) + 1)
                words[j:j] = run * rng.randint(1, 3)
        seps = rng.choices(
            [" ", " ", " ", "", "\n", "\n\n", " \n \n", "\r\n", "\t", *WHITESPACE], k=len(words)
        )
        text = "".join(w + s for w, s in zip(words, seps, strict=True))
        if rng.random() < 0.3:  # a repeated paragraph
            text = f"{text}\n\n{text.split(chr(10))[0]}\n \n{text}"
        out.append(text)
    return out


def test_random_hostile_texts_get_the_reference_signals():
    texts = _random_texts(1000)
    assert check_all(texts) == []
    # the texts do reach the branches: repeated n-grams, kept C4 lines, citations, paragraphs
    sigs = [compute_signals(t, STOP_WORDS["en"], 30, 3, False) for t in texts]
    assert sum(s.dup_10gram_char_frac > 0 for s in sigs) > 50
    assert sum(s.c4_sentences > 1 for s in sigs) > 50
    assert sum(s.dup_para_frac > 0 for s in sigs) > 50
    assert sum(s.c4_javascript_lines_frac > 0 for s in sigs) > 50


def test_every_code_point_splits_as_str_split_and_strip():
    """Each code point before and after a letter: a different whitespace or punctuation set in C
    would split or strip some token differently, at a position the lists show."""
    text = " ".join(f"{chr(c)}a a{chr(c)}" for c in CODE_POINTS)
    got, want = signals.split_words(text), split_words_reference(text)
    assert len(got) == len(want)
    assert [(i, g, w) for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w][:5] == []


def test_every_code_point_counts_as_letter_and_capital_as_python_does():
    """The two classes the C code composes from CPython's tables, per block of code points: a word
    has a letter (regex ``[^\\W\\d_]``) and a word is all capitals (``str.isupper``), tried with
    the code point doubled between decimal digits and after an 'A' (upper, lower and uncased)."""
    bad = []
    for i in range(0, len(CODE_POINTS), 4096):
        block = CODE_POINTS[i : i + 4096]
        text = " ".join(f"0{chr(c)}{chr(c)}0 A{chr(c)}" for c in block)
        if diff := differences(text, frozenset(), PARAMS[0]):
            bad.append((hex(block[0]), diff))
    assert bad == []


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_top_ngram_ties_go_to_the_first_to_occur(compiled, monkeypatch):
    """Two bigrams occur twice each: the first to occur is the one measured, whatever its hash,
    its length or its position in the text (expected values worked out by hand)."""
    if not compiled:
        monkeypatch.setattr(signals, "_signals", None)
    long_first = "ab cd e f ab cd e f"  # (ab, cd) 5 characters, twice; (e, f) 3; 19 in all
    short_first = "e f ab cd e f ab cd"
    assert compute_signals(long_first, frozenset()).top_2gram_char_frac == 10 / 19
    assert compute_signals(short_first, frozenset()).top_2gram_char_frac == 6 / 19
    # trigrams: (ab, cd, e) and (cd, e, f) twice each; the first, 7 characters, counts
    assert compute_signals(long_first, frozenset()).top_3gram_char_frac == 14 / 19
