"""corpusforge: raw text corpora in, clean training-ready Parquet out.

The repository keeps ``pipelines/``, ``transforms/``, ``schemas/`` and ``configs/`` at its top level;
``pyproject.toml`` maps them to ``corpusforge.pipelines``, ``corpusforge.transforms``,
``corpusforge.schemas`` and ``corpusforge.configs`` so that nothing generic lands in site-packages.
"""

__version__ = "0.1.0"
