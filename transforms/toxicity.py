"""Toxicity tagging: every document gets ``toxicity_score`` in [0, 1]; optionally, high scores are rejected.

Before scoring, with ``clean_text`` (default), mentions, URLs, retweet markers and HTML entities are
dropped and masked profanity (``f*ck``) is spelt out (:mod:`corpusforge.transforms.toxicity_text`).

Documents are mixtures, so the classifier (:mod:`corpusforge.transforms.toxicity_model`, a linear
model trained on short texts: tweets and comments) scores *segments*, not whole pages:

* a segment is a line; a line longer than ``long_line_chars`` is split into sentences, and a
  sentence with more than ``max_segment_terms`` vocabulary terms into chunks of that many terms, so
  that the unit scored resembles what the model was trained on (one tweet or comment);
* each segment gets a probability ``p_i`` and a weight ``n_i``, its number of vocabulary terms
  (segments with none carry no evidence and are skipped);
* the document score combines how bad the worst part is with how much of the document is bad:

      peak       = max_i p_i
      prevalence = sum_i n_i p_i / sum_i n_i
      score      = peak ** peak_weight * prevalence ** (1 - peak_weight)

  With the default ``peak_weight`` 0.5 (a geometric mean) a toxic rant scores high on both and stays
  high, a long clean page with one toxic paragraph keeps a clear but moderate score (high peak, low
  prevalence) and a clean page stays low. ``peak_weight`` 1 flags any toxic line; 0 is the plain
  term-weighted mean. A single-segment text (a tweet) scores exactly the model's probability.
* a document without any vocabulary term (empty, or not English: the model is English only) scores
  0.0 and is counted under ``no_terms``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from corpusforge.schemas.records import Document, Rejection
from corpusforge.transforms.base import ApplyStage, DocumentStage, StageCounters
from corpusforge.transforms.toxicity_model import LinearToxicityModel
from corpusforge.transforms.toxicity_text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts

# Sentence ends: terminal punctuation followed by white space.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")
# Buckets of the score histogram in stats.json (lower bounds; the last bucket is [0.9, 1]).
HISTOGRAM_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))


def aggregate(probs: np.ndarray, weights: np.ndarray, peak_weight: float) -> float:
    """Document score from segment probabilities and term-count weights (see the module doc)."""
    if len(probs) == 0 or weights.sum() <= 0:
        return 0.0
    peak = float(probs.max())
    prevalence = float(np.dot(probs, weights) / weights.sum())
    return float(peak**peak_weight * prevalence ** (1.0 - peak_weight))


class ToxicityScorer:
    """Pure scoring logic: segmentation, batched classification, aggregation. No Beam in here."""

    def __init__(
        self,
        model: LinearToxicityModel,
        peak_weight: float = 0.5,
        long_line_chars: int = 300,
        max_segment_terms: int = 64,
        clean_text: bool = True,
    ) -> None:
        self.model = model
        self.peak_weight = peak_weight
        self.long_line_chars = long_line_chars
        self.max_segment_terms = max_segment_terms
        self.clean_text = clean_text
        self.unmask = Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))

    def segments(self, text: str) -> list[list[int]]:
        """Term ids of each segment of ``text`` that has at least one vocabulary term."""
        out: list[list[int]] = []
        term_ids = self.model.term_ids
        step = self.max_segment_terms
        limit = self.long_line_chars
        # Lower-case once per document (str.lower keeps line breaks where they are).
        lowered = self.unmask(strip_artefacts(text).lower()) if self.clean_text else text.lower()
        for line in lowered.split("\n"):
            pieces = _SENTENCE_END.split(line) if len(line) > limit else (line,)
            for piece in pieces:
                ids = term_ids(piece, lowered=True)
                if len(ids) <= step:
                    if ids:
                        out.append(ids)
                else:
                    out.extend(ids[i : i + step] for i in range(0, len(ids), step))
        return out

    def score_many(self, texts: Sequence[str]) -> list[float | None]:
        """Document scores for ``texts``; None where a text has no vocabulary term at all."""
        per_doc = [self.segments(t) for t in texts]
        flat = [seg for segs in per_doc for seg in segs]
        probs = self.model.score_ids(flat) if flat else np.zeros(0)
        out: list[float | None] = []
        start = 0
        for segs in per_doc:
            if not segs:
                out.append(None)
                continue
            end = start + len(segs)
            weights = np.fromiter((len(s) for s in segs), dtype=np.float64, count=len(segs))
            out.append(aggregate(probs[start:end], weights, self.peak_weight))
            start = end
        return out

    def score(self, text: str) -> float | None:
        return self.score_many([text])[0]


class TagToxicity(DocumentStage):
    """Sets ``toxicity_score`` on every document; with ``filter`` rejects scores >= ``threshold``.

    Counters (stats.json ``stages.toxicity.counters``): ``no_terms`` (scored 0.0 for lack of
    evidence), ``above_threshold`` (documents at or over the threshold, counted even when only
    tagging) and the histogram ``hist:toxicity_score:<lower bound>``.
    """

    name = "toxicity"

    def __init__(
        self,
        threshold: float = 0.7,
        filter: bool = False,
        peak_weight: float = 0.5,
        long_line_chars: int = 300,
        max_segment_terms: int = 64,
        clean_text: bool = True,
        batch_size: int = 256,
        model_path: str | None = None,
    ) -> None:
        self.clean_text = clean_text
        self.threshold = threshold
        self.filter = filter
        self.peak_weight = peak_weight
        self.long_line_chars = long_line_chars
        self.max_segment_terms = max_segment_terms
        self.batch_size = batch_size
        self.model_path = model_path
        self._scorer: ToxicityScorer | None = None
        self._counters: StageCounters | None = None

    def setup(self) -> None:
        model = LinearToxicityModel.load(self.model_path)
        self._scorer = ToxicityScorer(
            model, self.peak_weight, self.long_line_chars, self.max_segment_terms, self.clean_text
        )
        self._counters = StageCounters(self.name)

    def __getstate__(self) -> dict:
        # The model is built per worker in setup(), never pickled with the graph.
        state = dict(self.__dict__)
        state["_scorer"] = None
        state["_counters"] = None
        return state

    def process(self, doc: Document) -> Document | Rejection:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | Rejection]:
        if self._scorer is None:
            self.setup()
        assert self._scorer is not None and self._counters is not None
        out: list[Document | Rejection] = []
        for doc, score in zip(docs, self._scorer.score_many([d.text or "" for d in docs]), strict=True):
            if score is None:
                self._counters.inc("no_terms")
                score = 0.0
            self._counters.observe("toxicity_score", score, HISTOGRAM_EDGES)
            if score >= self.threshold:
                self._counters.inc("above_threshold")
                if self.filter:
                    out.append(self.reject("above_threshold", f"toxicity_score={score:.3f}"))
                    continue
            out.append(replace(doc, toxicity_score=score))
        return out


def tag_toxicity(cfg) -> ApplyStage | None:  # cfg: corpusforge.pipelines.config.ToxicityConfig
    """The stage's transform from its config section, or None when disabled."""
    if not cfg.enabled:
        return None
    return ApplyStage(
        TagToxicity(
            threshold=cfg.threshold,
            filter=cfg.filter,
            peak_weight=cfg.peak_weight,
            long_line_chars=cfg.long_line_chars,
            max_segment_terms=cfg.max_segment_terms,
            clean_text=cfg.clean_text,
            batch_size=cfg.batch_size,
            model_path=cfg.model_path,
        )
    )
