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
object came from the parent or was built in the worker, and keeps the shared pages shared.
Standard library only: the registry is imported by the zygote and by stages alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_BUILT: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def shared(kind: str, key: str, build: Callable[[], T]) -> T:
    """The object of ``kind``/``key`` built in this process (or inherited from the zygote), else
    ``build()``'s result, kept for the next caller. ``build`` returning None keeps nothing (no entry
    on disk yet: a later caller tries again)."""
    with _LOCK:
        if (kind, key) in _BUILT:
            return _BUILT[(kind, key)]
    value = build()  # outside the lock: a build may take a while and never needs another entry
    if value is None:
        return value
    with _LOCK:
        return _BUILT.setdefault((kind, key), value)


def lookup(kind: str, key: str) -> Any:
    """The object of ``kind``/``key`` if one was built in this process (or inherited), else None;
    keeps nothing (a worker that builds its own need not hold a second copy)."""
    with _LOCK:
        return _BUILT.get((kind, key))


def built(kind: str, key: str) -> bool:
    """Whether ``kind``/``key`` is already built in this process (tests, diagnostics)."""
    with _LOCK:
        return (kind, key) in _BUILT


def kinds() -> list[tuple[str, str]]:
    """Every ``(kind, key)`` built in this process, in a stable order (diagnostics)."""
    with _LOCK:
        return sorted(_BUILT)


def clear() -> None:
    """Forget everything built (tests)."""
    with _LOCK:
        _BUILT.clear()
