"""Plots for the run report: bar charts and histograms drawn as inline SVG, by this module alone.

The report's figures are all bars on a categorical axis (stages, reasons, languages, histogram
buckets), so a small SVG writer draws them: no plotting library is imported at the end of a run
(matplotlib took ~0.5 CPU s to import and ~0.15 s per figure to lay out and rasterise, several
seconds per report). Every bar carries its category, series and value (``data-*`` attributes and a
``<title>`` tooltip), so the figure can be read and tested as data. Output is text with fixed
rounding: the same stats give the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from corpusforge.pipelines.report.data import Bucket, BucketRow, FunnelRow

KEPT_COLOR, REJECTED_COLOR, BEFORE_COLOR, AFTER_COLOR = "#3b7dd8", "#d8563b", "#9aa5b1", "#3b7dd8"
THRESHOLD_COLOR = "#c0392b"
SERIES_COLORS = (BEFORE_COLOR, AFTER_COLOR, KEPT_COLOR, REJECTED_COLOR)
PX_PER_INCH = 90  # the figure sizes below are the report's former ones, in inches at 90 dpi
FONT = 11  # px, tick and bar labels
SMALL = 9  # px, rotated tick labels, annotations and legends
CHAR_W = 0.58  # average glyph width as a share of the font size (for margins; sans-serif text)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _f(x: float) -> str:
    """A coordinate, rounded so the same figure always writes the same text."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _human(value: float, _pos: object = None) -> str:
    """Axis numbers a person reads at a glance: 950, 12k, 3.4M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:g}"


def _value_label(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:.3g}"


def _text_w(text: str, size: float = FONT) -> float:
    """About how wide ``text`` is drawn (capitals and underscores are wider than the average)."""
    wide = sum(1 for c in text if c.isupper() or c in "_mwMW%")
    return (len(text) * CHAR_W + wide * 0.16) * size


def nice_ticks(top: float, target: int = 5) -> list[float]:
    """Axis ticks from 0 to at least ``top`` at a 1/2/2.5/5 x 10^k step (about ``target`` of them)."""
    if not top > 0:
        return [0.0, 1.0]
    raw = top / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    n = max(1, math.ceil(top / step - 1e-9))
    return [round(i * step, 12) for i in range(n + 1)]


@dataclass
class Series:
    """One row of values, one per category; ``stacked`` draws it on top of the series before it."""

    name: str
    values: Sequence[float]
    color: str
    stacked: bool = False


@dataclass
class Panel:
    """One chart area: categories along one axis, bars of one or more series along the other."""

    categories: Sequence[str]
    series: Sequence[Series]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    legend: bool = False
    # text written at the end of each category's bars (None: nothing)
    bar_labels: Sequence[str] | None = None
    # vertical lines (label, position in category units: 0 is the first category's centre)
    marks: Sequence[tuple[str, float]] = ()
    rotate_labels: bool = False
    horizontal: bool = False
    share_axis: bool = False  # tick values as written (the axis is a share, not a count)

    def top(self) -> float:
        """The largest bar end (stacked series add up)."""
        ends = [0.0] * len(self.categories)
        best = 0.0
        for s in self.series:
            for i, v in enumerate(s.values):
                end = (ends[i] if s.stacked else 0.0) + float(v)
                ends[i] = end
                best = max(best, end)
        return best

    def groups(self) -> list[list[Series]]:
        """Series side by side: each group is a series and those stacked on it."""
        out: list[list[Series]] = []
        for s in self.series:
            if s.stacked and out:
                out[-1].append(s)
            else:
                out.append([s])
        return out


class Svg:
    """An SVG document being written: elements as text, in drawing order."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    def text(
        self, x: float, y: float, text: str, size: float = FONT, anchor: str = "middle", **extra: str
    ) -> None:
        attrs = "".join(f' {k.replace("_", "-")}="{_esc(v)}"' for k, v in extra.items())
        self.parts.append(
            f'<text x="{_f(x)}" y="{_f(y)}" font-size="{_f(size)}" text-anchor="{anchor}"{attrs}>'
            f"{_esc(text)}</text>"
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = "#444", **extra: str) -> None:
        attrs = "".join(f' {k.replace("_", "-")}="{_esc(v)}"' for k, v in extra.items())
        self.parts.append(
            f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{color}"{attrs}/>'
        )

    def bar(
        self, x: float, y: float, w: float, h: float, color: str, category: str, series: str, value: float
    ) -> None:
        tip = f"{category} · {series}: {_value_label(value)}"
        self.parts.append(
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.0))}" height="{_f(max(h, 0.0))}" '
            f'fill="{color}" data-category="{_esc(category)}" data-series="{_esc(series)}" '
            f'data-value="{_esc(_value_label(value))}"><title>{_esc(tip)}</title></rect>'
        )

    def render(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(self.width)}" height="{_f(self.height)}" '
            f'viewBox="0 0 {_f(self.width)} {_f(self.height)}" role="img" aria-label="{_esc(self.label)}" '
            f'font-family="system-ui,sans-serif" fill="#222">' + "".join(self.parts) + "</svg>"
        )


