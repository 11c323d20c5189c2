"""Text normalisation before any stage reads the text (Unicode NFC, line ends, control characters)."""

from corpusforge.transforms.normalize.stage import Normalize

__all__ = ["Normalize"]
