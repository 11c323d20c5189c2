"""Rule-based quality filtering: Gopher quality, Gopher repetition, C4 and FineWeb rules.

The signals are computed once per document (:func:`~corpusforge.transforms.quality.signals.compute_signals`)
and each family's rules are plain comparisons against the thresholds in config, checked in a fixed
order (cheap and most specific first), so the reason names the first rule a document breaks:
``quality:<family>.<rule>``, e.g. ``quality:gopher_repetition.dup_line_frac``.

Line ratios (bullet and ellipsis lines, FineWeb's punctuation and short-line ratios) are only
judged on documents with at least ``min_lines_for_line_ratios`` lines or exactly one: on a two- or
three-line text one line would decide the ratio alone (one ellipsis in three lines is 33%), so such
texts are judged by the word-count, stop-word, repetition and C4 sentence rules instead. A one-line
text is either a single paragraph or a page flattened to one line (navigation included), and the
line-punctuation rule is exactly what separates the two.

C4 decision: the text is never modified. C4 removed lines (no terminal punctuation, fewer than 3
words, "javascript", policy/cookie notices) and kept what remained; like FineWeb, corpusforge keeps
the text intact and drops whole documents instead: a document is rejected when, after C4's line
rules, fewer than ``min_sentences`` sentences would remain, when too large a share of its lines
mention javascript or are policy notices, or when it contains "lorem ipsum" or a curly brace (the
two whole-page rules of C4).

Every document the stage sees, kept or rejected, carries its signals (``quality_signals``), so
thresholds can be changed afterwards on the Parquet output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from corpusforge.schemas.config import QualityConfig
from corpusforge.schemas.records import Document, QualitySignals, RejectedDocument
from corpusforge.transforms.base import ApplyStage, DocumentStage
from corpusforge.transforms.quality.signals import compute_signals
from corpusforge.transforms.quality.stopwords import stop_words_for

Rule = tuple[str, Callable[[QualitySignals], bool]]
N_WORDS_EDGES: tuple[float, ...] = (0, 50, 100, 300, 1000, 3000, 10000, 100000)
FRACTION_EDGES: tuple[float, ...] = tuple(i / 10 for i in range(11))
# Signals whose distribution stats.json shows (besides n_words), to help choose thresholds.
HISTOGRAM_SIGNALS: tuple[str, ...] = (
    "line_punct_ratio",
    "dup_line_frac",
    "dup_5gram_char_frac",
    "alpha_words_frac",
)


def build_rules(cfg: QualityConfig, has_stop_words: bool = True) -> list[Rule]:
    """The ordered rules of every enabled family as ``(family.rule, breaks(signals) -> bool)``."""
    rules: list[Rule] = []
    m = cfg.min_lines_for_line_ratios

    def lines_ok(s: QualitySignals) -> bool:
        return s.n_lines >= m or s.n_lines == 1

    g = cfg.gopher_quality
    if g.enabled:
        rules += [
            ("gopher_quality.min_doc_words", lambda s: s.n_words < g.min_doc_words),
            ("gopher_quality.max_doc_words", lambda s: s.n_words > g.max_doc_words),
            ("gopher_quality.min_avg_word_length", lambda s: s.mean_word_length < g.min_avg_word_length),
            ("gopher_quality.max_avg_word_length", lambda s: s.mean_word_length > g.max_avg_word_length),
            ("gopher_quality.symbol_word_ratio", lambda s: s.symbol_word_ratio > g.max_symbol_word_ratio),
            (
                "gopher_quality.bullet_lines_ratio",
                lambda s: lines_ok(s) and s.bullet_lines_ratio > g.max_bullet_lines_ratio,
            ),
            (
                "gopher_quality.ellipsis_lines_ratio",
                lambda s: lines_ok(s) and s.ellipsis_lines_frac > g.max_ellipsis_lines_ratio,
            ),
            ("gopher_quality.alpha_words_ratio", lambda s: s.alpha_words_frac < g.min_alpha_words_ratio),
        ]
        if has_stop_words:
            rules.append(("gopher_quality.stop_words", lambda s: s.stop_words < g.min_stop_words))
    r = cfg.gopher_repetition
    if r.enabled:
        for name in (
            "dup_line_frac",
            "dup_para_frac",
            "dup_line_char_frac",
            "dup_para_char_frac",
            *(f"top_{n}gram_char_frac" for n in (2, 3, 4)),
            *(f"dup_{n}gram_char_frac" for n in range(5, 11)),
        ):
            limit = getattr(r, name)
            rules.append(
                (f"gopher_repetition.{name}", lambda s, name=name, limit=limit: getattr(s, name) > limit)
            )
    c = cfg.c4
    if c.enabled:
        if c.lorem_ipsum:
            rules.append(("c4.lorem_ipsum", lambda s: s.c4_lorem_ipsum))
        if c.curly_brace:
            rules.append(("c4.curly_brace", lambda s: s.c4_curly_brace))
        rules += [
            ("c4.javascript", lambda s: s.c4_javascript_lines_frac > c.max_javascript_lines_ratio),
            ("c4.policy", lambda s: s.c4_policy_lines_frac > c.max_policy_lines_ratio),
            ("c4.min_sentences", lambda s: s.c4_sentences < c.min_sentences),
        ]
    f = cfg.fineweb
    if f.enabled:
        rules += [
            (
                "fineweb.line_punct_ratio",
                lambda s: (
                    lines_ok(s)
                    and s.line_punct_ratio <= f.line_punct_thr
                    and not (f.line_punct_exclude_zero and s.line_punct_ratio == 0)
                ),
            ),
            ("fineweb.short_line_ratio", lambda s: lines_ok(s) and s.short_line_ratio >= f.short_line_thr),
            ("fineweb.char_dup_ratio", lambda s: s.char_dup_ratio >= f.max_char_dup_ratio),
            ("fineweb.list_ratio", lambda s: s.list_ratio > f.max_list_ratio),
        ]
    e = cfg.extra
    if e.enabled:
        rules += [
            ("extra.mojibake_ratio", lambda s: s.mojibake_ratio > e.max_mojibake_ratio),
            ("extra.all_caps_words_ratio", lambda s: s.all_caps_words_ratio > e.max_all_caps_words_ratio),
        ]
    return rules


def first_broken_rule(signals: QualitySignals, rules: list[Rule]) -> str | None:
    for name, breaks in rules:
        if breaks(signals):
            return name
    return None


class QualityFilter(DocumentStage):
    """Annotate ``quality_signals`` and reject a document by the first rule it breaks."""

    name = "quality"
    per_worker = ("_rules", "_rules_no_stop")  # lambdas: rebuilt in setup(), never pickled
    _rules: list[Rule] | None = None
    _rules_no_stop: list[Rule] | None = None

    def __init__(self, cfg: QualityConfig | None = None) -> None:
        self.cfg = cfg or QualityConfig()

    def setup(self) -> None:
        self._rules = build_rules(self.cfg, has_stop_words=True)
        self._rules_no_stop = build_rules(self.cfg, has_stop_words=False)

    def process(self, doc: Document) -> Document | RejectedDocument:
        self.ready()
        stop_words = stop_words_for(doc.lang)
        signals = compute_signals(
            doc.text,
            stop_words,
            short_line_length=self.cfg.fineweb.short_line_length,
            c4_min_words_per_line=self.cfg.c4.min_words_per_line,
            c4_terminal_punct=self.cfg.c4.filter_no_terminal_punct,
        )
        rules = self._rules if stop_words else self._rules_no_stop
        broken = first_broken_rule(signals, rules)
        if self.counters is not None:
            self.counters.observe("n_words", signals.n_words, N_WORDS_EDGES)
            for name in HISTOGRAM_SIGNALS:
                self.counters.observe(name, getattr(signals, name), FRACTION_EDGES)
        annotated = replace(doc, quality_signals=signals)
        if broken is not None:
            return RejectedDocument(annotated, self.reject(broken))
        return annotated


class FilterQuality(ApplyStage):
    """Stage ``quality`` from its section (``cfg.quality``): documents -> ``(kept, rejected)``."""

    def __init__(self, cfg: QualityConfig) -> None:
        super().__init__(QualityFilter(cfg))
        self.cfg = cfg
