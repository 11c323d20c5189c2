"""The bias stage's cache of scored lines (``bias.score_cache``): bounded, least recently used out
first, and invisible in the signals (a user gets the same counts with it, without it, and with a
cache so small it evicts all the time)."""

from __future__ import annotations

import gzip
import json

import pytest

from corpusforge.schemas.config import Config, ConfigError, load_config
from corpusforge.transforms.bias import stage as bias_stage
from corpusforge.transforms.bias.cache import LineCache
from corpusforge.transforms.bias.lexicon import Lexicon
from corpusforge.transforms.bias.stage import BiasTagger, _holder
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from tests.helpers import DEV

TOXIC = "you fucking stupid bitch, shut up you worthless idiot"
LONG = " ".join(["The weather in the valley was calm and pleasant for the whole week."] * 8)
# Pages sharing boilerplate lines (a short line, a long clean line cut into sentences, a long
# line with a mention and a URL cut as the toxicity stage cuts it), plus lines of their own.
SHARED = [
    "Contact the webmaster: she answers within a day.",
    f"{LONG} She met a jewish friend there. {TOXIC}, said the muslim.",
    f"{LONG} @user she is a muslim & www.example.com/x he is. {TOXIC}, said the old man! fin?",
    f"{LONG} “Women” and men’s rights… {TOXIC}, the christian said.",
]
PAGES = [
    "\n".join([f"Page {i}: the muslim {'man' if i % 2 else 'woman'} spoke.", *SHARED[i % 4 :], TOXIC + " he"])
    for i in range(12)
]

needs_compiled = pytest.mark.skipif(
    bias_stage._bias_match is None, reason="the cache serves the compiled pass, not compiled here"
)


def test_cache_is_bounded_and_drops_the_least_recently_used():
    cache: LineCache[int] = LineCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert (cache.hits, cache.misses) == (3, 1)
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
    with pytest.raises(ValueError, match="capacity"):
        LineCache(0)


def test_cache_bounds_the_length_of_its_keys():
    cache: LineCache[int] = LineCache(100, max_chars=10)
    cache.put("x" * 11, 1)  # longer than the whole budget: not kept
    assert len(cache) == 0 and cache.chars == 0
    cache.put("aaaa", 1)
    cache.put(b"bbbb", 2)
    cache.put("aaaa", 3)  # replaced, counted once; b"bbbb" is now the least recently used
    assert (len(cache), cache.chars) == (2, 8)
    cache.put("cccc", 4)  # 12 chars: the least recently used goes
    assert cache.get(b"bbbb") is None and cache.get("aaaa") == 3 and cache.chars == 8


def _tagger(capacity: int) -> BiasTagger:
    return BiasTagger(Lexicon.load(), LinearToxicityModel.load(), threshold=0.7, score_cache=capacity)


@needs_compiled
@pytest.mark.parametrize("capacity", [1, 3, 10_000])
def test_cached_signals_are_the_uncached_ones(capacity):
    cached, plain = _tagger(capacity), _tagger(0)
    assert plain.cache is None
    # two batches, so the second finds what the first scored; and one document at a time
    got = cached.tag_many(PAGES[:5]) + cached.tag_many(PAGES[5:])
    assert got == plain.tag_many(PAGES) == [cached.tag_many([p])[0] for p in PAGES]
    assert cached.cache is not None and len(cached.cache) <= capacity
    if capacity == 10_000:
        assert cached.cache.hits > 0  # the shared lines were found, not rescored
    assert sum(sum(s.toxic_mentions.values()) for s in got) > 0


@needs_compiled
def test_cached_signals_are_the_uncached_ones_on_the_dev_pages():
    path = DEV / "docs.jsonl.gz"
    if not path.exists():
        pytest.skip(f"the dev corpus {path} is not here")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line).get("text") or "" for line in f]
    cached, plain = _tagger(4096), _tagger(0)
    batches = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    assert [s for b in batches for s in cached.tag_many(b)] == [s for b in batches for s in plain.tag_many(b)]
    assert cached.cache is not None and cached.cache.hits > 0


def test_the_cache_is_on_by_default_and_zero_turns_it_off():
    assert Config().bias.score_cache > 0
    off = Config.model_validate({"bias": {"score_cache": 0}})
    assert _holder(off.bias, off.toxicity).tagger.cache is None
    with pytest.raises(ConfigError, match=r"bias\.score_cache"):
        load_config(None, ["bias.score_cache=-1"])
