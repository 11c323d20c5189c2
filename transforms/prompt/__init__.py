"""Prompt control: the scaffolding patterns (patterns) and the tagging, optionally filtering, stage (stage)."""

from corpusforge.transforms.prompt.stage import TagPrompt, TagPromptSignals

__all__ = ["TagPrompt", "TagPromptSignals"]
