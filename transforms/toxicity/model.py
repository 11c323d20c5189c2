"""The toxicity classifier: a TF-IDF + calibrated linear SVM evaluated in numpy, no scikit-learn.

The parameters come from alt-profanity-check (MIT), exported once by
``scripts/build_toxicity_model.py`` into ``package/assets/toxicity_linear.npz``: the vocabulary,
each fold's weights pre-multiplied by the term's idf, intercepts and the sigmoid calibration of each
of the 5 calibration folds. For a text the probability is exactly the package's ``predict_prob``:

    x_t   = count(t) * idf_t                     (terms: lower-cased ``\\b\\w\\w+\\b`` tokens in the vocabulary)
    f_k   = sum_t count(t) * (w_kt * idf_t) / ||x||_2 + b_k
    p     = mean_k 1 / (1 + exp(a_k * f_k + c_k))

Scoring is batched: many segments (lines, sentences) are scored with a handful of numpy calls, so the
Python work per token is one regex match and one dict look-up. This module imports only numpy and
the standard library (the export script loads it from its file to check the export).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

# scikit-learn's default token pattern (applied after str.lower(), as its CountVectorizer does).
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
ASSET_NAME = "toxicity_linear.npz"


def default_model_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("corpusforge").joinpath("assets", ASSET_NAME)))


class LinearToxicityModel:
    """Immutable model parameters plus vectorised scoring. Build with :meth:`load` (once per worker)."""

    def __init__(
        self,
        vocab: Sequence[str],
        idf: np.ndarray,
        weights: np.ndarray,
        intercepts: np.ndarray,
        cal_a: np.ndarray,
        cal_b: np.ndarray,
        stop_words: Sequence[str] = (),
    ) -> None:
        self.stop_words = frozenset(stop_words)
        self.index: dict[str, int] = {term: i for i, term in enumerate(vocab)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)  # (V, folds), already times idf
        self.intercepts = np.asarray(intercepts, dtype=np.float64)
        self.cal_a = np.asarray(cal_a, dtype=np.float64)
        self.cal_b = np.asarray(cal_b, dtype=np.float64)
        self.size = len(self.index)
        if self.weights.shape != (self.size, len(self.intercepts)) or self.idf.shape != (self.size,):
            raise ValueError("toxicity model arrays do not agree in shape")

    @classmethod
    def load(cls, path: str | Path | None = None) -> LinearToxicityModel:
        with np.load(path or default_model_path(), allow_pickle=False) as z:
            vocab = str(z["vocab"]).split("\n")
            stop = str(z["stop_words"]).split("\n") if "stop_words" in z.files else ()
            return cls(vocab, z["idf"], z["weights"], z["intercepts"], z["cal_a"], z["cal_b"], stop)

    def offensive_terms(self, min_weight: float) -> dict[str, float]:
        """Vocabulary terms whose SVM weight, averaged over the folds, is at least ``min_weight``."""
        mean_weight = (self.weights / self.idf[:, None]).mean(axis=1)
        vocab = sorted(self.index, key=self.index.__getitem__)
        return {vocab[i]: float(mean_weight[i]) for i in np.flatnonzero(mean_weight >= min_weight)}

    def term_ids(self, text: str, lowered: bool = False) -> list[int]:
        """Vocabulary ids of the text's terms, in order, out-of-vocabulary tokens (and stop words) dropped.

        ``lowered``: the caller already lower-cased the text (done once per document, not per line).
        """
        get = self.index.get
        return [
            i for i in map(get, TOKEN_PATTERN.findall(text if lowered else text.lower())) if i is not None
        ]

    def score_ids(self, segments: Sequence[Sequence[int]]) -> np.ndarray:
        """Probability of being offensive for each segment given as a list of term ids."""
        n = len(segments)
        lengths = np.fromiter((len(s) for s in segments), dtype=np.int64, count=n)
        ids = np.fromiter(chain.from_iterable(segments), dtype=np.int64, count=int(lengths.sum()))
        return self.score_flat(ids, np.repeat(np.arange(n, dtype=np.int64), lengths), n)

    def score_flat(self, ids: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
        """Probabilities of ``n`` segments given flat term ``ids`` and the segment ``seg`` of each."""
        f = np.zeros((n, len(self.intercepts)))
        if len(ids):
            keys, counts = np.unique(seg * self.size + ids, return_counts=True)
            s, t = np.divmod(keys, self.size)
            x = counts * self.idf[t]
            norm = np.sqrt(np.bincount(s, weights=x * x, minlength=n))
            contrib = counts[:, None] * self.weights[t]
            for k in range(f.shape[1]):
                f[:, k] = np.bincount(s, weights=contrib[:, k], minlength=n)
            nz = norm > 0
            f[nz] /= norm[nz, None]
        f += self.intercepts
        return (1.0 / (1.0 + np.exp(self.cal_a * f + self.cal_b))).mean(axis=1)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probability per whole text (no segmentation): the package's ``predict_prob``."""
        return self.score_ids([self.term_ids(t) for t in texts])
