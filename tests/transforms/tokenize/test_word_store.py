"""The word cache's learned words kept on disk: a later worker starts with them and still gives the
library's ids; another tokenizer is another entry; a bad entry is ignored with a warning and
replaced; workers' words are merged; ``CORPUSFORGE_CACHE_DIR=off`` keeps nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from tokenizers import AddedToken

from corpusforge.transforms import derived_cache, shared_setup
from corpusforge.transforms.tokenize import word_store
from corpusforge.transforms.tokenize.loading import library_encoder, load_tokenizer
from corpusforge.transforms.tokenize.tokenizer import DocumentTokenizer
from tests.helpers import sample_texts
from tests.transforms.tokenize.test_word_cache import HOSTILE, implementation  # noqa: F401

TEXTS = sample_texts(utf8_only=True)[:300]
OTHER = [
    "Quedlinburg's half-timbered houses line the cobbled lanes below the castle hill.",
    "Sourdough starters need flour, water, patience and a warm kitchen shelf.",
]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(derived_cache.ENV, str(folder))
    return folder


def _tokenizer() -> DocumentTokenizer:
    logic = DocumentTokenizer(None, None, None, word_cache=True)
    logic.ready()
    assert logic.uses_word_cache
    return logic


def _encode(logic: DocumentTokenizer, texts: list[str]) -> list[list[int]]:
    return [ids for i in range(0, len(texts), 64) for ids in logic.encode(texts[i : i + 64])]


def _entries(cache: Path) -> list[Path]:
    folder = cache / word_store.KIND
    return sorted(folder.iterdir()) if folder.exists() else []


def _learned_words(logic: DocumentTokenizer, monkeypatch) -> list[str]:
    """Record the words ``logic``'s encoder asks the model for from now on."""
    asked: list[str] = []
    encoder = logic._cached
    real = encoder._learn

    def learn(words):
        asked.extend(words.difference(encoder._cache))
        real(words)

    monkeypatch.setattr(encoder, "_learn", learn)
    return asked


def test_a_later_worker_starts_with_the_words_learned_and_gives_the_library_ids(
    cache,
    monkeypatch,
    implementation,  # noqa: F811 - the fixture, imported above
):
    library = library_encoder(load_tokenizer(None))
    first = _tokenizer()
    assert first._cached.n_learned < 200  # only the self-check's words
    assert _encode(first, TEXTS) == library(TEXTS)
    first.flush()
    (entry,) = _entries(cache)
    second = _tokenizer()  # another worker, or the next run
    assert second._cached.n_learned == first._cached.n_learned > 1000
    asked = _learned_words(second, monkeypatch)
    texts = TEXTS + HOSTILE
    assert _encode(second, texts) == library(texts)
    assert 0 < len(asked) < 0.2 * first._cached.n_learned  # only the hostile texts' new words
    assert word_store.load_table(entry) == first._cached.learned()


def test_another_tokenizer_is_another_entry(cache):
    plain = load_tokenizer(None)
    key = word_store.store_key(plain.to_str())
    assert word_store.store_key(load_tokenizer(None).to_str()) == key  # the same content
    plain.add_tokens([AddedToken("castle hill", normalized=False)])
    assert word_store.store_key(plain.to_str()) != key


@pytest.mark.parametrize("damage", ["truncated", "foreign", "wrong ids"])
def test_a_bad_entry_is_ignored_with_a_warning_and_replaced(cache, caplog, damage):
    first = _tokenizer()
    library = library_encoder(load_tokenizer(None))
    _encode(first, TEXTS)
    first.flush()
    (entry,) = _entries(cache)
    good = word_store.load_table(entry)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:300])
    elif damage == "foreign":
        with open(entry, "wb") as f:
            np.savez(f, text=np.zeros(3, dtype=np.uint32))
    else:  # well formed, but every word has another word's ids
        words = list(good)
        word_store.save_table(dict(zip(words, [good[w] for w in words[1:] + words[:1]], strict=True)), entry)
    with caplog.at_level(logging.WARNING):
        second = _tokenizer()
    assert "rebuilding it" in caplog.text
    assert second._cached.n_learned < 200  # nothing read (the self-check's words only)
    assert _encode(second, TEXTS) == library(TEXTS)
    second.flush()
    assert word_store.load_table(entry) == good  # replaced by a good entry


