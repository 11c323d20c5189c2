"""Prompt control: the scaffolding patterns (patterns) and the tagging, optionally filtering, stage (stage)."""

from corpusforge.transforms.prompt.stage import TagPrompt

__all__ = ["TagPrompt"]
