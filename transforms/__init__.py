"""corpusforge's stages, one subpackage per stage family.

``base`` is the stage framework (pure per-document logic, the composite that wraps it, counters) and
``hashing`` the stable hashes every family shares, ``derived_cache`` the disk cache of set-up data
derived from installed files (keyed by their content). Each family package exports the composite
transform the pipeline uses: ``io`` (read, validate, write), ``normalize``, ``decontam``,
``language``, ``quality``, ``dedup``, ``pii``, ``toxicity``, ``tokenize``. Layers point down:
transforms use ``corpusforge.schemas`` (records and typed config sections), never ``pipelines``.
"""
