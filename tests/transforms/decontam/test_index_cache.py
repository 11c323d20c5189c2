"""The benchmark index read from the disk cache is the one built from the files, array for array;
a changed file (content, not date) or setting is a new entry; a bad entry is rebuilt; off is off."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from corpusforge.schemas.config import DecontaminationConfig
from corpusforge.schemas.records import Document
from corpusforge.transforms import derived_cache, shared_setup
from corpusforge.transforms.decontam import index_cache, stage
from corpusforge.transforms.decontam.index import BenchmarkIndex, resolve_sources

QUESTION = (
    "A lighthouse keeper climbs one hundred and seventeen steps to the lamp room three times every "
    "night; how many steps does the keeper climb in a week of winter storms?"
)
SHORT = "Which river flows through the old town of Quedlinburg?"


def _indexes() -> list:
    """The indexes in this process's registry."""
    return [shared_setup.lookup(k, key) for k, key in shared_setup.kinds() if k == stage.INDEX_KIND]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv(derived_cache.ENV, str(folder))
    shared_setup.clear()  # this test's worker: no index in memory yet
    yield folder
    shared_setup.clear()


@pytest.fixture
def bench(tmp_path) -> Path:
    path = tmp_path / "quiz.jsonl"
    records = [{"q": QUESTION, "a": "nine"}, {"q": SHORT, "a": "the Bode"}, {"q": "Grüße aus Köln, \ud83d"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _build_counter(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = BenchmarkIndex.build.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(BenchmarkIndex, "build", classmethod(counting))
    return calls


def _entries(cache: Path) -> list[Path]:
    folder = cache / index_cache.KIND
    return sorted(folder.iterdir()) if folder.exists() else []


def _assert_same(a: BenchmarkIndex, b: BenchmarkIndex) -> None:
    assert (a.n, a.min_words, a.max_item_frequency) == (b.n, b.min_words, b.max_item_frequency)
    assert a.items == b.items and a.benchmarks == b.benchmarks and a.stats == b.stats
    assert a.filter_bits == b.filter_bits
    for name in ("item_benchmark", "filter", "ngrams", "ngram_items"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    assert sorted(a.whole) == sorted(b.whole)
    for length, (hashes, items) in a.whole.items():
        assert hashes.tobytes() == b.whole[length][0].tobytes()
        assert items.tobytes() == b.whole[length][1].tobytes()


def _logic(bench: Path) -> stage.Decontaminator:
    logic = stage.Decontaminator(DecontaminationConfig(benchmarks=[str(bench)]))
    logic.ready()
    return logic


def test_the_second_worker_loads_the_index_and_decides_the_same(cache, bench, monkeypatch):
    calls = _build_counter(monkeypatch)
    first = _logic(bench)
    assert len(calls) == 1 and len(_entries(cache)) == 1
    shared_setup.clear()  # another worker process
    second = _logic(bench)
    assert len(calls) == 1  # loaded, not built
    assert second.index is not first.index
    _assert_same(second.index, first.index)
    _assert_same(second.index, BenchmarkIndex.build(resolve_sources([str(bench)]), 13, 8, 20))
    docs = [
        Document(id="hit", text=f"Notes from the coast. {QUESTION.upper()} The answer follows."),
        Document(id="short", text=f"Quiz night: {SHORT} Nobody knew."),
        Document(id="clean", text="The harbour museum opens at ten and closes at six every day."),
    ]
    got = [(v.rejection, v.hits) for v in second.check_batch(docs)]
    assert got == [(v.rejection, v.hits) for v in first.check_batch(docs)]
    assert got[0][0] is not None and got[0][0].reason == "contamination:quiz" and got[2] == (None, {})


def test_a_changed_file_or_setting_is_a_new_entry_and_a_new_date_is_not(cache, bench, monkeypatch):
    sources = resolve_sources([str(bench)])
    key = index_cache.index_key(sources, 13, 8, 20)
    os.utime(bench, (1_000_000, 1_000_000))  # a new date, the same bytes
    assert index_cache.index_key(sources, 13, 8, 20) == key
    assert index_cache.index_key(sources, 12, 8, 20) != key
    assert index_cache.index_key(sources, 13, 8, 3) != key
    old = index_cache.cached_index(sources, 13, 8, 20)
    bench.write_text(bench.read_text(encoding="utf-8").replace("lighthouse", "windmill"), encoding="utf-8")
    assert index_cache.index_key(sources, 13, 8, 20) != key
    new = index_cache.cached_index(sources, 13, 8, 20)
    assert "windmill" in new.items[0].text and "lighthouse" in old.items[0].text
    assert len(_entries(cache)) == 2


def test_several_benchmark_sets_used_in_turn_stay_cached(cache, bench, monkeypatch):
    """More sets than the cache's default per kind (3), used one after the other and again: each
    is built once (a config per corpus, or a suite's several sets, do not evict one another)."""
    sets = [resolve_sources([str(bench)])]
    for i in range(4):
        other = bench.with_name(f"set{i}.jsonl")
        other.write_text(json.dumps({"q": f"{QUESTION} Variant number {i}."}) + "\n", encoding="utf-8")
        sets.append(resolve_sources([str(other)]))
    calls = _build_counter(monkeypatch)
    for _ in range(2):
        for sources in sets:
            index_cache.cached_index(sources, 13, 8, 20)
    assert len(calls) == len(sets) and len(_entries(cache)) == len(sets)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_corrupt_or_foreign_entry_is_rebuilt_with_a_warning(cache, bench, monkeypatch, caplog, damage):
    sources = resolve_sources([str(bench)])
    built = index_cache.cached_index(sources, 13, 8, 20)
    (entry,) = _entries(cache)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:200])
    else:  # a valid npz of something else
        with open(entry, "wb") as f:
            np.savez(f, meta=np.frombuffer(b'{"format": 0}', dtype=np.uint8))
    calls = _build_counter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=derived_cache.__name__):
        again = index_cache.cached_index(sources, 13, 8, 20)
    assert len(calls) == 1 and "unreadable; rebuilding" in caplog.text
    _assert_same(again, built)
    assert index_cache.load_index(entry).items == built.items  # the entry was replaced by a good one


def test_caching_off_builds_every_time_and_writes_nothing(tmp_path, bench, monkeypatch):
    monkeypatch.setenv(derived_cache.ENV, "off")
    shared_setup.clear()
    calls = _build_counter(monkeypatch)
    first = _logic(bench)
    shared_setup.clear()
    second = _logic(bench)
    assert len(calls) == 2
    _assert_same(first.index, second.index)
    assert not any(p.name == "cache" for p in tmp_path.iterdir())


def test_the_zygotes_index_is_the_workers_own_and_other_settings_build_theirs(cache, bench, monkeypatch):
    import pickle

    entry = {"name": "quiz", "path": str(bench), "fields": ["q"]}
    cfg = DecontaminationConfig(benchmarks=[str(bench), entry])
    stage.preload(cfg.model_dump(mode="json"))  # the zygote, from the section the driver sent
    (built,) = _indexes()
    calls = _build_counter(monkeypatch)
    worker = pickle.loads(pickle.dumps(stage.Decontaminator(cfg)))  # the graph's copy, unpickled
    worker.ready()
    assert worker.index is built and not calls  # found, neither built nor read again
    frozen = {name: value.copy() for name, value in vars(built).items() if isinstance(value, np.ndarray)}
    docs = [Document(id="hit", text=f"Notes. {QUESTION} The answer follows."), Document(id="x", text=SHORT)]
    assert worker.check_batch(docs)[0].rejection is not None
    for name, value in frozen.items():  # checking documents leaves the shared index as it was
        assert np.array_equal(getattr(built, name), value), name
    other = stage.Decontaminator(DecontaminationConfig(benchmarks=[str(bench)], ngram=10))
    other.ready()
    assert other.index is not built and len(_indexes()) == 2
