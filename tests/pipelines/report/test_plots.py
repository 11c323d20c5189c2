"""The report's SVG figures: each shows the data it is given (titles, axis labels, bar values), with
no plotting library imported, and the same data always gives the same bytes."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from corpusforge.pipelines.report import plots
from corpusforge.pipelines.report.data import Bucket, BucketRow, FunnelRow
from tests.helpers import REPO

NS = {"s": "http://www.w3.org/2000/svg"}


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def _bars(root: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (r.get("data-category"), r.get("data-series"), r.get("data-value"))
        for r in root.iter("{http://www.w3.org/2000/svg}rect")
        if r.get("data-category") is not None
    ]


def _heights(root: ET.Element, series: str) -> list[float]:
    return [
        float(r.get("height"))
        for r in root.iter("{http://www.w3.org/2000/svg}rect")
        if r.get("data-series") == series
    ]


def test_funnel_shows_both_panels_with_every_stage_in_and_kept():
    rows = [
        FunnelRow("validate", 1000, 990, 10, 10**6, 990_000),
        FunnelRow("quality", 990, 700, 290, 990_000, 6e5),
    ]
    root = _svg(plots.funnel_chart(rows))
    texts = _texts(root)
    assert {"documents", "characters", "in", "kept", "validate", "quality"} <= set(texts)
    assert "1M" in texts  # the characters axis reads in millions
    bars = _bars(root)
    assert ("quality", "kept", "700") in bars and ("validate", "in", "1,000") in bars
    assert ("quality", "kept", "600,000") in bars
    assert len(bars) == 8  # 2 panels x 2 stages x (in, kept)


def test_hbar_labels_each_bar_with_its_value_and_keeps_the_order():
    items = [("dedup:near", 100), ("quality:lorem", 50), ("invalid:empty", 4)]
    root = _svg(plots.hbar_chart(items, "records rejected", plots.REJECTED_COLOR))
    assert [b[0] for b in _bars(root)] == ["dedup:near", "quality:lorem", "invalid:empty"]
    assert [b[2] for b in _bars(root)] == ["100", "50", "4"]
    texts = _texts(root)
    assert "records rejected" in texts and {"100", "50", "4"} <= set(texts)
    widths = [
        float(r.get("width")) for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("data-value")
    ]
    assert abs(widths[0] / widths[2] - 25) < 0.2  # lengths in proportion to the values (0.1 px rounding)
    assert len(_bars(_svg(plots.hbar_chart([(f"r{i}", i) for i in range(50)], "x")))) == 30  # top 30


def test_histogram_draws_density_marks_and_a_legend_for_two_series():
    before = [Bucket(0.0, 10), Bucket(100.0, 30)]
    after = [Bucket(100.0, 20)]  # no document under 100: an empty bar, not a shifted one
    root = _svg(
        plots.histogram_chart([("before", before), ("kept", after)], "characters", [("max", 150.0)], True)
    )
    texts = _texts(root)
    assert {"characters", "share of documents", "before", "kept", "max=150", "≥0", "≥100"} <= set(texts)
    bars = _bars(root)
    assert ("≥0", "before", "0.25") in bars and ("≥100", "before", "0.75") in bars
    assert ("≥0", "kept", "0") in bars and ("≥100", "kept", "1") in bars
    dashed = [ln for ln in root.iter("{http://www.w3.org/2000/svg}line") if ln.get("stroke-dasharray")]
    assert len(dashed) == 1
    counts = _svg(plots.histogram_chart([("documents", before)], "score"))
    assert "documents" in _texts(counts) and "before" not in _texts(counts)  # one series: no legend


def test_stacked_bars_start_where_the_one_below_ends():
    root = _svg(plots.hbar_split_chart([("en", 580, 0), ("de", 0, 60)], "documents"))
    rects = {
        (r.get("data-category"), r.get("data-series")): r
        for r in root.iter("{http://www.w3.org/2000/svg}rect")
        if r.get("data-series")
    }
    en_kept, en_rej = rects[("en", "kept")], rects[("en", "rejected")]
    assert abs(float(en_rej.get("x")) - float(en_kept.get("x")) - float(en_kept.get("width"))) <= 0.1
    assert rects[("de", "rejected")].get("data-value") == "60"
    buckets = _svg(plots.buckets_chart([BucketRow(512, 10, 4000, 1120), BucketRow(2048, 2, 3000, 1096)]))
    texts = _texts(buckets)
    assert {"rows per bucket", "tokens and padding per bucket", "bucket (max tokens)", "22%", "27%"} <= set(
        texts
    )
    rows = _heights(buckets, "rows")
    assert abs(rows[0] / rows[1] - 5) < 0.05


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_same_data_same_bytes_and_the_report_imports_no_plotting_library_nor_presidio():
    items = [("a", 3), ("b", 1)]
    assert plots.hbar_chart(items, "n") == plots.hbar_chart(items, "n")
    code = (
        "import sys\n"
        "from corpusforge.pipelines.report import data, html\n"
        "from tests.helpers import full_stats\n"
        "html.render(html.ReportInputs(full_stats(), {'en': 5}, {}))\n"
        "masked = data.example_text('pay 4111 1111 1111 1111 now', 100)\n"
        "print(masked, [m for m in ('matplotlib', 'presidio_analyzer') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip().splitlines()[-1] == "pay <CARD> now []"
