from __future__ import annotations

import unicodedata

from corpusforge.schemas.records import Document, RejectReason
from corpusforge.transforms.normalize.stage import TextNormalizer, normalize_text


def test_line_endings_and_controls():
    assert normalize_text("a\r\nb\rc") == "a\nb\nc"
    assert normalize_text("\ufeffbom\x00 and\x07 bell\x85") == "bom and bell"
    assert normalize_text("tabs\tand\nnewlines stay") == "tabs\tand\nnewlines stay"


def test_nfc_composes_but_keeps_the_users_text():
    decomposed = unicodedata.normalize("NFD", "Café Ünïcode")
    assert normalize_text(decomposed) == "Café Ünïcode"
    assert normalize_text("Mixed CASE  spacing <b>kept</b>") == "Mixed CASE  spacing <b>kept</b>"


def test_untouched_text_is_the_same_object():
    text = "plain ascii text\nwith lines"
    assert normalize_text(text) is text


def test_stage_rejects_text_that_only_had_controls_and_never_mutates_input():
    stage = TextNormalizer()
    doc = Document(id="a", text="\x00\x01")
    assert isinstance(stage.process(doc), RejectReason)
    doc2 = Document(id="b", text="x\r\ny")
    out = stage.process(doc2)
    assert out.text == "x\ny" and doc2.text == "x\r\ny"
