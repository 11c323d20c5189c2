"""The per-process registry of set-up objects: one build per key, even when threads ask at once."""

from __future__ import annotations

import threading
import time

from corpusforge.transforms import shared_setup


def setup_function() -> None:
    shared_setup.clear()


def teardown_function() -> None:
    shared_setup.clear()


def test_threads_asking_for_one_key_build_it_once_and_share_the_object() -> None:
    builds: list[int] = []
    results: list[object] = []
    start = threading.Barrier(4)

    def build() -> object:
        builds.append(1)
        time.sleep(0.05)  # long enough that the other threads ask while it is being built
        return object()

    def ask() -> None:
        start.wait()
        results.append(shared_setup.shared("test.kind", "k", build))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(results) == 4 and all(result is results[0] for result in results)


def test_other_keys_and_kinds_are_built_apart() -> None:
    first = shared_setup.shared("test.kind", "a", lambda: ["a"])
    assert shared_setup.shared("test.kind", "b", lambda: ["b"]) == ["b"]
    assert shared_setup.shared("other.kind", "a", lambda: ["other"]) == ["other"]
    assert shared_setup.shared("test.kind", "a", lambda: ["again"]) is first
    assert shared_setup.kinds() == [("other.kind", "a"), ("test.kind", "a"), ("test.kind", "b")]


def test_a_build_may_ask_for_another_key() -> None:
    def outer() -> str:
        return "outer+" + shared_setup.shared("test.kind", "inner", lambda: "inner")

    assert shared_setup.shared("test.kind", "outer", outer) == "outer+inner"
    assert shared_setup.lookup("test.kind", "inner") == "inner"


def test_a_build_that_returns_none_keeps_nothing_and_is_tried_again() -> None:
    assert shared_setup.shared("test.kind", "later", lambda: None) is None
    assert shared_setup.lookup("test.kind", "later") is None
    assert shared_setup.shared("test.kind", "later", lambda: "now") == "now"
