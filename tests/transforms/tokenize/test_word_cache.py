"""The word cache gives exactly the ids the tokenizers library gives, on real and hostile text."""

from __future__ import annotations

import gzip
import json
import random
import re
import unicodedata

import pytest
from tokenizers import AddedToken, Tokenizer

from corpusforge.schemas.config import load_config
from corpusforge.transforms.tokenize import compiled_cache, pretokenize_rules, word_cache
from corpusforge.transforms.tokenize.loading import load_tokenizer
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer
from corpusforge.transforms.tokenize.word_cache import byte_level_alphabet, word_cache_encoder
from tests.helpers import DEV, SHARED, sample_texts

TOKENIZERS = SHARED / "data" / "tokenizers"
NEOX = TOKENIZERS / "gpt-neox-20b.tokenizer.json"
LLAMA = TOKENIZERS / "llama.tokenizer.json"
needs_neox = pytest.mark.skipif(not NEOX.exists(), reason="../shared/data/tokenizers is not available")

HOSTILE = [
    "",
    " ",
    "     ",
    "a  b   c    d" + " " * 30 + "e",  # runs of spaces (NeoX has them as added tokens)
    "  leading and trailing  ",
    "tabs\tand\t\tnew\nlines\n\n\n  indented\r\n",
    "I'M here, you're there; we'll've done it. 'S 's 'd 'LL don't",
    "numbers 1234567 3.14159 1,000,000 ²³ ½ cup ¾ Ⅱ Ⅻ 〇 ①②③ ₂O x⁴",
    "ideographic\u3000space, nbsp\u00a0here, thin\u2009space, nel\u0085, line\u2028sep, ogham\u1680x",
    "control chars \x1c\x1d\x1e\x1f are not white space to Unicode \x0b\x0c",
    "emoji 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 and ZWJ\u200d and ZWNJ\u200c",
    "हिन्दी में लिखा गया पाठ। العربية مع التشكيل: كَتَبَ. 中文没有空格，日本語もです。한국어 문장",
    "combining: e\u0301 (not NFC) and \u00e9 (NFC), a\u0308o\u0308, Å vs A\u030a",
    "lone marks \u0301\u0302 after space and \u20dd enclosing",
    "special token in text: <|endoftext|> and <|padding|> should stay text",
    "placeholders |||IP_ADDRESS||| and |||EMAIL_ADDRESS|||, |||PHONE_NUMBER|||x",
    "underscores__and_snake_case_names, __dunder__, ___",
    "mixed123abc 12abc abc12 ½abc abc½ ²a",
    "punctuation!!! ??? ... --- ''' \"\"\" ((( )))  !  ! !",
    "\n\n\n",
    "x" * 5000,
    "long " * 2000,
    "Ωμέγα Ελληνικά, Кириллица текст, עברית טקסט, ไทยไม่มีช่องว่าง",
    "private use \ue000\uf8ff and noncharacter \ufdd0 and high plane \U0001d400\U0001f600",
    "soft\u00adhyphen, zero\u200bwidth, bidi\u202emarks\u202c",
]


COMPILED = compiled_cache._pretokenize is not None


@pytest.fixture(params=["compiled", "python"])
def implementation(request, monkeypatch):
    """Each id-equality test runs on both paths: the compiled split and look-up (when the C module
    was built) and the pure-Python one, which takes over where it cannot be."""
    if request.param == "compiled" and not COMPILED:
        pytest.skip("transforms/_pretokenize.c was not compiled here")
    if request.param == "python":
        monkeypatch.setattr(compiled_cache, "_pretokenize", None)
    return request.param


@pytest.fixture
def python_path(monkeypatch):
    """Tests of the pure-Python path's own machinery (regex splitters, per-splitter probes)."""
    monkeypatch.setattr(compiled_cache, "_pretokenize", None)


def _library_ids(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def _cached_ids(encoder, texts: list[str], batch: int = 64) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), batch):
        out += encoder.encode_batch(texts[i : i + batch])
    return out


