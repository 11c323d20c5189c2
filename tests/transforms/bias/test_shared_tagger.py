"""The bias stage and the count of rejected records share one tagger per process (its set-up and
its cache of scored lines) when their settings agree: the same signals as a tagger each."""

from __future__ import annotations

import threading

import pytest

from corpusforge.schemas.config import Config
from corpusforge.transforms import shared_setup
from corpusforge.transforms.bias import stage as bias_stage
from corpusforge.transforms.bias.stage import _holder
from tests.transforms.bias.test_cache import PAGES, needs_compiled


@pytest.fixture(autouse=True)
def fresh():
    shared_setup.clear()  # a new worker process
    yield
    shared_setup.clear()


def _config(**bias) -> Config:
    return Config.model_validate({"bias": bias})


@needs_compiled
def test_holders_with_the_same_settings_share_a_tagger_and_its_cache_and_give_the_same_signals():
    cfg = _config()
    stage_holder, rejected_holder = _holder(cfg.bias, cfg.toxicity), _holder(cfg.bias, cfg.toxicity)
    assert stage_holder.tagger is rejected_holder.tagger
    kept, rejected = PAGES[:6], PAGES[6:]
    got = stage_holder.tag_many(kept) + rejected_holder.tag_many(rejected)
    assert stage_holder.tagger.cache.hits > 0  # the rejected pages reused the kept pages' lines
    shared_setup.clear()
    alone = _holder(cfg.bias, cfg.toxicity)._build()  # a tagger of its own, cold
    assert got == alone.tag_many(kept) + _holder(cfg.bias, cfg.toxicity)._build().tag_many(rejected)
    assert sum(s.toxic_mentions.get("religion", 0) for s in got) > 0


def test_other_settings_or_the_pure_python_path_get_their_own_tagger(monkeypatch):
    cfg, other = _config(), _config(max_segment_words=32)
    tagger = _holder(cfg.bias, cfg.toxicity).tagger
    assert _holder(other.bias, other.toxicity).tagger is not tagger
    monkeypatch.setattr(bias_stage, "_bias_match", None)
    pure = _holder(cfg.bias, cfg.toxicity).tagger
    assert pure is not tagger and pure.compiled is None
    assert pure.tag_many(PAGES) == tagger.tag_many(PAGES)


def test_threads_tagging_through_one_shared_tagger_get_the_signals_of_one_thread():
    cfg = _config(score_cache=8)  # a tiny cache: evictions while the threads race
    expected = _holder(cfg.bias, cfg.toxicity)._build().tag_many(PAGES * 4)
    results: dict[int, list] = {}

    def work(i: int) -> None:
        holder = _holder(cfg.bias, cfg.toxicity)
        results[i] = [s for page in PAGES * 4 for s in holder.tag_many([page])]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results.values()) and len(results) == 4
