"""The tokenizer logic of stage ``tokenize`` (no Beam): a batch of texts in, token ids with the
configured BOS/EOS out. The tokenizer is loaded once per worker (``ready``), never pickled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corpusforge.transforms import derived_cache
from corpusforge.transforms.base import WorkerState
from corpusforge.transforms.tokenize.loading import (
    library_encoder,
    load_tokenizer,
)
from corpusforge.transforms.tokenize.word_cache import word_cache_encoder
from corpusforge.transforms.tokenize.word_store import WordStore


class DocumentTokenizer(WorkerState):
    """Batched encoding with the configured BOS/EOS around every document.

    Special tokens of the tokenizer's own post-processor are not used (``add_special_tokens=False``):
    BOS/EOS are exactly what the config says, whatever template the tokenizer.json carries.
    """

    name = "tokenize"
    # the tokenizer is rebuilt by setup() on each worker, never shipped with the graph
    per_worker = ("_tok", "_encode", "_cached", "_store")
    _tok: Any = None
    _encode: Any = None
    _cached: Any = None
    _store: WordStore | None = None

    def __init__(self, spec: str | None, bos_id: int | None, eos_id: int | None, *, word_cache: bool) -> None:
        self.spec = spec
        self.prefix = [bos_id] if bos_id is not None else []
        self.suffix = [eos_id] if eos_id is not None else []
        self.word_cache = word_cache

    def setup(self) -> None:
        self._tok = load_tokenizer(self.spec)
        # the library's ids, 2-4x faster for byte-level BPE (see transforms/word_cache.py)
        self._cached = word_cache_encoder(self._tok) if self.word_cache else None
        if self._cached is not None:
            self._encode = self._cached.encode_batch
            # the words earlier workers learned with this tokenizer (transforms/word_store.py)
            if derived_cache.cache_dir() is not None:
                self._store = WordStore(self._tok.to_str(), self._cached._model_ids)
                self._cached.preload(self._store.load())
        else:
            self._encode = library_encoder(self._tok)

    @property
    def uses_word_cache(self) -> bool:
        self.ready()
        return self._cached is not None

    @property
    def library_docs(self) -> int:
        """Documents the word cache handed to the library so far (0 without the cache)."""
        return self._cached.library_docs if self._tok is not None and self._cached is not None else 0

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        self.ready()
        all_ids = self._encode(list(texts))
        if self._store is not None and self._store.due(self._cached.n_learned):
            self._store.save(self._cached.learned())
        prefix, suffix = self.prefix, self.suffix
        if not prefix and not suffix:
            return all_ids
        return [prefix + ids + suffix for ids in all_ids]

    def flush(self) -> None:
        """Keep the words learned since the last save (a worker's teardown)."""
        if self._store is not None and self._store.unsaved(self._cached.n_learned):
            self._store.save(self._cached.learned())

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with the special tokens left out (for checks and tests)."""
        self.ready()
        return self._tok.decode(list(ids), skip_special_tokens=True)
