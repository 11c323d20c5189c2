"""The code point class table read from the derived-data cache is the derived one, bit for bit."""

from __future__ import annotations

import numpy as np

from corpusforge.transforms import derived_cache
from corpusforge.transforms.decontam import text


def test_the_cached_class_table_is_the_derived_one(tmp_path, monkeypatch):
    monkeypatch.setenv(derived_cache.ENV, str(tmp_path))
    monkeypatch.setattr(text, "_TABLE", None)
    derived = text._class_table()
    assert len(list((tmp_path / text.CLASS_TABLE_KIND).iterdir())) == 1
    monkeypatch.setattr(text, "_TABLE", None)  # a new process: the table comes from the cache
    cached = text._class_table()
    assert cached is not derived and cached.dtype == np.int8
    assert cached.tobytes() == derived.tobytes() == text._build_class_table().tobytes()
    assert text.word_hashes("It's a dik-dik!").tolist() == text.word_hashes("its a dikdik").tolist()
