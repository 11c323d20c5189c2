"""Quality rules (Gopher quality and repetition, C4, FineWeb): signals computed once per document
(signals), stop-word lists (stopwords), thresholds applied by the stage (stage)."""

from corpusforge.transforms.quality.stage import FilterQuality

__all__ = ["FilterQuality"]
