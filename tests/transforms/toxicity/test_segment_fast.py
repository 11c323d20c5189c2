"""The batched segmentation reads the classifier's terms straight into one array (by the compiled
scan ``_terms.c`` where it was built, else by the regex through a C-level ``map``): the same arrays,
and so the same scores bit for bit, as the reference of one list per document (``marked_ids``)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from corpusforge.schemas.config import ToxicityConfig
from corpusforge.transforms.toxicity import stage
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.stage import ToxicityScorer
from tests.helpers import sample_texts
from tests.transforms.tokenize.test_word_cache import HOSTILE


class _Reference(ToxicityScorer):
    """The segmentation as it was: a list comprehension per document, joined, then one array."""

    def _marked_array(self, texts):
        flat: list[int] = []
        for text in texts:
            lowered = self.unmask(stage.strip_artefacts(text).lower()) if self.clean_text else text.lower()
            get = self._lookup.get
            flat += [get(token, stage._UNKNOWN) for token in stage._SCAN.findall(lowered)]
            flat.append(stage._DOC)
        return np.asarray(flat, dtype=np.int64)


@pytest.fixture(params=["compiled", "regex"])
def path(request, monkeypatch):
    if request.param == "compiled" and stage._terms is None:
        pytest.skip("transforms/toxicity/_terms.c was not compiled here")
    if request.param == "regex":
        monkeypatch.setattr(stage, "_terms", None)
    return request.param


def _unicode_fuzz(n: int, seed: int) -> list[str]:
    """Texts mixing code points from all of Unicode with words, breaks and sentence ends, so that
    every class the regex's ``\\w`` and ``\\s`` decide is met next to the markers."""
    rng = random.Random(seed)
    common = list("ab_ 1\n.!?\u2026\t\u00a0\u3000\u2028") + [" shit", " the ", "f*ck", "@user "]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(0, 60)):
            if rng.random() < 0.3:
                cp = rng.randrange(0x110000)
                chars.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "x")
            else:
                chars.append(rng.choice(common))
        out.append("".join(chars))
    return out + [
        "",
        "a",
        "ab",
        "end.",
        "end. ",
        "x.\n",
        "\u2026 ",
        "_a",
        "__",
        "\u0663\u0664",
        "\u216b\u216b",
    ]


def test_the_fast_paths_give_the_reference_ids_on_all_of_unicode(path):
    model = LinearToxicityModel.load()
    fast, ref = ToxicityScorer(model, ToxicityConfig()), _Reference(model, ToxicityConfig())
    texts = _unicode_fuzz(3000, seed=5)
    got, want = fast._marked_array(texts), ref._marked_array(texts)
    assert got.size > 10_000 and got.tobytes() == want.tobytes()


def test_the_fast_segmentation_gives_the_reference_arrays_and_scores(path):
    model = LinearToxicityModel.load()
    texts = (
        sample_texts() + HOSTILE + ["Shut the f*ck up, @user, you stupid b1tch. RT http://x.y", "", "\n\n"]
    )
    for clean in (True, False):
        cfg = ToxicityConfig(clean_text=clean)
        fast, ref = ToxicityScorer(model, cfg), _Reference(model, cfg)
        for start in range(0, len(texts), 64):
            batch = texts[start : start + 64]
            english = [i % 3 == 0 for i in range(len(batch))]
            for got, want in zip(
                fast.segment_batch(batch, english), ref.segment_batch(batch, english), strict=True
            ):
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            assert fast.score_many(batch, english) == ref.score_many(batch, english)
    assert any(s and s > 0.5 for s in fast.score_many(texts[-3:]))  # the toxic line is scored
