"""Bias signals: the lexicon and its matcher (lexicon), and the tagging stage (stage)."""

from corpusforge.transforms.bias.stage import TagBias, TagBiasSignals

__all__ = ["TagBias", "TagBiasSignals"]
