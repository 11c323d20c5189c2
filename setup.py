"""Build script for corpusforge's one compiled module; everything else is in pyproject.toml.

``transforms/tokenize/_pretokenize.c`` speeds up the tokenizer's word cache (GPT-2 pre-tokenization and
cache look-ups in one pass). It is optional: where it cannot be compiled (no C compiler on the
machine) the package installs without it and the pure-Python path gives the same ids, slower.
``CORPUSFORGE_PURE_PYTHON=1`` leaves it out on purpose (a wheel that installs anywhere).
"""

import os

from setuptools import Extension, setup

extensions = []
if not os.environ.get("CORPUSFORGE_PURE_PYTHON"):
    extensions.append(
        Extension(
            "corpusforge.transforms.tokenize._pretokenize",
            sources=["transforms/tokenize/_pretokenize.c"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
