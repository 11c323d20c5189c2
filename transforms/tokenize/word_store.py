"""The word cache's learned words on disk, per tokenizer: a worker starts with what earlier ones learned.

Why: the word cache (:mod:`.word_cache`) starts empty in every worker of every run and learns each
distinct word by asking the tokenizer's BPE model (~1.2 of the 2.1 CPU s the 1,790 kept documents
of the 8k run cost to tokenize in one process: 90 k distinct words). Web text shares most of its
words across runs and corpora, and a word's ids depend only on the tokenizer, so the words learned
are kept per tokenizer in the derived-data cache (``transforms/derived_cache.py``) and read back
at set-up (~0.05 s for 90 k words).

Exact by construction: an entry maps words to the ids the BPE model gave them, and its key is a
SHA-256 over the tokenizer's full serialization (``Tokenizer.to_str()``: model, merges, added
tokens, normalizer), the ``tokenizers`` version, the runtime and the source of the code that maps a
word to the model's input (this module, :mod:`.word_cache`, :mod:`.pretokenize_rules`). On load a
spread sample of the stored words is encoded again and compared, so a corrupt or foreign entry is
never used (it is warned about and replaced). Which words an entry holds never changes an id, only
how many words a worker must still learn, so racing workers (each merges what is on disk before
writing; the last rename wins) and the size bound (:data:`MAX_STORED_WORDS`) cost hit rate, never
correctness. ``CORPUSFORGE_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from itertools import islice
from pathlib import Path

import numpy as np
import tokenizers

from corpusforge.transforms import derived_cache, shared_setup
from corpusforge.transforms.tokenize import pretokenize_rules, word_cache

LOG = logging.getLogger(__name__)
KIND = "tokenize-word-ids-v1"
SUFFIX = ".npz"
MAX_STORED_WORDS = 1 << 18  # ~10 MB on disk; under the in-memory bound of word_cache.MAX_CACHED_WORDS
SAVE_EVERY = 4096  # new words that make a save worth its cost (about 1 ms per thousand words)
CHECKED_WORDS = 256  # stored words encoded again on load

Table = dict[str, tuple[int, ...]]


def store_key(tokenizer_json: str) -> str:
    """The entry of the tokenizer serialized as ``tokenizer_json``."""
    return derived_cache.content_key(
        KIND,
        [
            tokenizer_json,
            f"tokenizers {tokenizers.__version__}",
            derived_cache.runtime_fingerprint(),
            Path(__file__),
            Path(word_cache.__file__),
            Path(pretokenize_rules.__file__),
        ],
    )


def save_table(table: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """Words as one UTF-32 buffer with character offsets, ids as one flat array with offsets."""
    words = list(table)
    ids = [table[w] for w in words]
    with open(path, "wb") as f:
        np.savez(
            f,
            text=np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32),
            word_ends=np.cumsum([len(w) for w in words], dtype=np.int64),
            ids=np.fromiter((i for t in ids for i in t), dtype=np.int32),
            id_ends=np.cumsum([len(t) for t in ids], dtype=np.int64),
        )


def load_table(path: Path) -> Table:
    """The table :func:`save_table` wrote; raises on anything inconsistent."""
    with np.load(path, allow_pickle=False) as z:
        text = z["text"].tobytes().decode("utf-32-le", "surrogatepass")
        word_ends, id_ends, flat = z["word_ends"].tolist(), z["id_ends"].tolist(), z["ids"].tolist()
    if len(word_ends) != len(id_ends) or (word_ends and word_ends[-1] != len(text)):
        raise ValueError(f"{path}: words and ids do not agree")
    if id_ends and id_ends[-1] != len(flat):
        raise ValueError(f"{path}: the ids do not add up")
    words = [text[a:b] for a, b in zip([0, *word_ends][:-1], word_ends, strict=True)]
    ids = [tuple(flat[a:b]) for a, b in zip([0, *id_ends][:-1], id_ends, strict=True)]
    table = dict(zip(words, ids, strict=True))
    if len(table) != len(words) or not all(ids):
        raise ValueError(f"{path}: repeated words or words without ids")
    return table


class WordStore:
    """Reads and updates one tokenizer's entry. ``model_ids`` encodes words with the model (the
    encoder's own ``_model_ids``), used to check a sample of what is read."""

    def __init__(self, tokenizer_json: str, model_ids: Callable[[list[str]], list[tuple[int, ...]]]) -> None:
        self.key = store_key(tokenizer_json)
        self._model_ids = model_ids
        self._saved = 0  # size of the table last read or written

    def _read(self, shared: bool = False) -> Table | None:
        """The entry as on disk now, checked; with ``shared``, the one the zygote read before it
        forked this worker when there is one (:func:`preload`; never changed: callers copy)."""
        table = shared_setup.lookup(KIND, shared_ident(self.key)) if shared else None
        if table is None:
            table = derived_cache.load_entry(KIND, self.key, SUFFIX, load_table)
        if table:
            step = max(1, len(table) // CHECKED_WORDS)
            sample = list(table)[::step]
            if self._model_ids(sample) != [table[w] for w in sample]:
                path = derived_cache.entry_path(KIND, self.key, SUFFIX)
                LOG.warning("cache entry %s holds ids this tokenizer does not give; rebuilding it", path)
                return None
        return table

    def load(self) -> Table:
        """The words learned before with this tokenizer (empty when none, or caching is off)."""
        table = self._read(shared=True) or {}
        self._saved = len(table)
        return table

    def due(self, learned: int) -> bool:
        """Whether ``learned`` words (the worker's table now) hold enough new ones to save now:
        at least :data:`SAVE_EVERY` and as many as the entry holds (so the saves of a worker cost
        about twice its last one, whatever its corpus)."""
        return learned - self._saved >= max(SAVE_EVERY, self._saved) and self._saved < MAX_STORED_WORDS

    def unsaved(self, learned: int) -> bool:
        """Whether ``learned`` words hold any the entry may lack (a worker's last save)."""
        return learned > self._saved and self._saved < MAX_STORED_WORDS

    def save(self, learned: Mapping[str, tuple[int, ...]]) -> None:
        """Store ``learned`` merged with what is on disk now (other workers' words), bounded."""
        if derived_cache.cache_dir() is None:
            return
        merged: Table = self._read() or {}  # read afresh (never the shared table: it is changed here)
        room = MAX_STORED_WORDS - len(merged)
        if room > 0:
            new = islice((w for w in learned if w not in merged), room)
            merged.update((w, learned[w]) for w in new)
        derived_cache.store_entry(KIND, self.key, SUFFIX, merged, save_table)
        self._saved = max(len(merged), len(learned))


def shared_ident(key: str) -> str:
    """The registry key of entry ``key`` (``transforms/shared_setup.py``): the entry's path, so that
    a worker with another cache folder reads its own."""
    return str(derived_cache.entry_path(KIND, key, SUFFIX))


def preload(spec: str | None) -> None:
    """Read the learned words of tokenizer ``spec`` into the process-wide registry (the zygote, once
    for every worker it forks, ~0.3 CPU s each; ``pipelines/local/warm.py``). Checked against the
    model in each worker's :meth:`WordStore.load`, as when a worker reads the entry itself."""
    if derived_cache.cache_dir() is None:
        return
    from corpusforge.transforms.tokenize.loading import load_tokenizer

    key = store_key(load_tokenizer(spec).to_str())
    shared_setup.shared(
        KIND, shared_ident(key), lambda: derived_cache.load_entry(KIND, key, SUFFIX, load_table)
    )