def test_workers_words_are_merged(cache):
    a, b = _tokenizer(), _tokenizer()
    _encode(a, TEXTS[:150])
    _encode(b, TEXTS[150:] + OTHER)
    a.flush()
    b.flush()  # merges a's words from disk with its own
    both = word_store.load_table(_entries(cache)[0])
    assert set(a._cached.learned()) | set(b._cached.learned()) == set(both)
    assert both.keys() - a._cached.learned().keys() >= {"Quedlinburg", " castle", " starters"}


def test_saves_are_spaced_by_doubling(cache, monkeypatch):
    monkeypatch.setattr(word_store, "SAVE_EVERY", 500)
    saves: list[int] = []
    real = word_store.WordStore.save
    monkeypatch.setattr(word_store.WordStore, "save", lambda self, t: (saves.append(len(t)), real(self, t)))
    logic = _tokenizer()
    _encode(logic, TEXTS)
    assert saves and all(later >= 2 * earlier for earlier, later in zip(saves, saves[1:], strict=False))
    assert len(saves) <= 1 + int(np.log2(logic._cached.n_learned / 500))


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(derived_cache.ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    logic = _tokenizer()
    assert logic._store is None
    assert _encode(logic, TEXTS) == library_encoder(load_tokenizer(None))(TEXTS)
    logic.flush()
    assert not list(tmp_path.iterdir())
    assert json.loads(load_tokenizer(None).to_str())["model"]["type"] == "BPE"


@pytest.fixture
def registry():
    """The process-wide set-up registry, empty before and after (it outlives a test otherwise)."""
    shared_setup.clear()
    yield
    shared_setup.clear()


def _learn_and_save(texts: list[str]) -> None:
    logic = _tokenizer()
    _encode(logic, texts)
    logic.flush()


def _shared_table() -> dict:
    (ident,) = [key for kind, key in shared_setup.kinds() if kind == word_store.KIND]
    return shared_setup.lookup(word_store.KIND, ident)


def test_a_worker_takes_the_words_its_parent_read_and_never_changes_them(cache, registry, monkeypatch):
    _learn_and_save(TEXTS)  # a first worker
    word_store.preload(None)  # the zygote, once the driver sent the configuration
    shared = _shared_table()
    snapshot = dict(shared)
    assert len(snapshot) > 1000
    # the worker reads nothing from disk: the table is the parent's
    monkeypatch.setattr(word_store, "load_table", lambda path: pytest.fail(f"read {path} again"))
    logic = _tokenizer()
    assert logic._cached.n_learned >= len(snapshot)
    monkeypatch.undo()
    monkeypatch.setenv(derived_cache.ENV, str(cache))
    library = library_encoder(load_tokenizer(None))
    assert _encode(logic, OTHER + TEXTS[:50]) == library(OTHER + TEXTS[:50])  # still the library's ids
    logic.flush()  # learned new words (OTHER) and saved them: the shared table stays as it was
    assert _shared_table() is shared and shared == snapshot
    assert len(word_store.load_table(_entries(cache)[0])) > len(snapshot)


def test_a_worker_with_another_cache_folder_reads_its_own_entry(cache, registry, tmp_path, monkeypatch):
    _learn_and_save(TEXTS)
    word_store.preload(None)
    other = tmp_path / "other-cache"
    monkeypatch.setenv(derived_cache.ENV, str(other))
    _learn_and_save(OTHER)  # another folder: its entry holds only OTHER's words (and the self-check's)
    assert 0 < _tokenizer()._cached.n_learned < len(_shared_table()) // 10


def test_a_parent_without_an_entry_keeps_nothing_and_the_worker_reads_it_later(cache, registry):
    word_store.preload(None)  # nothing on disk yet (the first run with this tokenizer)
    assert shared_setup.kinds() == []
    _learn_and_save(TEXTS)
    assert _tokenizer()._cached.n_learned > 1000  # the worker's own read found the new entry