def _legend(svg: Svg, right: float, y: float, series: Sequence[Series]) -> None:
    """Swatches and names in one row, ending at ``right``."""
    x = right
    for s in reversed(series):
        x -= _text_w(s.name, SMALL) + 4
        svg.text(x, y + SMALL * 0.8, s.name, SMALL, anchor="start")
        x -= 14
        svg.parts.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="10" height="10" fill="{s.color}"/>')
        x -= 10


def _vertical(svg: Svg, panel: Panel, x: float, y: float, w: float, h: float) -> None:
    """Vertical bars in the box (x, y, w, h): categories along the bottom, values up the left."""
    ticks = nice_ticks(panel.top())
    tick_text = [(_human(t) if not panel.share_axis else f"{t:g}") for t in ticks]
    left = x + max(_text_w(t) for t in tick_text) + 8 + (18 if panel.ylabel else 0)
    top = y + (20 if panel.title else 6) + (14 if panel.legend else 0)
    longest = max((_text_w(c, SMALL if panel.rotate_labels else FONT) for c in panel.categories), default=0)
    below = (longest * 0.72 + 14) if panel.rotate_labels else FONT + 8
    bottom = y + h - below - (18 if panel.xlabel else 0) - 4
    right = x + w - 8
    span = ticks[-1] or 1.0
    scale = (bottom - top) / span

    for t, label in zip(ticks, tick_text, strict=True):
        ty = bottom - t * scale
        svg.line(left, ty, right, ty, "#e4e4e4")
        svg.text(left - 4, ty + FONT * 0.35, label, anchor="end")
    n = max(1, len(panel.categories))
    band = (right - left) / n
    groups = panel.groups()
    width = band * 0.8 / max(1, len(groups))
    for g, group in enumerate(groups):
        base = [0.0] * len(panel.categories)
        for s in group:
            for i, v in enumerate(s.values):
                bx = left + band * (i + 0.1) + width * g
                svg.bar(
                    bx,
                    bottom - (base[i] + v) * scale,
                    width,
                    v * scale,
                    s.color,
                    panel.categories[i],
                    s.name,
                    v,
                )
                base[i] += v
    if panel.bar_labels is not None:
        ends = [
            max(sum(s.values[i] for s in group) for group in groups) for i in range(len(panel.categories))
        ]
        for i, label in enumerate(panel.bar_labels):
            svg.text(left + band * (i + 0.5), bottom - ends[i] * scale - 3, label, SMALL)
    for i, c in enumerate(panel.categories):
        cx = left + band * (i + 0.5)
        if panel.rotate_labels:
            svg.text(
                cx, bottom + 10, c, SMALL, anchor="end", transform=f"rotate(-45 {_f(cx)} {_f(bottom + 10)})"
            )
        else:
            svg.text(cx, bottom + FONT + 3, c)
    for name, pos in panel.marks:
        mx = left + band * (pos + 0.5)
        svg.line(mx, top, mx, bottom, THRESHOLD_COLOR, stroke_dasharray="5 3", stroke_width="1.2")
        svg.text(
            mx - 3,
            top + 2,
            name,
            SMALL - 1,
            anchor="end",
            fill=THRESHOLD_COLOR,
            transform=f"rotate(-90 {_f(mx - 3)} {_f(top + 2)})",
        )
    svg.line(left, bottom, right, bottom)
    svg.line(left, top, left, bottom)
    if panel.title:
        svg.text((left + right) / 2, y + 14, panel.title, FONT + 1)
    if panel.legend:
        _legend(svg, right, top - 14, panel.series)
    if panel.xlabel:
        svg.text((left + right) / 2, y + h - 6, panel.xlabel)
    if panel.ylabel:
        yl, ym = x + 12, (top + bottom) / 2
        svg.text(yl, ym, panel.ylabel, transform=f"rotate(-90 {_f(yl)} {_f(ym)})")


