"""Toxicity tagging: every document gets ``toxicity_score`` in [0, 1]; optionally, high scores are rejected.

Before scoring, with ``clean_text`` (default), mentions, URLs, retweet markers and HTML entities are
dropped and masked profanity (``f*ck``) is spelt out (:mod:`corpusforge.transforms.toxicity_text`).

Speed: each document is tokenised by one regex pass that also yields line and sentence breaks; the
segmentation, the classifier and the aggregation then run in numpy over a whole batch of documents.

Documents are mixtures, so the classifier (:mod:`corpusforge.transforms.toxicity_model`, a linear
model trained on short texts: tweets and comments) scores *segments*, not whole pages:

* a segment is a line; a line with more than ``max_segment_terms`` vocabulary terms is split into
  sentences (at ``.``, ``!``, ``?`` or ``…`` followed by white space), and a sentence still longer
  than that into chunks of that many terms, so that the unit scored resembles what the model was
  trained on (one tweet or comment);
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

from corpusforge.schemas.records import Document, Rejected
from corpusforge.transforms.base import ApplyStage, DocumentStage, StageCounters
from corpusforge.transforms.toxicity_model import LinearToxicityModel
from corpusforge.transforms.toxicity_text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts

# One pass per document: the classifier's terms (scikit-learn's ``\b\w\w+\b``: a greedy ``\w\w+``
# scanned left to right matches exactly the same runs), line breaks, and sentence ends.
_SCAN = re.compile(r"\w\w+|\n|[.!?\u2026](?=\s)")
_LINE, _SENTENCE, _DOC = -1, -2, -3  # markers among term ids (term ids are >= 0)
_MARKERS = {"\n": _LINE, ".": _SENTENCE, "!": _SENTENCE, "?": _SENTENCE, "\u2026": _SENTENCE}
# Buckets of the score histogram in stats.json (lower bounds; the last bucket is [0.9, 1]).
HISTOGRAM_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))


def aggregate(probs: np.ndarray, weights: np.ndarray, peak_weight: float) -> float:
    """Document score from segment probabilities and term-count weights (see the module doc).

    The scalar reference of what :meth:`ToxicityScorer.score_many` computes for a whole batch in numpy.
    """
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
        max_segment_terms: int = 64,
        clean_text: bool = True,
    ) -> None:
        self.model = model
        self.peak_weight = peak_weight
        self.max_segment_terms = max_segment_terms
        self.clean_text = clean_text
        self.unmask = Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))
        self._lookup = {**model.index, **_MARKERS}

    def marked_ids(self, text: str) -> list[int]:
        """Term ids of ``text`` in order, with line and sentence break markers (negative) between."""
        # Lower-case once per document (str.lower keeps line breaks where they are).
        lowered = self.unmask(strip_artefacts(text).lower()) if self.clean_text else text.lower()
        return [i for i in map(self._lookup.get, _SCAN.findall(lowered)) if i is not None]

    def segment_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment a batch: ``(term_ids, seg, seg_doc)``, the segment of each term, the document of each segment.

        Segments are numbered in document order, and only segments with at least one term exist.
        """
        flat: list[int] = []
        for text in texts:
            flat += self.marked_ids(text)
            flat.append(_DOC)
        arr = np.asarray(flat, dtype=np.int64)
        doc_of = np.cumsum(arr == _DOC) - (arr == _DOC)  # document index at every position
        line_of = np.cumsum((arr == _LINE) | (arr == _DOC))
        sent_of = np.cumsum(arr < 0)
        is_term = arr >= 0
        term_ids = arr[is_term]
        if not len(term_ids):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        line, sent, doc = line_of[is_term], sent_of[is_term], doc_of[is_term]
        # Lines with too many terms are split at sentence ends: their unit is the sentence.
        line_terms = np.bincount(line)
        unit = np.where(line_terms[line] > self.max_segment_terms, sent, line)
        unit_start = np.empty(len(unit), dtype=bool)
        unit_start[0] = True
        np.not_equal(unit[1:], unit[:-1], out=unit_start[1:])
        # Position of each term in its unit; a new segment every max_segment_terms terms.
        starts = np.flatnonzero(unit_start)
        pos = np.arange(len(unit)) - np.repeat(starts, np.diff(np.append(starts, len(unit))))
        seg_start = pos % self.max_segment_terms == 0
        seg = np.cumsum(seg_start) - 1
        return term_ids, seg, doc[seg_start]

    def segments(self, text: str) -> list[list[int]]:
        """Term ids of each segment of ``text`` (for inspection and tests; scoring uses batches)."""
        ids, seg, _ = self.segment_batch([text])
        return (
            [chunk.tolist() for chunk in np.split(ids, np.flatnonzero(np.diff(seg)) + 1)] if len(ids) else []
        )

    def score_many(self, texts: Sequence[str]) -> list[float | None]:
        """Document scores for ``texts``; None where a text has no vocabulary term at all."""
        ids, seg, seg_doc = self.segment_batch(texts)
        n_docs = len(texts)
        if not len(ids):
            return [None] * n_docs
        n_seg = len(seg_doc)
        probs = self.model.score_flat(ids, seg, n_seg)
        terms = np.bincount(seg, minlength=n_seg).astype(np.float64)
        total = np.bincount(seg_doc, weights=terms, minlength=n_docs)
        prevalence = np.bincount(seg_doc, weights=terms * probs, minlength=n_docs)
        has = total > 0
        prevalence[has] /= total[has]
        first = np.flatnonzero(np.diff(seg_doc, prepend=-1))  # first segment of each scored document
        peak = np.zeros(n_docs)
        peak[seg_doc[first]] = np.maximum.reduceat(probs, first)
        w = self.peak_weight
        scores = peak**w * prevalence ** (1.0 - w)
        return [float(x) if h else None for x, h in zip(scores, has, strict=True)]

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
        max_segment_terms: int = 64,
        clean_text: bool = True,
        batch_size: int = 256,
        model_path: str | None = None,
    ) -> None:
        self.clean_text = clean_text
        self.threshold = threshold
        self.filter = filter
        self.peak_weight = peak_weight
        self.max_segment_terms = max_segment_terms
        self.batch_size = batch_size
        self.model_path = model_path
        self._scorer: ToxicityScorer | None = None
        self._counters: StageCounters | None = None

    def setup(self) -> None:
        model = LinearToxicityModel.load(self.model_path)
        self._scorer = ToxicityScorer(model, self.peak_weight, self.max_segment_terms, self.clean_text)
        self._counters = StageCounters(self.name)

    def __getstate__(self) -> dict:
        # The model is built per worker in setup(), never pickled with the graph.
        state = dict(self.__dict__)
        state["_scorer"] = None
        state["_counters"] = None
        return state

    def process(self, doc: Document) -> Document | Rejected:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | Rejected]:
        if self._scorer is None:
            self.setup()
        assert self._scorer is not None and self._counters is not None
        out: list[Document | Rejected] = []
        for doc, score in zip(docs, self._scorer.score_many([d.text or "" for d in docs]), strict=True):
            if score is None:
                self._counters.inc("no_terms")
                score = 0.0
            self._counters.observe("toxicity_score", score, HISTOGRAM_EDGES)
            tagged = replace(doc, toxicity_score=score)
            if score >= self.threshold:
                self._counters.inc("above_threshold")
                if self.filter:
                    # Rejected with its score, so rejected/ shows why (and can be audited by score).
                    out.append(
                        Rejected(tagged, self.reject("above_threshold", f"toxicity_score={score:.3f}"))
                    )
                    continue
            out.append(tagged)
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
            max_segment_terms=cfg.max_segment_terms,
            clean_text=cfg.clean_text,
            batch_size=cfg.batch_size,
            model_path=cfg.model_path,
        )
    )
