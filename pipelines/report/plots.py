"""Plots for the run report: matplotlib (Agg, no display), returned as base64 PNG for embedding.

Figures are built with the object API (``Figure`` + Agg canvas), never ``pyplot``, so nothing global
is touched and no GUI backend is ever looked for. PNG metadata is stripped so that the same stats
give the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from corpusforge.pipelines.report.data import Bucket, BucketRow, FunnelRow

KEPT_COLOR, REJECTED_COLOR, BEFORE_COLOR, AFTER_COLOR = "#3b7dd8", "#d8563b", "#9aa5b1", "#3b7dd8"
THRESHOLD_COLOR = "#c0392b"


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _human(value: float, _pos: object = None) -> str:
    """Axis numbers a person reads at a glance: 950, 12k, 3.4M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:g}"


HUMAN = FuncFormatter(_human)


def _fig(width: float = 7.5, height: float = 3.2) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def funnel_chart(rows: Sequence[FunnelRow]) -> str:
    """Two panels: documents and characters into and kept by each stage."""
    fig = _fig(9, 3.6)
    names = [r.stage for r in rows]
    x = range(len(rows))
    for ax, (title, ins, kept) in zip(
        fig.subplots(1, 2),
        (
            ("documents", [r.docs_in for r in rows], [r.docs_kept for r in rows]),
            ("characters", [r.chars_in for r in rows], [r.chars_kept for r in rows]),
        ),
        strict=True,
    ):
        ax.bar([i - 0.2 for i in x], ins, width=0.4, color=BEFORE_COLOR, label="in")
        ax.bar([i + 0.2 for i in x], kept, width=0.4, color=KEPT_COLOR, label="kept")
        ax.set_xticks(list(x), names, rotation=30, ha="right")
        ax.set_title(title)
        ax.yaxis.set_major_formatter(HUMAN)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper right", fontsize=8)
    return _png(fig)


def hbar_chart(
    items: Sequence[tuple[str, float]], xlabel: str, color: str = KEPT_COLOR, top: int = 30
) -> str:
    """Horizontal bars, largest on top (``items`` already sorted largest first)."""
    items = list(items)[:top]
    fig = _fig(7.5, max(1.6, 0.28 * len(items) + 0.9))
    ax = fig.subplots()
    labels = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(labels, values, color=color)
    for y, v in enumerate(values):
        ax.annotate(
            f"{v:,.0f}" if float(v).is_integer() else f"{v:.3g}",
            (v, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(HUMAN)
    ax.margins(x=0.12)
    return _png(fig)


def hbar_pair_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str) -> str:
    """Horizontal bars of two (or more) series side by side per label, e.g. before and after filtering."""
    labels = list(labels)[::-1]
    fig = _fig(7.5, max(1.6, 0.45 * len(labels) + 0.9))
    ax = fig.subplots()
    n = max(1, len(series))
    height = 0.8 / n
    colors = [BEFORE_COLOR, AFTER_COLOR, KEPT_COLOR, REJECTED_COLOR]
    for s, (name, values) in enumerate(series):
        ys = [y - 0.4 + height * (s + 0.5) for y in range(len(labels))]
        ax.barh(ys, list(values)[::-1], height=height, color=colors[s % len(colors)], label=name)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_formatter(HUMAN)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def hbar_split_chart(items: Sequence[tuple[str, int, int]], xlabel: str, top: int = 30) -> str:
    """Horizontal stacked bars of (label, kept, rejected), largest total on top."""
    items = list(items)[:top][::-1]
    fig = _fig(7.5, max(1.6, 0.28 * len(items) + 0.9))
    ax = fig.subplots()
    labels = [k for k, _, _ in items]
    kept = [a for _, a, _ in items]
    ax.barh(labels, kept, color=KEPT_COLOR, label="kept")
    ax.barh(labels, [b for _, _, b in items], left=kept, color=REJECTED_COLOR, label="rejected")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def histogram_chart(
    series: Sequence[tuple[str, Sequence[Bucket]]],
    xlabel: str,
    marks: Sequence[tuple[str, float]] = (),
    density: bool = False,
) -> str:
    """Bucketed histograms side by side on a categorical axis (bucket edges may be uneven).

    ``marks`` are thresholds drawn as vertical lines at the bucket that holds them. With
    ``density`` each series is drawn as a share of its total, so before/after compare by shape.
    """
    lowers = sorted({b.lower for _, bs in series for b in bs})
    index = {lo: i for i, lo in enumerate(lowers)}
    labels = {b.lower: b.label for _, bs in series for b in bs}
    fig = _fig(8, 3.2)
    ax = fig.subplots()
    n = max(1, len(series))
    width = 0.8 / n
    colors = [BEFORE_COLOR, AFTER_COLOR, KEPT_COLOR, REJECTED_COLOR]
    for s, (name, bs) in enumerate(series):
        total = sum(b.count for b in bs) or 1
        xs = [index[b.lower] - 0.4 + width * (s + 0.5) for b in bs]
        ys = [b.count / total if density else b.count for b in bs]
        ax.bar(xs, ys, width=width, color=colors[s % len(colors)], label=name)
    ax.set_xticks(range(len(lowers)), [labels[lo] for lo in lowers], rotation=45, ha="right", fontsize=8)
    for name, value in marks:
        pos = _position(lowers, value)
        ax.axvline(pos, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.2)
        ax.annotate(
            f"{name}={value:g}",
            (pos, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=THRESHOLD_COLOR,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of documents" if density else "documents")
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def _position(lowers: Sequence[float], value: float) -> float:
    """Where ``value`` falls on the categorical axis: interpolated inside its bucket."""
    finite = [lo for lo in lowers if lo != float("-inf")]
    if not finite:
        return 0.0
    i = max((k for k, lo in enumerate(lowers) if lo <= value), default=0)
    lo = lowers[i]
    hi = lowers[i + 1] if i + 1 < len(lowers) else None
    frac = 0.0 if hi is None or lo == float("-inf") or hi == lo else (value - lo) / (hi - lo)
    return i - 0.5 + max(0.0, min(1.0, frac))


def buckets_chart(rows: Sequence[BucketRow]) -> str:
    """Per sequence bucket: rows, and tokens against padding (with the waste share written on top)."""
    fig = _fig(9, 3.4)
    ax_rows, ax_tok = fig.subplots(1, 2)
    names = [str(r.bucket) for r in rows]
    ax_rows.bar(names, [r.rows for r in rows], color=KEPT_COLOR)
    ax_rows.set_title("rows per bucket")
    ax_rows.yaxis.set_major_formatter(HUMAN)
    ax_tok.yaxis.set_major_formatter(HUMAN)
    ax_rows.set_xlabel("bucket (max tokens)")
    ax_tok.bar(names, [r.tokens for r in rows], color=KEPT_COLOR, label="tokens")
    ax_tok.bar(
        names,
        [r.padding for r in rows],
        bottom=[r.tokens for r in rows],
        color=REJECTED_COLOR,
        label="padding",
    )
    for i, r in enumerate(rows):
        ax_tok.annotate(f"{r.waste:.0%}", (i, r.tokens + r.padding), ha="center", va="bottom", fontsize=8)
    ax_tok.set_title("tokens and padding per bucket")
    ax_tok.set_xlabel("bucket (max tokens)")
    ax_tok.legend(fontsize=8)
    return _png(fig)
