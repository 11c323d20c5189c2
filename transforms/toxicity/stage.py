"""Toxicity tagging: every document gets ``toxicity_score`` in [0, 1]; optionally, high scores are rejected.

Before scoring, with ``clean_text`` (default), mentions, URLs, retweet markers and HTML entities are
dropped and masked profanity (``f*ck``) is spelt out (:mod:`corpusforge.transforms.toxicity.text`).

Speed: each document is tokenised by one regex pass that also yields line and sentence breaks; the
segmentation, the classifier and the aggregation then run in numpy over a whole batch of documents.

Documents are mixtures, so the classifier (:mod:`corpusforge.transforms.toxicity.model`, a linear
model trained on short texts: tweets and comments) scores *segments*, not whole pages:

* a segment is a line; a line with more than ``max_segment_terms`` vocabulary terms is split into
  sentences (at ``.``, ``!``, ``?`` or ``…`` followed by white space), and a sentence still longer
  than that into chunks of that many terms, so that the unit scored resembles what the model was
  trained on (one tweet or comment);
* each segment gets a probability ``p_i`` and a weight ``n_i``, the number of words it stands for;
  ``N`` is the number of words of the whole document (lines the model cannot score count there
  as not toxic);
* the document score combines how bad the worst part is with how much of the document is bad:

      peak       = max_i p_i
      prevalence = sum_i n_i p_i / N
      score      = peak ** peak_weight * prevalence ** (1 - peak_weight)

  With the default ``peak_weight`` 0.5 (a geometric mean) a toxic rant scores high on both and stays
  high, a long clean page with one toxic paragraph keeps a clear but moderate score (high peak, low
  prevalence) and a clean page stays low. ``peak_weight`` 1 flags any toxic line; 0 is the plain
  word-weighted mean. A single-segment text (a tweet) scores exactly the model's probability.
* the model reads English only, and text in another language still holds a few of its terms
  (German "die", "fast", "hell") that would decide a line's score alone. Coverage is the share of
  words the model knows (its vocabulary and its stop words): on the dev pages English documents
  reach a median of 0.90 (5th percentile 0.78) and German ones 0.29. In a document whose coverage
  is at least ``min_coverage`` every segment is scored; in one below it (a foreign document) only
  lines or sentences with that coverage and at least ``MIN_FOREIGN_LINE_WORDS`` words are, so an
  English paragraph inside a German page is still scored while stray terms are not. A document
  with no scored segment (empty, or not English) scores 0.0, "no evidence of toxicity", and is
  counted under ``unscored``. When the language stage ran and said ``en``, the document is read
  whole whatever its coverage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import chain, repeat

import numpy as np

from corpusforge.schemas.config import ToxicityConfig
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.base import ApplyStage, DocumentStage
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts

try:  # the optional compiled term scan (setup.py); the regex path below gives the same ids
    from corpusforge.transforms.toxicity import _terms
except ImportError:  # pragma: no cover - depends on the build
    _terms = None

# One pass per document: the classifier's terms (scikit-learn's ``\b\w\w+\b``: a greedy ``\w\w+``
# scanned left to right matches exactly the same runs), line breaks, and sentence ends.
_SCAN = re.compile(r"\w\w+|\n|[.!?\u2026](?=\s)")
# Markers among the term ids (which are >= 0): breaks, then words the classifier has no weight for.
_LINE, _SENTENCE, _DOC, _UNKNOWN, _STOP = -1, -2, -3, -4, -5
_DOC_END = (_DOC,)
_DOC_BYTES = np.asarray(_DOC_END, dtype=np.int64).tobytes()  # the compiled scan's native int64
_MARKERS = {"\n": _LINE, ".": _SENTENCE, "!": _SENTENCE, "?": _SENTENCE, "\u2026": _SENTENCE}
# In a document the model cannot read as a whole, a line must have at least this many words to be
# scored on its own (short foreign lines reach any coverage by chance: "Wo die").
MIN_FOREIGN_LINE_WORDS = 5
# Buckets of the score histogram in stats.json (lower bounds; the last bucket is [0.9, 1]).
HISTOGRAM_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))


def aggregate(
    probs: np.ndarray, weights: np.ndarray, peak_weight: float, total: float | None = None
) -> float:
    """Document score from segment probabilities and word-count weights (see the module doc).

    ``total``: the document's words (default: the segments' own). The scalar reference of what
    :meth:`ToxicityScorer.score_many` computes for a whole batch in numpy.
    """
    total = float(weights.sum()) if total is None else total
    if len(probs) == 0 or total <= 0:
        return 0.0
    peak = float(probs.max())
    prevalence = min(float(np.dot(probs, weights)) / total, 1.0)
    return float(peak**peak_weight * prevalence ** (1.0 - peak_weight))


class ToxicityScorer:
    """Pure scoring logic: segmentation, batched classification, aggregation. No Beam in here."""

    def __init__(self, model: LinearToxicityModel, cfg: ToxicityConfig | None = None) -> None:
        """Segmentation and aggregation settings come from ``cfg`` (the defaults of :class:`ToxicityConfig`)."""
        cfg = cfg or ToxicityConfig()
        self.model = model
        self.peak_weight = cfg.peak_weight
        self.max_segment_terms = cfg.max_segment_terms
        self.clean_text = cfg.clean_text
        self.unmask = Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))
        self.min_coverage = cfg.min_coverage
        self._lookup = {**dict.fromkeys(model.stop_words, _STOP), **model.index, **_MARKERS}
        # The same look-up as a C hash table (``_terms.TermTable``), built once here, for the
        # compiled scan; None where _terms was not built, or is an older build without it.
        table_type = getattr(_terms, "TermTable", None)
        self._table = table_type(self._lookup) if table_type is not None else None

    def marked_ids(self, text: str) -> list[int]:
        """Every word of ``text`` in order (term id, or a stop-word or unknown-word marker), with
        line and sentence break markers between."""
        # Lower-case once per document (str.lower keeps line breaks where they are).
        lowered = self._prepared(text)
        return list(self._marked(lowered))

    def _marked(self, lowered: str) -> Iterator[int]:
        """:meth:`marked_ids` of prepared text, lazily: one C-level ``map`` of the look-up over the
        tokens (a third cheaper than a list comprehension calling ``get`` per token)."""
        return map(self._lookup.get, _SCAN.findall(lowered), repeat(_UNKNOWN))

    def _prepared(self, text: str) -> str:
        return self.unmask(strip_artefacts(text).lower()) if self.clean_text else text.lower()

    def _marked_array(self, texts: Sequence[str]) -> np.ndarray:
        """Every document's :meth:`marked_ids` followed by a document marker, read straight into one
        array (no list per document, no joined list). Where ``_terms.c`` was compiled, one pass
        over each document's code points finds its terms and looks them up (no list of token
        strings: ~2x cheaper than the regex and the ``map``), in the C hash table of
        ``_terms.TermTable`` (no str object per token either) for the whole batch at once;
        ``_terms`` is read per call, tests set it to None to run the regex path."""
        if _terms is not None and self._table is not None:
            # One call for the batch: no str object per token (the table compares code points in
            # place), no bytes per document; the same ids as the dict look-up below.
            prepared = [self._prepared(t) for t in texts]
            return np.frombuffer(self._table.marked_many(prepared, _UNKNOWN, _DOC), dtype=np.int64)
        if _terms is not None:
            lookup, scan = self._lookup, _terms.marked
            parts = [scan(self._prepared(t), lookup, _UNKNOWN) + _DOC_BYTES for t in texts]
            return np.frombuffer(b"".join(parts), dtype=np.int64)
        marked = (self._marked(self._prepared(t)) for t in texts)
        return np.fromiter(chain.from_iterable(chain(m, _DOC_END) for m in marked), dtype=np.int64)

    def segment_batch(
        self, texts: Sequence[str], english: Sequence[bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Segment a batch: ``(term_ids, seg, seg_doc, seg_words, doc_words)``.

        ``seg`` is the segment of each term, ``seg_doc`` the document of each segment (segments are
        numbered in document order), ``seg_words`` the words a segment stands for (its unit's words,
        shared among the unit's chunks by terms) and ``doc_words`` the words of each document.
        Only scored segments exist: with at least one term and, in a document the model cannot read
        as a whole (coverage < ``min_coverage``), in a line or sentence it can read (see the module doc).
        ``english``: documents a language identifier found to be English, read whole whatever their
        coverage (hashtags and names lower it in short posts).
        """
        arr = self._marked_array(texts)
        n_docs = len(texts)
        is_break = (arr < 0) & (arr >= _DOC)
        doc_of = np.cumsum(arr == _DOC) - (arr == _DOC)  # document index at every position
        line_of = np.cumsum((arr == _LINE) | (arr == _DOC))
        sent_of = np.cumsum(is_break)
        is_term = arr >= 0
        # Lines with too many terms are split at sentence ends: their unit is the sentence.
        line_terms = np.bincount(line_of[is_term], minlength=int(line_of[-1]) + 1)
        words = np.flatnonzero(~is_break)
        empty = np.zeros(0, dtype=np.int64)
        if not len(words):
            return empty, empty, empty, np.zeros(0), np.zeros(n_docs)
        w_arr, w_line, w_sent, w_doc = arr[words], line_of[words], sent_of[words], doc_of[words]
        w_known = (w_arr != _UNKNOWN).astype(np.float64)
        doc_words = np.bincount(w_doc, minlength=n_docs).astype(np.float64)
        w_long = line_terms[w_line] > self.max_segment_terms
        new_unit = np.empty(len(words), dtype=bool)
        new_unit[0] = True
        new_unit[1:] = (w_line[1:] != w_line[:-1]) | (w_long[1:] & (w_sent[1:] != w_sent[:-1]))
        w_unit = np.cumsum(new_unit) - 1
        unit_words = np.bincount(w_unit).astype(np.float64)
        # Coverage: the share of words the model knows (its terms and stop words).
        doc_cov = np.bincount(w_doc, weights=w_known, minlength=n_docs) / np.maximum(doc_words, 1)
        unit_cov = np.bincount(w_unit, weights=w_known) / unit_words
        whole = doc_cov >= self.min_coverage
        if english is not None:
            whole |= np.asarray(english, dtype=bool)
        readable = whole[w_doc] | (
            (unit_cov[w_unit] >= self.min_coverage) & (unit_words[w_unit] >= MIN_FOREIGN_LINE_WORDS)
        )
        keep = (w_arr >= 0) & readable
        term_ids, t_unit, t_doc = w_arr[keep], w_unit[keep], w_doc[keep]
        if not len(term_ids):
            return empty, empty, empty, np.zeros(0), doc_words
        unit_start = np.empty(len(t_unit), dtype=bool)
        unit_start[0] = True
        np.not_equal(t_unit[1:], t_unit[:-1], out=unit_start[1:])
        # Position of each term in its unit; a new segment every max_segment_terms terms.
        starts = np.flatnonzero(unit_start)
        pos = np.arange(len(t_unit)) - np.repeat(starts, np.diff(np.append(starts, len(t_unit))))
        seg_start = pos % self.max_segment_terms == 0
        seg = np.cumsum(seg_start) - 1
        seg_terms = np.bincount(seg).astype(np.float64)
        seg_unit = t_unit[seg_start]
        unit_terms = np.bincount(t_unit, minlength=len(unit_words)).astype(np.float64)
        seg_words = unit_words[seg_unit] * seg_terms / unit_terms[seg_unit]
        return term_ids, seg, t_doc[seg_start], seg_words, doc_words

    def segments(self, text: str) -> list[list[int]]:
        """Term ids of each segment of ``text`` (for inspection and tests; scoring uses batches)."""
        ids, seg, *_ = self.segment_batch([text])
        return (
            [chunk.tolist() for chunk in np.split(ids, np.flatnonzero(np.diff(seg)) + 1)] if len(ids) else []
        )

    def score_many(self, texts: Sequence[str], english: Sequence[bool] | None = None) -> list[float | None]:
        """Document scores for ``texts``; None where no segment of a text could be scored."""
        ids, seg, seg_doc, seg_words, doc_words = self.segment_batch(texts, english)
        n_docs = len(texts)
        if not len(ids):
            return [None] * n_docs
        probs = self.model.score_flat(ids, seg, len(seg_doc))
        # Prevalence: the share of the document's words in toxic segments; words the model could
        # not score (foreign lines, lines without terms) count as not toxic.
        toxic_words = np.bincount(seg_doc, weights=seg_words * probs, minlength=n_docs)
        prevalence = np.minimum(toxic_words / np.maximum(doc_words, 1.0), 1.0)
        first = np.flatnonzero(np.diff(seg_doc, prepend=-1))  # first segment of each scored document
        has = np.zeros(n_docs, dtype=bool)
        has[seg_doc[first]] = True
        peak = np.zeros(n_docs)
        peak[seg_doc[first]] = np.maximum.reduceat(probs, first)
        w = self.peak_weight
        scores = peak**w * prevalence ** (1.0 - w)
        return [float(x) if h else None for x, h in zip(scores, has, strict=True)]

    def score(self, text: str) -> float | None:
        return self.score_many([text])[0]


