"""The language profiles' tables read from the derived-data cache are the ones derived from the
profiles, bit for bit, and a changed profile file gives a new key (never a stale table)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from corpusforge.transforms import derived_cache
from corpusforge.transforms.language import naive_bayes


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(derived_cache.ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(naive_bayes, "_TABLES", {})  # this test's process tables, rebuilt
    return tmp_path / "cache"


def test_cached_tables_are_the_derived_ones_and_give_the_same_answers(cache):
    derived = naive_bayes.profile_tables(compiled=naive_bayes._ngrams is not None)
    assert len(list((cache / naive_bayes.TABLES_CACHE_KIND).iterdir())) == 1
    naive_bayes._TABLES.clear()  # a new process: the tables come from the cache
    cached = naive_bayes.profile_tables(compiled=naive_bayes._ngrams is not None)
    assert cached.gram_logs is not derived.gram_logs
    assert cached.languages == derived.languages
    assert list(cached.gram_row.items()) == list(derived.gram_row.items())  # same rows, same order
    assert cached.gram_logs.tobytes() == derived.gram_logs.tobytes()
    assert cached.hash_table == derived.hash_table
    assert not cached.gram_logs.flags.writeable
    text = "Die Katze sitzt auf der Matte und schaut aus dem Fenster in den Garten."
    fresh = naive_bayes.NaiveBayesLanguageDetector()
    naive_bayes._TABLES.clear()
    assert (
        naive_bayes.NaiveBayesLanguageDetector().detect(text)
        == fresh.detect(text)
        == ("de", pytest.approx(1.0))
    )


def test_a_changed_profile_gives_a_new_key(tmp_path, monkeypatch):
    from langdetect import detector_factory

    copy = tmp_path / "profiles"
    shutil.copytree(detector_factory.PROFILES_DIRECTORY, copy)
    monkeypatch.setattr(detector_factory, "PROFILES_DIRECTORY", str(copy))
    key = naive_bayes.tables_cache_key()
    profile = copy / "de"
    profile.write_bytes(profile.read_bytes().replace(b'"name":"de"', b'"name":"de" '))
    assert naive_bayes.tables_cache_key() != key


def test_a_cached_table_of_the_wrong_shape_is_rebuilt(cache):
    key = naive_bayes.tables_cache_key()
    path = derived_cache.entry_path(naive_bayes.TABLES_CACHE_KIND, key, ".npz")
    path.parent.mkdir(parents=True)
    naive_bayes._save_tables((("en",), ["a", "b"], np.zeros((3, 1))), path)
    tables = naive_bayes.profile_tables(compiled=False)
    assert len(tables.languages) == 55 and tables.gram_logs.shape == (len(tables.gram_row), 55)
