"""The compiled n-gram walk (transforms/language/_ngrams.c) against the pure-Python path.

The compiled walk replaced the per-word memo as the default where it is built; a user must get the
same ``lang`` and ``lang_score`` either way (a wheel without a compiler, a worker with one), so
both paths are compared float for float: on hand-made edge cases of langdetect's walk, on the dev
pages, and against langdetect's own n-gram list."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from corpusforge.transforms.language import naive_bayes
from corpusforge.transforms.language.stage import sample_text

pytestmark = pytest.mark.skipif(
    naive_bayes._ngrams is None, reason="transforms/language/_ngrams.c was not compiled here"
)

EDGE_CASES = [
    "",
    "   ",
    "!!! ??? ...",
    "a",
    "a b c d e",
    "double  spaces   between    words",
    " leading and trailing ",
    "NASA and the UNESCO HQ met ABCdef aBC AbC",  # the capital-word rule
    "ÉCOLE Ünïcödé ÀÉÎÕÜ straße İstanbul ǅemal",  # upper case outside ASCII, a title-case letter
    "Tiếng Việt có dấu: người, được, những",  # Vietnamese (normalize_vi)
    "Москва является столицей России. Moscow is big.",  # mostly Cyrillic: Latin letters dropped
    "日本語のテキストと한국어 텍스트 そして中文文本",
    "emoji \U0001f600\U0001f601 and math \U0001d400\U0001d401 outside the BMP",
    "mail me at someone@example.com or see https://example.com/page?x=1 now",
    "ThisIsAVeryLongCamelCaseWordThatGoesOnAndOnForMoreThanOneHundredAndTwentyEightCharactersSoThat"
    "ItsNgramRowsAreMoreThanAnyShortWordHasAndStillMoreAndMoreAndMoreCharacters",
    "word",  # one word, no space after it
    "Cafe\u0301 \u2014 \u201cquoted\u201d \u00a0nbsp\u00a0 tab\there\nnewline\r\nend  ",
    "\u0645\u0631\u062d\u0628\u0627 \u06cc\u06a9 \u0628\u0647 \u0639\u0631\u0628\u064a",  # Farsi yeh
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 \u0939\u093f\u0928\u094d\u0926\u0940 \u10e5\u10d0\u10e0",
    "\x00\x01 control \ud800 lone surrogate \U0010ffff",
    # long: Vietnamese marks around langdetect's 10,000-character cut (normalize_vi runs before it)
    "Vie\u0302\u0323t Nam " * 900 + "a\u0301 " * 200,
    "spaces   everywhere " * 700,  # runs of spaces past the cut, which langdetect collapses after it
]


@pytest.fixture(scope="module")
def both() -> tuple[naive_bayes.NaiveBayesLanguageDetector, naive_bayes.NaiveBayesLanguageDetector]:
    """(compiled, pure Python): the module is read when a detector is built."""
    compiled = naive_bayes.NaiveBayesLanguageDetector()
    module, naive_bayes._ngrams = naive_bayes._ngrams, None
    try:
        python = naive_bayes.NaiveBayesLanguageDetector()
    finally:
        naive_bayes._ngrams = module
    assert compiled._compiled is not None and python._compiled is None
    return compiled, python


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_give_the_same_floats(both, text):
    compiled, python = both
    assert compiled.detect(text) == python.detect(text)
    assert compiled.detect(text) == compiled._detect_compiled_reference(text)


def test_normalisation_table_is_langdetects():
    """score_words normalises through the table; every BMP character must map as NGram.normalize
    maps it, and the characters above the BMP must be ones it keeps."""
    from langdetect.utils.ngram import NGram

    table = naive_bayes.normalisation_table()
    assert table.shape == (0x10000,)
    assert table[ord("!")] == ord(" ") and table[0x3044] == 0x3042  # punctuation, hiragana
    sample = [*range(0, 0x10000, 7), 0x219, 0x21B, 0x6CC, 0x1EA5, 0x30A4, 0xAC01]
    assert all(chr(table[cp]) == NGram.normalize(chr(cp)) for cp in sample)
    assert all(NGram.normalize(chr(cp)) == chr(cp) for cp in (0x10000, 0x1F600, 0x1D400, 0x10FFFF))


@pytest.mark.shared
def test_a_full_memo_gives_the_same_floats(both, dev_corpus):
    """A memo far too small for the text (compacted again and again, words dropped and kept) must
    not change one float: the memo only saves work."""
    compiled, python = both
    small = naive_bayes.NaiveBayesLanguageDetector()
    small._memo = naive_bayes._ngrams.new_memo(len(small.languages), 16)
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [
            sample_text(json.loads(line)["text"], 1500, 3) for line, _ in zip(f, range(200), strict=False)
        ]
    texts += EDGE_CASES
    assert [small.detect(t) for t in texts] == [compiled._detect_compiled_reference(t) for t in texts]
    assert [small.detect(t) for t in texts[:50]] == [python.detect(t) for t in texts[:50]]


def test_memo_refuses_a_foreign_buffer(both):
    compiled, _ = both
    n = len(compiled.languages)
    args = (compiled._hash_table, compiled._gram_logs, compiled._normalise)
    with pytest.raises(ValueError, match="memo"):
        naive_bayes._ngrams.score_words("a", *args, bytearray(64), np.empty(n))
    with pytest.raises(ValueError, match="memo"):
        naive_bayes._ngrams.score_words("a", *args, naive_bayes._ngrams.new_memo(n + 1, 8), np.empty(n))


def test_no_ngrams_is_unknown_on_both_paths(both):
    for det in both:
        assert det.detect("!!! 123 ...") == ("unknown", 0.0)


@pytest.mark.shared
def test_dev_pages_give_the_same_floats(both, dev_corpus):
    compiled, python = both
    with gzip.open(dev_corpus / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [sample_text(json.loads(line)["text"], 1500, 3) for line in f]
    new = [compiled.detect(t) for t in texts]
    assert [t[:60] for t, n in zip(texts, new, strict=True) if n != python.detect(t)] == []
    assert [
        t[:60] for t, n in zip(texts, new, strict=True) if n != compiled._detect_compiled_reference(t)
    ] == []
    assert len(texts) > 1000


@pytest.mark.parametrize("text", EDGE_CASES)
def test_walk_finds_langdetects_own_ngrams(both, text):
    """The n-grams the compiled walk sums are langdetect's (its Detector's ``_extract_ngrams`` on
    the same prepared text): the same count and, up to the order of the additions, the same sums."""
    from langdetect.detector import Detector

    compiled, _ = both
    prepared = compiled._prepare(text)
    det = Detector(naive_bayes.build_factory(0))
    det.text = prepared  # already cleaned as langdetect's append + cleaning_text would
    grams = det._extract_ngrams()
    scores = np.empty(len(compiled.languages))
    found = naive_bayes._ngrams.score(
        prepared.translate(compiled._table), compiled._hash_table, compiled._gram_logs, scores
    )
    assert found == len(grams)
    if grams:
        rows = [compiled._gram_row[g] for g in grams]
        expected = [math.fsum(col) for col in compiled._gram_logs[rows].T]
        assert scores.tolist() == pytest.approx(expected, rel=1e-12)


def test_latin_counts_match_langdetects_patterns():
    for text in EDGE_CASES + ["[A-z] brackets ^_` count as Latin, ẞ Ỳ do not count as non-Latin"]:
        assert naive_bayes._ngrams.latin_counts(text) == (
            len(naive_bayes._LATIN.findall(text)),
            len(naive_bayes._NON_LATIN.findall(text)),
        )


def test_table_refuses_what_it_cannot_hold():
    with pytest.raises(ValueError, match="not 1-3 characters"):
        naive_bayes._ngrams.build_table({"abcd": 0})
    with pytest.raises(TypeError):
        naive_bayes._ngrams.build_table({1: 0})
    table = naive_bayes._ngrams.build_table({"a": 5})
    with pytest.raises(ValueError, match="outside logs"):
        naive_bayes._ngrams.score("a", table, np.zeros((2, 3)), np.empty(3))


def test_profile_probabilities_are_langdetects_factory():
    """The tables built in numpy from the profile files are langdetect's DetectorFactory's, float
    for float and in its n-gram order: the detector's scores depend on nothing else."""
    languages, gram_row, probabilities = naive_bayes.profile_probabilities()
    ref_languages, ref_gram_row, ref_probabilities = naive_bayes.profile_probabilities_reference()
    assert languages == ref_languages and len(languages) == 55
    assert list(gram_row.items()) == list(ref_gram_row.items())
    assert probabilities.view(np.uint64).tobytes() == ref_probabilities.view(np.uint64).tobytes()


def test_both_walks_refuse_buffers_that_do_not_fit_together(both):
    """The two entry points share one buffer check: each names itself and what does not fit, instead of
    reading past a table or an output row that is too short."""
    compiled, _ = both
    n_lang = len(compiled.languages)
    short_out = np.empty(n_lang - 1)  # one language short: logs' rows no longer divide by it
    with pytest.raises(ValueError, match="^score: table, logs and out"):
        naive_bayes._ngrams.score("abc", compiled._hash_table, compiled._gram_logs, short_out)
    args = (compiled._hash_table, compiled._gram_logs, compiled._normalise, compiled._memo)
    with pytest.raises(ValueError, match="^score_words: table, logs and out"):
        naive_bayes._ngrams.score_words("abc", *args, short_out)
    with pytest.raises(ValueError, match="^score_words: norm is not"):
        naive_bayes._ngrams.score_words("abc", args[0], args[1], b"\0" * 8, args[3], np.empty(n_lang))
    scores = np.empty(n_lang)  # and the right buffers still score
    assert naive_bayes._ngrams.score_words("abc", *args, scores) > 0