def _fuzz_texts(n: int, seed: int) -> list[str]:
    """Random strings over a pool of characters of every class the pre-tokenizer distinguishes."""
    pool = list("aZé 1 9_'s't!?.,-\t\n  ²½Ⅱ\u3000\u00a0\u0301\u200d👍中ह\x1c|<>") + [
        "  ",
        "'ll",
        "'re",
        "<|endoftext|>",
        "|||IP_ADDRESS|||",
    ]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 60))) for _ in range(n)]


def test_byte_level_alphabet_is_the_one_the_library_uses():
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = byte_level_alphabet()
    assert len(set(alphabet)) == 256 and sorted(alphabet) == sorted(ByteLevel.alphabet())
    assert alphabet[ord(" ")] == "Ġ" and alphabet[ord("\n")] == "Ċ" and alphabet[ord("a")] == "a"


def test_default_tokenizer_same_ids_on_the_sample_hostile_and_fuzzed_text(implementation):
    tok = load_tokenizer(None)
    encoder = word_cache_encoder(tok)
    assert encoder is not None
    texts = sample_texts(utf8_only=True) + HOSTILE + _fuzz_texts(3000, seed=7)
    assert len(texts) > 3000
    assert _cached_ids(encoder, texts) == _library_ids(tok, texts)
    # both paths were exercised: texts that spell a special token or are not NFC went to the library
    assert 500 < encoder.library_docs < len(texts) - 1000
    before = encoder.library_docs
    encoder.encode_batch(["plain text", "x\x1cy ²", "<|endoftext|>", "e\u0301"])
    assert encoder.library_docs == before + 2


@needs_neox
def test_neox_same_ids_with_its_added_space_tokens_and_placeholders(implementation):
    tok = load_tokenizer(str(NEOX))
    encoder = word_cache_encoder(tok)
    assert encoder is not None
    texts = sample_texts(utf8_only=True) + HOSTILE + _fuzz_texts(3000, seed=11)
    assert _cached_ids(encoder, texts) == _library_ids(tok, texts)
    # a placeholder is one added token, also through the cache
    (ids,) = encoder.encode_batch(["call |||PHONE_NUMBER||| now"])
    assert tok.token_to_id("|||PHONE_NUMBER|||") in ids


