"""Toxicity scoring with the shipped linear model (model), the text preparation it needs (text), and
the tagging (optionally filtering) stage (stage)."""

from corpusforge.transforms.toxicity.stage import TagToxicity

__all__ = ["TagToxicity"]
