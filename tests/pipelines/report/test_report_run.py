"""End to end: a run of the embedded sample writes a report whose figures match its stats.json, and
the report renders in a headless browser with every plot decoded (skipped without Chromium)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from corpusforge.pipelines import cli
from corpusforge.pipelines.local.progress import Progress
from corpusforge.pipelines.report.html import ReportInputs, render
from corpusforge.schemas.config import load_config
from tests.helpers import FULL_PLOTS, SAMPLE_DIR, as_int, full_stats, parse

LENGTH_BEFORE = "validate"


# sample_run: the shared two-worker run (tests/conftest.py), two examples per reason, 80 characters


@pytest.mark.slow
def test_sample_report_figures_match_stats(sample_run: Path):
    stats = json.loads((sample_run / "stats.json").read_text())
    report = parse((sample_run / "report.html").read_text())
    summary = report.tables["summary"][0]
    assert as_int(summary["records_read"]) == stats["records_read"]
    assert as_int(summary["kept"]) == stats["kept"] and as_int(summary["rejected"]) == stats["rejected"]
    funnel = {r["stage"]: r for r in report.tables["funnel"]}
    assert list(funnel) == [s for s in stats["stage_order"] if s != "read"]
    for name, row in funnel.items():
        s = stats["stages"][name]
        assert [as_int(row[k]) for k in ("in", "kept", "rejected", "chars_in", "chars_kept")] == [
            s["in"],
            s["kept"],
            s["rejected"],
            s["chars_in"],
            s["chars_kept"],
        ]
    reasons = {r["reason"]: as_int(r["count"]) for r in report.tables["rejections"]}
    every_reason = {
        r: n for s in stats["stages"].values() for r, n in s.get("rejected_by_reason", {}).items()
    }
    assert reasons == every_reason
    assert {"invalid:bad_json", "invalid:empty", "invalid:no_text", "invalid:duplicate_id"} <= set(reasons)
    assert {"funnel", "rejections", "lengths"} <= set(report.plots)
    replaced = {
        k.split(":", 1)[1]: n
        for k, n in stats["stages"].get("pii", {}).get("counters", {}).items()
        if k.startswith("replaced:")
    }
    # the sample holds every PII type: the replacements per type are drawn and tabled
    assert len(replaced) >= 6, replaced
    assert "pii" in report.plots
    assert {r["key"]: as_int(r["count"]) for r in report.tables["pii"]} == replaced
    assert all(w > 100 and h > 50 for w, h in report.plots.values())
    assert report.external == []


@pytest.mark.slow
def test_kept_examples_come_from_documents(sample_run: Path):
    html = (sample_run / "report.html").read_text()
    kept_ids = set(re.findall(r'<li data-id="([^"]+)">', html.split('id="kept"')[1].split("</section>")[0]))
    documents = {
        r["id"]
        for r in ds.dataset(str(sample_run / "documents"), format="parquet")
        .to_table(columns=["id"])
        .to_pylist()
    }
    assert len(kept_ids) == min(5, len(documents)) and kept_ids <= documents


@pytest.mark.slow
def test_length_histograms_cover_parsed_and_kept_documents(sample_run: Path):
    stats = json.loads((sample_run / "stats.json").read_text())
    before = sum(stats["stages"][LENGTH_BEFORE]["histograms"]["chars"].values())
    after = sum(stats["stages"]["output"]["histograms"]["chars"].values())
    # every parsed document (duplicate ids included, before they are resolved) and every kept one
    assert (
        before
        == stats["stages"]["validate"]["kept"]
        + stats["stages"]["validate"]["rejected_by_reason"]["invalid:duplicate_id"]
    )
    assert after == stats["kept"] == stats["outputs"]["documents"]["rows"]


@pytest.mark.slow
def test_rejected_examples_are_masked_truncated_and_stable(sample_run: Path, tmp_path: Path):
    html = (sample_run / "report.html").read_text()
    for secret in ("bob@example.net", "867-5309", "jane.roe@example.org", "7946 0958"):
        assert secret not in html
    assert "&lt;EMAIL&gt;" in html and "&lt;PHONE&gt;" in html
    shown = dict(re.findall(r'data-reason="([^"]+)"><summary>.*?\((\d+) shown\)', html))
    stages = json.loads((sample_run / "stats.json").read_text())["stages"]
    by_reason = {r: n for s in stages.values() for r, n in s.get("rejected_by_reason", {}).items()}
    assert shown == {reason: str(min(2, n)) for reason, n in by_reason.items()}
    for pre in re.findall(r"<pre>(.*?)</pre>", html.split('id="config"')[0], re.S):
        assert len(pre) <= 200  # 80 characters, escaped
    # `corpusforge report OUT` rebuilds the same file from the outputs (in a copy: the shared run is
    # read by other tests, some in another process, and must not change under them)
    copy = tmp_path / "copy"
    shutil.copytree(sample_run, copy)
    (copy / "report.html").unlink()
    assert cli.main(["report", str(copy)]) == 0
    assert (copy / "report.html").read_bytes() == (sample_run / "report.html").read_bytes()


@pytest.mark.slow
def test_progress_lines_name_stages_and_counts(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="corpusforge")
    monkeypatch.setattr(Progress, "MIN_GAP_S", 0.0)  # a tiny run is over in a second: log every change
    cfg = load_config(None, ["report.enabled=false"])
    cli.run(
        [str(SAMPLE_DIR / "report.jsonl")],
        str(tmp_path / "out"),
        cfg,
        ["--direct_running_mode=in_memory"],
        workers=1,
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "corpusforge.progress"]
    assert any("running: read" in line for line in lines)
    assert any("running: validate" in line for line in lines)
    assert "pipeline done" in lines[-1] and "validate 8 in/3 kept/5 rej; normalize 3 in/3 kept" in lines[-1]
    assert not (tmp_path / "out" / "report.html").exists()


def test_report_subcommand_on_a_folder_without_stats(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "stats.json" in capsys.readouterr().err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


PROBE = """<script>
addEventListener('load', () => {
  const figs = [...document.querySelectorAll('figure[data-plot]')];
  document.body.setAttribute('data-probe', JSON.stringify(figs.map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.viewBox.baseVal : null;
    return [f.dataset.plot, box ? box.width : 0, box ? box.height : 0, svg ? svg.getBoundingClientRect().height : 0];
  })));
});
</script>"""


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    html = render(ReportInputs(full_stats(), {"en": 580}, {}))
    # The report forbids scripts by CSP; the probe page drops that one header to look inside.
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace(
        "</body>", PROBE + "</body>"
    )
    page = tmp_path / "probe.html"
    page.write_text(probe, encoding="utf-8")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    m = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert m, f"probe did not run; chromium said: {done.stderr[-500:]}"
    figures = json.loads(m.group(1).replace("&quot;", '"'))
    assert {f[0] for f in figures} == FULL_PLOTS
    for name, width, height, shown in figures:
        assert width > 100 and height > 50 and shown > 0, name