def _horizontal(svg: Svg, panel: Panel, x: float, y: float, w: float, h: float) -> None:
    """Horizontal bars: categories down the left (first on top), values along the bottom."""
    peak = panel.top()
    if panel.bar_labels is not None:  # room for the labels at the bars' ends
        peak *= 1.12
    ticks = nice_ticks(peak)
    left = x + max((_text_w(c) for c in panel.categories), default=0) + 10
    top = y + 6 + (16 if panel.legend else 0)
    bottom = y + h - FONT - 10 - (18 if panel.xlabel else 0)
    right = x + w - 10
    span = ticks[-1] or 1.0
    scale = (right - left) / span
    for t in ticks:
        tx = left + t * scale
        svg.line(tx, top, tx, bottom, "#e4e4e4")
        svg.text(tx, bottom + FONT + 3, _human(t))
    n = max(1, len(panel.categories))
    band = (bottom - top) / n
    groups = panel.groups()
    height = band * 0.8 / max(1, len(groups))
    for g, group in enumerate(groups):
        base = [0.0] * len(panel.categories)
        for s in group:
            for i, v in enumerate(s.values):
                by = top + band * (i + 0.1) + height * g
                svg.bar(
                    left + base[i] * scale, by, v * scale, height, s.color, panel.categories[i], s.name, v
                )
                base[i] += v
    for i, c in enumerate(panel.categories):
        cy = top + band * (i + 0.5)
        svg.text(left - 5, cy + FONT * 0.35, c, anchor="end")
        if panel.bar_labels is not None:
            end = sum(s.values[i] for s in panel.series)
            svg.text(left + end * scale + 3, cy + SMALL * 0.35, panel.bar_labels[i], SMALL, anchor="start")
    svg.line(left, bottom, right, bottom)
    svg.line(left, top, left, bottom)
    if panel.legend:
        _legend(svg, right, top - 15, panel.series)
    if panel.xlabel:
        svg.text((left + right) / 2, y + h - 6, panel.xlabel)


def _chart(panels: Sequence[Panel], width_in: float, height_in: float, label: str) -> str:
    """Panels side by side in one SVG of the given size (inches at :data:`PX_PER_INCH`)."""
    width, height = width_in * PX_PER_INCH, height_in * PX_PER_INCH
    svg = Svg(width, height, label)
    each = width / len(panels)
    for k, panel in enumerate(panels):
        draw = _horizontal if panel.horizontal else _vertical
        draw(svg, panel, each * k, 0.0, each, height)
    return svg.render()