class ToxicityTagger(DocumentStage):
    """Sets ``toxicity_score`` on every document; with ``filter`` rejects scores >= ``threshold``.

    Counters (stats.json ``stages.toxicity.counters``): ``unscored`` (scored 0.0 for lack of
    readable English text), ``above_threshold`` (documents at or over the threshold, counted even when only
    tagging) and the histogram ``hist:toxicity_score:<lower bound>``.
    """

    name = "toxicity"
    per_worker = ("_scorer",)  # the model is built per worker in setup(), never pickled with the graph
    _scorer: ToxicityScorer | None = None

    def __init__(self, cfg: ToxicityConfig | None = None) -> None:
        self.cfg = cfg or ToxicityConfig()
        self.threshold = self.cfg.threshold
        self.filter = self.cfg.filter
        self.batch_size = self.cfg.batch_size

    def setup(self) -> None:
        model = LinearToxicityModel.load(self.cfg.model_path)
        self._scorer = ToxicityScorer(model, self.cfg)

    def process(self, doc: Document) -> Document | RejectedDocument:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | RejectedDocument]:
        self.ready()
        assert self._scorer is not None and self.counters is not None
        out: list[Document | RejectedDocument] = []
        # A document the language stage identified as English is read whole (see segment_batch).
        english = [(d.lang or "").lower().startswith("en") for d in docs]
        scores = self._scorer.score_many([d.text or "" for d in docs], english)
        for doc, score in zip(docs, scores, strict=True):
            if score is None:
                self.counters.inc("unscored")
                score = 0.0
            self.counters.observe("toxicity_score", score, HISTOGRAM_EDGES)
            tagged = replace(doc, toxicity_score=score)
            if score >= self.threshold:
                self.counters.inc("above_threshold")
                if self.filter:
                    # Rejected with its score, so rejected/ shows why (and can be audited by score).
                    out.append(
                        RejectedDocument(
                            tagged, self.reject("above_threshold", f"toxicity_score={score:.3f}")
                        )
                    )
                    continue
            out.append(tagged)
        return out


class TagToxicity(ApplyStage):
    """Stage ``toxicity`` from its section (``cfg.toxicity``): documents -> ``(kept, rejected)``;
    rejects only with ``filter`` on."""

    def __init__(self, cfg: ToxicityConfig) -> None:
        super().__init__(ToxicityTagger(cfg))
        self.cfg = cfg
