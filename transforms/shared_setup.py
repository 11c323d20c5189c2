"""Set-up objects built once per process and looked up by exactly what determines them.

Why: the local runner forks its SDK workers from one pre-imported parent (the zygote,
``pipelines/local/zygote.py``). Whatever that parent builds before it forks is in every worker at
no cost of theirs (the pages are shared copy-on-write), so a stage's set-up that is the same in
every worker (the tokenizer's learned words read from the disk cache, ~0.3 CPU s a worker) can be
built there once, once the driver has sent the configuration, instead of once in each worker.
The parent builds it through :func:`shared` with the same kind and key the stage's own set-up
asks for; a worker whose stage asks for another key (another tokenizer, another cache folder)
finds nothing and builds its own, as without a parent.

Contract: an object handed out here is never changed in place, by anyone (a caller that needs to
change it copies it first). That is what keeps the workers' outputs independent of whether the
object came from the parent or was built in the worker, and keeps the shared pages shared. One
exception, and it is never preloaded in the zygote: state an object keeps behind its own lock
that changes no result (the bias tagger's cache of scored lines, shared by the stage and the
rejected-record count of one process, ``transforms/bias/stage.py``).

Users: the tokenizer's learned words (``tokenize/word_store.py``), the decontamination index
(``decontam/stage.py``, also preloaded by the zygote) and the bias tagger (``bias/stage.py``,
per process only: ~0.02 CPU s to build, not worth the fork's copied pages).
Standard library only: the registry is imported by the zygote and by stages alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_BUILT: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()  # guards the two dicts, never held while building
_BUILDING: dict[tuple[str, str], threading.Lock] = {}  # one lock per key, held while it is built


def shared(kind: str, key: str, build: Callable[[], T]) -> T:
    """The object of ``kind``/``key`` built in this process (or inherited from the zygote), else
    ``build()``'s result, kept for the next caller. ``build`` returning None keeps nothing (no entry
    on disk yet: a later caller tries again).

    Built under a lock of its own key: two threads (Beam runs several DoFn instances of one process
    on threads) asking for one key build it once, the second waits and takes the first's; other
    keys are built meanwhile, and a build may itself ask for another key. A build must not ask
    for its own key (it would wait for itself)."""
    entry = (kind, key)
    with _LOCK:
        if entry in _BUILT:
            return _BUILT[entry]
        building = _BUILDING.setdefault(entry, threading.Lock())
    with building:
        with _LOCK:
            if entry in _BUILT:  # built by the thread this one waited for
                return _BUILT[entry]
        value = build()
        if value is None:
            return value
        with _LOCK:
            _BUILT[entry] = value
            _BUILDING.pop(entry, None)
        return value


def lookup(kind: str, key: str) -> Any:
    """The object of ``kind``/``key`` if one was built in this process (or inherited), else None;
    keeps nothing (a worker that builds its own need not hold a second copy)."""
    with _LOCK:
        return _BUILT.get((kind, key))


def kinds() -> list[tuple[str, str]]:
    """Every ``(kind, key)`` built in this process, in a stable order (diagnostics, tests)."""
    with _LOCK:
        return sorted(_BUILT)


def clear() -> None:
    """Forget everything built (tests: a new worker process)."""
    with _LOCK:
        _BUILT.clear()
        _BUILDING.clear()
