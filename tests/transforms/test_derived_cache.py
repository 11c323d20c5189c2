"""The derived-data cache: an entry is built once, then read back; new inputs or code give a new
key; a bad entry is rebuilt; the cache can be turned off; old entries are pruned."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from corpusforge.transforms import derived_cache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(derived_cache.ENV, str(folder))
    return folder


def _save(value: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, value, allow_pickle=False)


def _load(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


class Builder:
    def __init__(self, value: np.ndarray) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.value.copy()


def test_an_entry_is_built_once_then_read_back_equal(cache):
    build = Builder(np.arange(10, dtype=np.float64) / 3)
    first = derived_cache.load_or_build("kind", "k1", ".npy", build, _save, _load)
    second = derived_cache.load_or_build("kind", "k1", ".npy", build, _save, _load)
    assert build.calls == 1
    assert second.tobytes() == first.tobytes() == build.value.tobytes()
    assert [p.name for p in (cache / "kind").iterdir()] == ["k1.npy"]  # no temporary file left


def test_a_changed_input_file_gives_a_new_key(tmp_path):
    source = tmp_path / "bench.jsonl"
    source.write_text('{"q": "a"}\n')
    key = derived_cache.content_key("kind", ["v1", source])
    assert derived_cache.content_key("kind", ["v1", source]) == key  # content, not identity
    os.utime(source, (0, 0))
    assert derived_cache.content_key("kind", ["v1", source]) == key  # dates do not count
    source.write_text('{"q": "b"}\n')
    assert derived_cache.content_key("kind", ["v1", source]) != key
    # parts are length-prefixed: moving bytes between parts changes the key
    assert derived_cache.content_key("kind", ["ab", "c"]) != derived_cache.content_key("kind", ["a", "bc"])


def test_a_corrupt_entry_is_rebuilt_and_replaced(cache):
    build = Builder(np.ones(4))
    derived_cache.load_or_build("kind", "k", ".npy", build, _save, _load)
    (cache / "kind" / "k.npy").write_bytes(b"not an array")
    again = derived_cache.load_or_build("kind", "k", ".npy", build, _save, _load)
    assert build.calls == 2 and again.tolist() == [1.0] * 4
    assert _load(cache / "kind" / "k.npy").tolist() == [1.0] * 4


@pytest.mark.parametrize("value", ["off", "0", ""])
def test_the_cache_can_be_turned_off(monkeypatch, tmp_path, value):
    monkeypatch.setenv(derived_cache.ENV, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    build = Builder(np.zeros(2))
    for _ in range(2):
        derived_cache.load_or_build("kind", "k", ".npy", build, _save, _load)
    assert build.calls == 2 and derived_cache.cache_dir() is None
    assert not any(tmp_path.iterdir())


def test_the_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(derived_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert derived_cache.cache_dir() == tmp_path / "corpusforge"


def test_an_unwritable_cache_only_means_no_caching(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(derived_cache.ENV, str(blocker / "cache"))  # a folder under a file
    build = Builder(np.ones(3))
    assert derived_cache.load_or_build("kind", "k", ".npy", build, _save, _load).tolist() == [1.0] * 3


def test_each_kind_keeps_its_most_recently_used_entries(cache):
    build = Builder(np.ones(1))
    for i in range(derived_cache.KEEP_PER_KIND + 2):
        derived_cache.load_or_build("kind", f"k{i}", ".npy", build, _save, _load)
        os.utime(cache / "kind" / f"k{i}.npy", (1000 + i, 1000 + i))
    derived_cache.load_or_build("other", "x", ".npy", build, _save, _load)
    kept = sorted(p.name for p in (cache / "kind").iterdir())
    newest = [f"k{i}.npy" for i in range(2, derived_cache.KEEP_PER_KIND + 2)]
    assert kept == sorted(newest)
    assert (cache / "other" / "x.npy").exists()  # another kind is not pruned with this one


def test_a_kind_may_keep_more_entries_than_the_default(cache):
    build = Builder(np.ones(1))
    keep = derived_cache.KEEP_PER_KIND + 2
    for i in range(keep + 1):
        derived_cache.load_or_build("wide", f"k{i}", ".npy", build, _save, _load, keep=keep)
        os.utime(cache / "wide" / f"k{i}.npy", (1000 + i, 1000 + i))
    assert sorted(p.name for p in (cache / "wide").iterdir()) == sorted(
        f"k{i}.npy" for i in range(1, keep + 1)
    )