def funnel_chart(rows: Sequence[FunnelRow]) -> str:
    """Two panels: documents and characters into and kept by each stage."""
    names = [r.stage for r in rows]
    panels = [
        Panel(
            names,
            [Series("in", ins, BEFORE_COLOR), Series("kept", kept, KEPT_COLOR)],
            title=title,
            legend=True,
            rotate_labels=True,
        )
        for title, ins, kept in (
            ("documents", [r.docs_in for r in rows], [r.docs_kept for r in rows]),
            ("characters", [r.chars_in for r in rows], [r.chars_kept for r in rows]),
        )
    ]
    return _chart(panels, 9, 3.6, "documents and characters in and kept, per stage")


def _rows_height(n: int, per_row: float) -> float:
    return max(1.6, per_row * n + 0.9)


def hbar_chart(
    items: Sequence[tuple[str, float]], xlabel: str, color: str = KEPT_COLOR, top: int = 30
) -> str:
    """Horizontal bars, largest on top (``items`` already sorted largest first)."""
    items = list(items)[:top]
    values = [v for _, v in items]
    panel = Panel(
        [k for k, _ in items],
        [Series(xlabel, values, color)],
        xlabel=xlabel,
        bar_labels=[_value_label(v) for v in values],
        horizontal=True,
    )
    return _chart([panel], 7.5, _rows_height(len(items), 0.28), xlabel)


def hbar_pair_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str) -> str:
    """Horizontal bars of two (or more) series side by side per label, e.g. before and after filtering."""
    panel = Panel(
        list(labels),
        [
            Series(name, list(values), SERIES_COLORS[s % len(SERIES_COLORS)])
            for s, (name, values) in enumerate(series)
        ],
        xlabel=xlabel,
        legend=True,
        horizontal=True,
    )
    return _chart([panel], 7.5, _rows_height(len(labels), 0.45), xlabel)


def hbar_split_chart(items: Sequence[tuple[str, int, int]], xlabel: str, top: int = 30) -> str:
    """Horizontal stacked bars of (label, kept, rejected), largest total on top."""
    items = list(items)[:top]
    panel = Panel(
        [k for k, _, _ in items],
        [
            Series("kept", [a for _, a, _ in items], KEPT_COLOR),
            Series("rejected", [b for _, _, b in items], REJECTED_COLOR, stacked=True),
        ],
        xlabel=xlabel,
        legend=True,
        horizontal=True,
    )
    return _chart([panel], 7.5, _rows_height(len(items), 0.28), xlabel)


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
    drawn = []
    for s, (name, bs) in enumerate(series):
        total = sum(b.count for b in bs) or 1
        values = [0.0] * len(lowers)  # a bucket a series lacks is an empty bar
        for b in bs:
            values[index[b.lower]] = b.count / total if density else b.count
        drawn.append(Series(name, values, SERIES_COLORS[s % len(SERIES_COLORS)]))
    panel = Panel(
        [labels[lo] for lo in lowers],
        drawn,
        xlabel=xlabel,
        ylabel="share of documents" if density else "documents",
        legend=len(series) > 1,
        marks=[(f"{name}={value:g}", _position(lowers, value)) for name, value in marks],
        rotate_labels=True,
        share_axis=density,
    )
    return _chart([panel], 8, 3.2, xlabel)


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
    names = [str(r.bucket) for r in rows]
    panels = [
        Panel(
            names,
            [Series("rows", [r.rows for r in rows], KEPT_COLOR)],
            title="rows per bucket",
            xlabel="bucket (max tokens)",
        ),
        Panel(
            names,
            [
                Series("tokens", [r.tokens for r in rows], KEPT_COLOR),
                Series("padding", [r.padding for r in rows], REJECTED_COLOR, stacked=True),
            ],
            title="tokens and padding per bucket",
            xlabel="bucket (max tokens)",
            legend=True,
            bar_labels=[f"{r.waste:.0%}" for r in rows],
        ),
    ]
    return _chart(panels, 9, 3.4, "rows, tokens and padding per sequence bucket")
