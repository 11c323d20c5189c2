"""Normalization: Unicode NFC, line endings and control characters; the text stays the user's text.

Only what breaks tokenizers and comparisons is touched: ``\\r\\n`` and lone ``\\r`` become ``\\n``,
C0/C1 control characters other than tab and newline are removed (as is a leading byte-order mark),
and the text is put in NFC so that the same word is always the same code points. Nothing is
lower-cased, no whitespace is collapsed, no markup is stripped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from corpusforge.schemas.config import NormalizeConfig
from corpusforge.schemas.records import Document, RejectReason
from corpusforge.transforms.base import ApplyStage, DocumentStage

_CONTROL = "".join(
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)]
)
_REMOVE_CONTROL = str.maketrans("", "", _CONTROL)
_NEEDS_WORK = re.compile(f"[\r{re.escape(_CONTROL)}\ufeff]")


def normalize_text(text: str) -> str:
    if _NEEDS_WORK.search(text):
        if text.startswith("\ufeff"):
            text = text[1:]
        text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_REMOVE_CONTROL)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


class TextNormalizer(DocumentStage):
    """Never rejects, except a document that normalization leaves empty (``normalize:empty``)."""

    name = "normalize"

    def process(self, doc: Document) -> Document | RejectReason:
        text = normalize_text(doc.text)
        if text is not doc.text:
            if not text.strip():
                return self.reject("empty", "only control characters")
            return replace(doc, text=text)
        return doc


class Normalize(ApplyStage):
    """Stage ``normalize`` from its section (``cfg.normalize``): documents -> ``(kept, rejected)``."""

    def __init__(self, cfg: NormalizeConfig) -> None:
        super().__init__(TextNormalizer())
        self.cfg = cfg
