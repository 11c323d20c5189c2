"""The toxicity stage's faster paths give exactly what the plain ones give: the term table
(``_terms.TermTable``) the dict look-up's ids, the candidate scan of :func:`strip_artefacts` the
regex's ``sub``, and the compiled hint positions of the :class:`Unmasker` its ``finditer``. On real
text (the dev corpus where ``../shared`` exists, the embedded sample otherwise) and on the edge
cases each could get wrong."""

from __future__ import annotations

import numpy as np
import pytest

from corpusforge.transforms.toxicity import stage, text
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts
from tests.helpers import dev_or_sample_texts
from tests.transforms.toxicity.test_segment_fast import _unicode_fuzz

_compiled = pytest.mark.skipif(
    stage._terms is None or not hasattr(stage._terms, "TermTable"),
    reason="transforms/toxicity/_terms.c was not compiled here",
)

# Where each artefact alternative starts, ends, nests in another or sits at a word boundary.
ARTEFACT_EDGES = [
    "",
    "@",
    "a@b",
    "@@x",
    "@x@y",
    "&",
    "&;",
    "&#;",
    "&amp;",
    "&#39;&amp;",
    "&#x;",
    "http",
    "http:",
    "http://",
    "https://x",
    "hhttp://x y",
    "www.",
    "wwww.x",
    "www.x@y",
    "http://a@b.c &amp; @u",
    "RT",
    "aRT",
    "RTa",
    " RT @u: x",
    "URL",
    "URLs",
    "_URL_",
    "\u00e9RT \u00e9URL URL\u00e9",
    "@\u00e9l\u00e8ve http://\u00e9.fr/\u00e9 &\u00e9;",
    "mail me@x.org or RT&RT",
    "x" * 5000 + "@y" + "z" * 5000 + "&amp;",
]
# Masked words next to letters, digits, other masks, string ends and non-ASCII text.
MASK_EDGES = [
    "",
    "f",
    "*",
    "f*",
    "f*ck",
    "*f*ck",
    "f**k",
    "sh!t!",
    "b1tch b!tch a$$ a$$hole",
    "mp3 h264 win10 covid19 a1 b0b",
    "x1*ck",
    "f*ck" * 3,
    "\u00e9f*ck f*\u00e9k",
    "a" * 20 + "*" * 20,
    "sh*t " * 2000,
]


@pytest.fixture(scope="module")
def real() -> list[str]:
    return dev_or_sample_texts()


@pytest.fixture(scope="module")
def model() -> LinearToxicityModel:
    return LinearToxicityModel.load()


def _reference_strip(t: str) -> str:
    if "@" in t or "//" in t or "www." in t or "&" in t or "RT" in t or "URL" in t:
        return text._ARTEFACTS.sub(" ", t)
    return t


def test_strip_artefacts_is_the_regex_sub(real):
    texts = real + ARTEFACT_EDGES + _unicode_fuzz(2000, seed=11)
    changed = 0
    for t in texts:
        got, want = strip_artefacts(t), _reference_strip(t)
        assert got == want, t[:200]
        assert (got is t) == (want is t)  # unchanged text stays the same object (bias relies on it)
        changed += got is not t
    assert changed > 20  # the edge cases and the corpus do hold artefacts


@pytest.mark.parametrize("path", ["compiled", "finditer"])
def test_unmasker_hints_give_the_finditer_result(path, real, model, monkeypatch):
    if path == "compiled" and text._terms is None:
        pytest.skip("transforms/toxicity/_terms.c was not compiled here")
    unmask = Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))
    texts = [strip_artefacts(t).lower() for t in real] + MASK_EDGES + _unicode_fuzz(2000, seed=3)
    if path == "finditer":
        monkeypatch.setattr(text, "_terms", None)
    got = [unmask(t) for t in texts]
    monkeypatch.setattr(text, "_terms", None)

    def reference(lowered: str) -> str:  # the loop as it was, over every _HINT match
        out, last, done, n = [], 0, 0, len(lowered)
        for hint in text._HINT.finditer(lowered):
            start, end = hint.start(), hint.end()
            if start < done or start == 0 or not "a" <= lowered[start - 1] <= "z":
                continue
            while start > 0 and lowered[start - 1] in text._TOKEN_CHARS:
                start -= 1
            while end < n and lowered[end] in text._TOKEN_CHARS:
                end += 1
            done = end
            token = lowered[start:end].rstrip("!")
            word = unmask.unmask_token(token)
            if word != token:
                out += (lowered[last:start], word)
                last = start + len(token)
        return "".join([*out, lowered[last:]]) if out else lowered

    want = [reference(t) for t in texts]
    assert got == want
    assert sum(g != t for g, t in zip(got, texts, strict=True)) >= 5  # masked words were undone


@_compiled
def test_hint_starts_are_masks_after_a_letter():
    hs = stage._terms.hint_starts
    assert hs("") == [] and hs("*") == [] and hs("f") == []
    assert hs("f*ck") == [1] and hs("*f*") == [2] and hs("a1b2c3") == [1, 5]
    assert hs("\u00e9*") == [] and hs("F*CK") == []  # only a-z: the text is lower-cased
    with pytest.raises(TypeError):
        hs(b"f*ck")


@_compiled
def test_term_table_gives_the_dict_ids(real, model):
    scorer = stage.ToxicityScorer(model)
    lookup = scorer._lookup
    table = stage._terms.TermTable(lookup)
    assert len(table) == len(lookup)
    texts = [scorer._prepared(t) for t in real] + _unicode_fuzz(3000, seed=7) + MASK_EDGES
    want = b"".join(stage._terms.marked(t, lookup, stage._UNKNOWN) + stage._DOC_BYTES for t in texts)
    got = table.marked_many(texts, stage._UNKNOWN, stage._DOC)
    assert got == want and len(want) > 80_000
    assert table.marked_many([], -4, -3) == b""


@_compiled
def test_term_table_edge_keys():
    # keys outside the BMP, one code point, keys sharing a prefix; non-str keys never match a token
    lookup = {"\U0001f600\U0001f600": 7, "ab": 1, "abc": 2, "\n": -1, ".": -2, 5: 9, "\u00e9t\u00e9": 3}
    table = stage._terms.TermTable(lookup)
    assert len(table) == 6
    texts = ["ab abc abcd. \u00e9t\u00e9\n\U0001f600\U0001f600 5 55", ""]
    ids = np.frombuffer(table.marked_many(texts, -4, -3), dtype=np.int64)
    # emoji are not \w (no term), "5" is too short to be one, "55" is unknown; one -3 per text
    assert ids.tolist() == [1, 2, -4, -2, 3, -1, -4, -3, -3]
    assert ids.tobytes() == b"".join(stage._terms.marked(t, lookup, -4) + stage._DOC_BYTES for t in texts)
    with pytest.raises(TypeError):
        table.marked_many(["ok", b"bytes"], -4, -3)
    with pytest.raises(TypeError):
        stage._terms.TermTable({"a": "not an int"})
