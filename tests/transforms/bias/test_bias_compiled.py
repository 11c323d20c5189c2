"""The compiled word pass (transforms/bias/_bias_match.c) against the pure-Python path.

Where the module is built it is the default; a user must get the same ``bias`` signals either way
(a wheel built without a compiler, a worker with one), so both paths are compared signal for signal
on edge cases of word boundaries, case, punctuation, non-ASCII text and long lines, and on the dev
pages."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from corpusforge.transforms.bias import stage as bias_stage
from corpusforge.transforms.bias.lexicon import Lexicon
from corpusforge.transforms.bias.stage import BiasTagger
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from tests.helpers import DEV

pytestmark = pytest.mark.skipif(
    bias_stage._bias_match is None, reason="transforms/bias/_bias_match.c was not compiled here"
)

TOXIC = "you fucking stupid bitch, shut up you worthless idiot"
LONG_CLEAN = " ".join(["The weather in the valley was calm and pleasant for the whole week."] * 8)

EDGE_CASES = [
    "",
    "\n\n\n",
    "   \t  ",
    "the other there then theme",  # "he" inside words is no match
    "he",
    "He\nshe\n\nHIS hers",
    "SHE said: he's; (his)! [her] {him}?",
    "she’s his—friend “women” men–boys…girls\u00a0wife",  # Unicode punctuation made spaces
    "non-binary Non Binary NON_BINARY nonbinary",
    "café woman naïve man Straße mother 日本語 father",
    "женщина he мужчина she",
    "emoji \U0001f600she\U0001f601 he",
    "muslim\r\nchristian\x0bjewish\x0cbuddhist\ttheir",
    "x" * 200 + " he " + "y" * 9,
    f"My grandmother is a muslim woman.\n{TOXIC}, she said to the muslim",
    f"{LONG_CLEAN} She met a jewish friend there. {TOXIC}, said the muslim.",
    f"{LONG_CLEAN} @user she is a muslim & www.example.com/x he is. {TOXIC}, said the old man! fin?",
    f"{LONG_CLEAN} f*cking stupid b*tch. the muslims are worthless idiots... she? he!",
    f"{LONG_CLEAN}" + " he." * 80,
    f"{LONG_CLEAN} 3.5 women. 2.0 men.\n" * 3,
    # long lines to clean that are not ASCII: cut on code points by the compiled pass
    f"{LONG_CLEAN} “Women” & men’s rights…\u2003she said. {TOXIC}, the christian said.\u3000He left!",
    f"{LONG_CLEAN} café @user naïve woman.\u00a0日本語 man?\x1cshe {TOXIC} # muslim…\u2029he.",
    f"{LONG_CLEAN} \U0001f600 @x she. \ud800 he! the woman www.x.org/a.b? {TOXIC} man",
]


def _taggers(monkeypatch: pytest.MonkeyPatch, **kw) -> tuple[BiasTagger, BiasTagger]:
    lexicon, model = Lexicon.load(), LinearToxicityModel.load()
    compiled = BiasTagger(lexicon, model, **kw)
    monkeypatch.setattr(bias_stage, "_bias_match", None)
    python = BiasTagger(lexicon, model, **kw)
    assert compiled.compiled is not None and python.compiled is None
    return compiled, python


@pytest.mark.parametrize("text", EDGE_CASES)
def test_compiled_and_python_give_the_same_signals_on_edge_cases(monkeypatch, text):
    compiled, python = _taggers(monkeypatch, threshold=0.7)
    assert compiled.tag_many([text]) == python.tag_many([text])


@pytest.mark.parametrize("clean_text", [False, True])
def test_compiled_and_python_agree_without_cleaning_and_with_the_cache(monkeypatch, clean_text):
    """Without the toxicity stage's cleaning a long line is cut at every '.', '!', '?' (the scan's
    own sentences); with the cache, repeated lines come from it: the same signals either way."""
    compiled, python = _taggers(monkeypatch, threshold=0.7, clean_text=clean_text, score_cache=64)
    assert compiled.cache is not None and python.cache is None
    want = python.tag_many(EDGE_CASES)
    assert compiled.tag_many(EDGE_CASES) == want and compiled.cache.hits == 0
    assert compiled.tag_many(EDGE_CASES) == want and compiled.cache.hits > 0  # the second time, cached


def test_edge_cases_are_counted_as_a_reader_would(monkeypatch):
    compiled, _ = _taggers(monkeypatch, threshold=0.7)
    none, one, lines = compiled.tag_many(EDGE_CASES[3:6])
    assert (none.female, none.male, none.words) == (0, 0, 5)  # "the", "other"... hold no "he"
    assert (one.female, one.male) == (0, 1)
    assert (lines.female, lines.male, lines.words) == (2, 2, 4)


def test_compiled_and_python_agree_with_a_non_ascii_lexicon_and_short_units(monkeypatch, tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("female: frau, mère, женщина\nmale: mann, père\nreligion: christ\n", encoding="utf-8")
    lexicon, model = Lexicon.load(path), LinearToxicityModel.load()
    texts = ["Die FRAU und der Mann. Mère et PÈRE.", "ЖЕНЩИНА " * 30 + f". {TOXIC} christ", "frauen männer"]
    compiled = BiasTagger(lexicon, model, threshold=0.5, max_segment_words=4)
    monkeypatch.setattr(bias_stage, "_bias_match", None)
    python = BiasTagger(lexicon, model, threshold=0.5, max_segment_words=4)
    got = compiled.tag_many(texts)
    assert got == python.tag_many(texts)
    assert (got[0].female, got[0].male, got[1].female) == (2, 2, 30)


def test_compiled_and_python_give_the_same_signals_on_the_dev_pages(monkeypatch):
    path = DEV / "docs.jsonl.gz"
    if not path.exists():
        pytest.skip(f"the dev corpus {path} is not here")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line).get("text") or "" for line in f]
    compiled, python = _taggers(monkeypatch, threshold=0.7)
    got = compiled.tag_many(texts)
    assert got == python.tag_many(texts)
    assert sum(s.words for s in got) > 100_000 and sum(sum(s.toxic_mentions.values()) for s in got) > 0


def test_compiled_sentence_cut_is_the_regex_cut():
    """The toxicity stage's sentences of a line (the regex ``_SENTENCE_END``), cut in C on
    code points, give the same pieces, words and mentions as the regex, on lines mixing every
    Unicode space, the punctuation preparation turns into spaces, emoji and lone surrogates."""
    import random

    tagger = BiasTagger(Lexicon.load(), LinearToxicityModel.load())
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace() and chr(c) != "\n"]
    pieces = [*"abc .!?…’“é日", " she ", " he ", " women ", " old man ", "\ud800", "\U0001f600", "@x", "&"]
    rng = random.Random(7)
    checked = 0
    for _ in range(3000):
        line = "".join(rng.choice(pieces + spaces) for _ in range(rng.randint(0, 40)))
        spaced = line
        for p in bias_stage._UNICODE_PUNCT:
            spaced = spaced.replace(p, " ")
        prepared = spaced.encode("utf-8", "replace").translate(bias_stage._TABLE)
        got = tagger._raw_sentences_compiled(line, prepared, 0, len(prepared))
        sentences = bias_stage._SENTENCE_END.split(line)
        want = [
            [s, w, Counter(m), None]
            for s, w, m in (
                (
                    s,
                    bias_stage._prepared(s).split(),
                    tagger.bytes_lexicon.match(bias_stage._prepared(s).split()),
                )
                for s in sentences
            )
            if m
        ]
        names = tagger.label_names
        assert [[s, w, Counter(names[c] for c in m), t] for s, w, m, t in got] == want, repr(line)
        checked += bool(want)
    assert checked > 500
