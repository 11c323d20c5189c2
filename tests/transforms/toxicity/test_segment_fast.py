"""The batched segmentation reads the classifier's terms straight into one array: the same arrays,
and so the same scores bit for bit, as the reference of one list per document (``marked_ids``)."""

from __future__ import annotations

import numpy as np

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


def test_the_fast_segmentation_gives_the_reference_arrays_and_scores():
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