@pytest.fixture(scope="module")
def dev_pages_and_neox_ids(dev_corpus) -> tuple[list[str], list[list[int]]]:
    """Every dev page, NFC-normalized as the normalize stage hands it over, and the ids the tokenizers
    library gives them with GPT-NeoX, by a tokenizer of its own. The expected ids do not depend on
    which cached path is under test, so the compiled and the Python path compare against one
    encoding of the 10 MB corpus (~10 s of CPU alone; the two tests together saved ~1.3 CPU s in
    the suite, measured under load, so most of the second encoding was cheap already)."""
    with gzip.open(DEV / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [unicodedata.normalize("NFC", json.loads(line)["text"]) for line in f]
    return texts, _library_ids(load_tokenizer(str(NEOX)), texts)


@pytest.mark.slow  # multi-process pipeline runs / the whole dev corpus
@needs_neox
def test_neox_same_ids_on_real_web_pages_in_many_languages(dev_pages_and_neox_ids, implementation):
    texts, library_ids = dev_pages_and_neox_ids
    encoder = word_cache_encoder(load_tokenizer(str(NEOX)))
    assert len(texts) == len(library_ids) > 1000
    assert _cached_ids(encoder, texts, batch=256) == library_ids
    assert encoder.library_docs == 0  # normalized web text never needs the library


def test_a_bounded_cache_gives_the_same_ids(monkeypatch, implementation):
    monkeypatch.setattr(word_cache, "MAX_CACHED_WORDS", 50)
    tok = load_tokenizer(None)
    encoder = word_cache_encoder(tok)
    texts = sample_texts(utf8_only=True)
    assert _cached_ids(encoder, texts, batch=8) == _library_ids(tok, texts)
    assert len(encoder._cache) < 50 + 8 * 2000  # emptied whenever it passed the bound


def test_user_added_tokens_are_cut_out_like_the_library_does(implementation):
    tok = load_tokenizer(None)
    tok.add_tokens(
        [
            AddedToken("foo bar", normalized=False),
            AddedToken("ba", normalized=True),
            AddedToken("r b", normalized=True),
        ]
    )
    encoder = word_cache_encoder(tok)
    assert encoder is not None
    texts = [
        "foo bar baz",
        "foofoo barbar bar bar",
        "xfoo barx r bar b",
        "ba ba  ba",
        "foo bar" * 5,
    ] + _fuzz_texts(200, 3)
    assert _cached_ids(encoder, texts) == _library_ids(tok, texts)


def test_tokenizers_of_another_shape_are_left_to_the_library(tmp_path):
    tok = load_tokenizer(None)
    tok.add_tokens([AddedToken("zz", lstrip=True)])
    assert word_cache_encoder(tok) is None  # lstrip is not reproduced
    plain = Tokenizer.from_str(load_tokenizer(None).to_str())  # special tokens extracted, not text
    assert word_cache_encoder(plain) is None
    if LLAMA.exists():
        assert word_cache_encoder(load_tokenizer(str(LLAMA))) is None  # Metaspace / SentencePiece


def test_stage_uses_the_cache_by_default_and_config_can_turn_it_off():
    assert DocumentTokenizer(None, None, 0, word_cache=True).uses_word_cache
    assert not DocumentTokenizer(None, None, 0, word_cache=False).uses_word_cache
    cfg = load_config(None, ["tokenize.word_cache=false"])
    assert cfg.tokenize.word_cache is False
    texts = HOSTILE
    on = DocumentTokenizer(None, None, 0, word_cache=True).encode(texts)
    off = DocumentTokenizer(None, None, 0, word_cache=False).encode(texts)
    assert on == off and all(ids[-1] == 0 for ids in on)


@needs_neox
def test_a_split_the_character_probes_cannot_see_fails_the_self_check(monkeypatch, caplog, python_path):
    """A pattern that forgets the "'ll" contraction classes every character right; only whole text
    shows the difference (with NeoX, whose vocabulary has "'ll"), and the cache is then not used."""
    quick, exact = word_cache.gpt2_patterns()
    broken = tuple(re.compile(p.pattern.replace("|ll|", "|")) for p in (quick, exact))
    assert broken[0].pattern != quick.pattern
    monkeypatch.setattr(word_cache, "gpt2_patterns", lambda: broken)
    assert word_cache_encoder(load_tokenizer(str(NEOX))) is None
    assert "using the library" in caplog.text
    assert not DocumentTokenizer(str(NEOX), None, 0, word_cache=True).uses_word_cache  # the stage falls back


def test_added_tokens_trie_finds_the_leftmost_longest_token_like_an_ordered_alternation():
    contents = ["ab", "abcd", "b", "bc", "bcd", "c", "  ", "   ", "     ", "x|y"]
    ordered = sorted(contents, key=lambda s: (-len(s), s))
    alternation = re.compile("(" + "|".join(re.escape(s) for s in ordered) + ")")
    trie = pretokenize_rules._LiteralSplitter(contents)
    rng = random.Random(5)
    texts = ["".join(rng.choice("abcdx|y  ") for _ in range(rng.randint(0, 40))) for _ in range(2000)]
    texts += ["abcd", "abc", "abcabcd", "      ", "bcbcd", "x|yx|"]
    assert [trie.split(t) for t in texts] == [alternation.split(t) for t in texts]
    assert trie.split("abcdab c") == ["", "abcd", "", "ab", " ", "c", ""]


def test_new_words_holding_a_nul_are_mapped_one_by_one(implementation):
    encoder = word_cache_encoder(load_tokenizer(None))
    words = ["plain", "nul\x00inside", "\x00", " é", "Ā"]  # "Ā" is what byte 0 maps to
    assert encoder._map_all(words) == [encoder._map(w) for w in words]
    assert encoder._map_all(["a", " b"]) == [encoder._map("a"), encoder._map(" b")]
    texts = ["a\x00b \x00\x00 c", "Ā\x00Ā"]
    tok = load_tokenizer(None)
    assert encoder.encode_batch(texts) == _library_ids(tok, texts)


def test_a_character_is_probed_against_the_library_even_when_one_like_it_passed(python_path):
    """ "é" and "²" are alike to the quick splitter (both word characters that are not digits), so
    its side of the probes is computed once for both; the library still tells them apart."""
    encoder = word_cache_encoder(load_tokenizer(None))
    encoder._verify_chars(["é", "²", "ß", "½"])
    quick, exact = 0, 1
    assert {"é", "ß"} <= encoder._agrees[quick] and {"é", "ß"} <= encoder._agrees[exact]
    assert {"²", "½"} <= encoder._disagrees[quick]  # a number to the library, a letter to quick
    assert {"²", "½"} <= encoder._agrees[exact]


def test_a_very_long_added_token_is_still_cut_out(implementation):
    tok = load_tokenizer(None)
    long_token = "=" * 300 + "end"
    tok.add_tokens([AddedToken(long_token, normalized=False), AddedToken("==", normalized=False)])
    encoder = word_cache_encoder(tok)
    assert encoder is not None
    texts = [f"before {long_token} after", "=" * 301 + "end", "== = ==="]
    assert encoder.encode_batch(texts) == _library_ids(tok, texts)


needs_compiled = pytest.mark.skipif(not COMPILED, reason="transforms/_pretokenize.c was not compiled here")


@needs_compiled
def test_the_compiled_path_is_the_default_where_it_was_built():
    encoder = word_cache_encoder(load_tokenizer(None))
    assert isinstance(encoder, compiled_cache.CompiledWordCacheEncoder)


@needs_compiled
def test_a_character_classed_otherwise_than_the_library_is_refused_and_goes_to_the_library(monkeypatch):
    """If Unicode's class for a character (as this Python knows it) split text unlike the
    library, its probes catch it: documents holding it are encoded by the library, the same ids."""
    real = compiled_cache.unicode_class

    def wrong_for_e_acute(c, classes):
        return classes.OTHER if c == "é" else real(c, classes)

    monkeypatch.setattr(compiled_cache, "unicode_class", wrong_for_e_acute)
    tok = load_tokenizer(None)
    encoder = word_cache_encoder(tok)
    texts = ["café crème", "plain words", "naïve résumé", "é"]
    assert encoder.encode_batch(texts) == _library_ids(tok, texts)
    assert encoder.library_docs == 3  # the three holding "é"; "naïve" alone would not be
    assert encoder._table[ord("é")] == compiled_cache._pretokenize.REFUSED


@needs_compiled
def test_a_compiled_module_that_errs_fails_the_self_check(monkeypatch, caplog):
    """Should the C look-up ever disagree with the library (a bug, a stale build), the self-check
    on tricky text catches it before the first document and the stage uses the library."""
    real = compiled_cache._pretokenize

    class DropsTheLastId:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def lookup(text, table, cache):
            got = real.lookup(text, table, cache)
            return got[:-1] if isinstance(got, list) and len(got) > 3 else got

    monkeypatch.setattr(compiled_cache, "_pretokenize", DropsTheLastId())
    assert word_cache_encoder(load_tokenizer(None)) is None
    assert "using the library" in caplog.text


def _random_unicode_texts(n: int, seed: int) -> list[str]:
    """Strings of code points drawn from all of Unicode (no surrogates), mixed with spaces, ASCII
    and apostrophes: every class, script and plane the split must get right."""
    rng = random.Random(seed)
    planes = [
        (0x20, 0x2FFF),
        (0x3000, 0xD7FF),
        (0xE000, 0xFFFD),
        (0x10000, 0x1FFFF),
        (0x20000, 0x3134F),
        (0xE0000, 0xE01EF),
    ]

    def char() -> str:
        roll = rng.random()
        if roll < 0.3:
            return rng.choice(" '  sdtmlrev\n\t")
        if roll < 0.5:
            return chr(rng.randint(0x20, 0x7E))
        lo, hi = rng.choice(planes)
        return chr(rng.randint(lo, hi))

    return ["".join(char() for _ in range(rng.randint(0, 50))) for _ in range(n)]


@needs_neox
def test_same_ids_on_code_points_from_all_of_unicode(implementation):
    tok = load_tokenizer(str(NEOX))
    encoder = word_cache_encoder(tok)
    texts = [unicodedata.normalize("NFC", t) for t in _random_unicode_texts(3000, seed=13)]
    assert _cached_ids(encoder, texts) == _library_ids(tok, texts)
    assert encoder.library_docs < len(texts) // 2  # most of them took the cache's path
