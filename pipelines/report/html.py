"""report.html: what a run did to the data, readable at a glance, drawn from stats.json.

The report is one self-contained file: plots are inline SVG drawn by :mod:`.plots`, the style is
inline, there is no script, and a Content-Security-Policy forbids every network fetch. It is written
at the end of every run and can be rebuilt from an existing output folder
(``corpusforge report OUT``) since everything it needs is in ``stats.json``, ``documents/`` (the
``lang`` column only) and ``rejected/`` (a few examples per reason).

Each section belongs to a stage and says "stage not run" when that stage is absent from the run, so
the report works for any combination of enabled stages.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apache_beam.io.filesystems import FileSystems

from corpusforge.pipelines.report import data as rd
from corpusforge.pipelines.report import plots
from corpusforge.pipelines.report.stats import partly_read
from corpusforge.transforms.io.observe import LENGTH_HISTOGRAM, OUTPUT_STAGE

LOG = logging.getLogger("corpusforge.report")
REPORT_FILE = "report.html"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# Histograms drawn by a dedicated section; every other histogram lands in "other distributions".
_DEDICATED = {
    ("validate", LENGTH_HISTOGRAM),
    (OUTPUT_STAGE, LENGTH_HISTOGRAM),
    ("toxicity", "toxicity_score"),
    ("language", "lang_score"),
}
_DEDICATED_STAGES = {"quality", "dedup_exact", "dedup_near"}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3g}"


@dataclass
class Section:
    """One block of the report: an anchor, a title, figures and tables, or a 'not run' note."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)

    def plot(self, name: str, svg: str, caption: str) -> None:
        """A figure: ``svg`` is an inline ``<svg>`` element from :mod:`.plots`."""
        self.body.append(
            f'<figure class="plot" data-plot="{esc(name)}">{svg}<figcaption>{esc(caption)}</figcaption></figure>'
        )

    def not_run(self, stage: str, why: str = "stage not run") -> None:
        self.body.append(
            f'<p class="not-run" data-not-run="{esc(stage)}">{esc(why)}: <code>{esc(stage)}</code></p>'
        )

    def table(self, name: str, header: list[str], rows: list[list[tuple[str, Any]]]) -> None:
        """Rows of ``(data-key, value)`` cells; the data-key lets tests compare figures with stats.json."""
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td data-key="{esc(k)}">{esc(num(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)}</td>'
                for k, v in row
            )
            + "</tr>"
            for row in rows
        )
        self.body.append(
            f'<table data-table="{esc(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        )

    def html(self) -> str:
        return f'<section id="{esc(self.key)}" data-section="{esc(self.key)}"><h2>{esc(self.title)}</h2>{"".join(self.body)}</section>'


@dataclass
class ReportInputs:
    stats: dict[str, Any]
    languages: dict[str, int]
    examples: dict[str, list[rd.Example]]
    kept: list[rd.Example] = field(default_factory=list)


def _cfg(inp: ReportInputs, section: str) -> dict[str, Any]:
    """The run's resolved config section (empty when the section does not exist in this version)."""
    value = (inp.stats.get("config") or {}).get(section)
    return value if isinstance(value, dict) else {}


# --- sections --------------------------------------------------------------------------------------
def _summary(inp: ReportInputs) -> Section:
    s = inp.stats
    sec = Section("summary", "Run summary")
    ok = s.get("conservation_ok")
    sec.table(
        "summary",
        ["records read", "kept", "rejected", "conserved", "wall time (s)", "runner", "config hash"],
        [
            [
                ("records_read", s.get("records_read", 0)),
                ("kept", s.get("kept", 0)),
                ("rejected", s.get("rejected", 0)),
                ("conservation_ok", "yes" if ok else "NO"),
                ("wall_time_s", s.get("wall_time_s", 0.0)),
                ("runner", s.get("runner", "")),
                ("config_hash", s.get("config_hash", "")),
            ]
        ],
    )
    if s.get("unreadable_files"):
        files, read = partly_read(s["unreadable_files"])
        note = (
            f" {files} of them were partly read: their first {read:,} record(s) are in this run."
            if files
            else ""
        )
        sec.body.append(
            f"<p class=warn>{len(s['unreadable_files'])} unreadable input file(s) were skipped "
            f"(listed in stats.json).{note}</p>"
        )
    return sec


def _funnel(inp: ReportInputs) -> Section:
    sec = Section("funnel", "Funnel: documents and characters through the stages")
    rows = rd.funnel(inp.stats)
    if not rows:
        sec.not_run("validate", "no stage counted anything")
        return sec
    sec.plot("funnel", plots.funnel_chart(rows), "documents and characters in and kept, per stage")
    sec.table(
        "funnel",
        ["stage", "in", "kept", "rejected", "kept %", "chars in", "chars kept"],
        [
            [
                ("stage", r.stage),
                ("in", r.docs_in),
                ("kept", r.docs_kept),
                ("rejected", r.rejected),
                ("kept_pct", f"{100 * r.docs_kept / r.docs_in:.1f}%" if r.docs_in else "–"),
                ("chars_in", r.chars_in),
                ("chars_kept", r.chars_kept),
            ]
            for r in rows
        ],
    )
    return sec


def _rejections(inp: ReportInputs) -> Section:
    sec = Section("rejections", "Rejections by reason")
    items = rd.rejections(inp.stats)
    if not items:
        sec.body.append('<p class="none">nothing was rejected</p>')
        return sec
    sec.plot(
        "rejections",
        plots.hbar_chart(items, "records rejected", plots.REJECTED_COLOR),
        "records rejected per reason",
    )
    sec.table("rejections", ["reason", "records"], [[("reason", r), ("count", n)] for r, n in items])
    return sec


def _language(inp: ReportInputs) -> Section:
    sec = Section("language", "Language distribution")
    if not rd.stage_ran(inp.stats, "language"):
        sec.not_run("language")
        return sec
    dropped = {r.split(":", 1)[1]: n for r, n in rd.rejections(inp.stats) if r.startswith("language:")}
    if inp.languages or dropped:
        langs = sorted(
            set(inp.languages) | set(dropped),
            key=lambda k: (-(inp.languages.get(k, 0) + dropped.get(k, 0)), k),
        )
        sec.plot(
            "languages",
            plots.hbar_split_chart(
                [(k, inp.languages.get(k, 0), dropped.get(k, 0)) for k in langs], "documents"
            ),
            "documents per language: kept (from documents/) and rejected by the language filter",
        )
        sec.table(
            "languages",
            ["language", "kept", "rejected"],
            [
                [("lang", k), ("kept", inp.languages.get(k, 0)), ("rejected", dropped.get(k, 0))]
                for k in langs
            ],
        )
    else:
        sec.not_run("language", "no language tags recorded")
    score = rd.histogram(inp.stats, "language", "lang_score")
    if score:
        marks = rd.thresholds(_cfg(inp, "language"), "score")
        sec.plot(
            "lang_score",
            plots.histogram_chart([("documents", score)], "language score", marks),
            "language identification confidence",
        )
    return sec


def _lengths(inp: ReportInputs) -> Section:
    sec = Section("lengths", "Document length before and after")
    before = rd.histogram(inp.stats, "validate", LENGTH_HISTOGRAM)
    after = rd.histogram(inp.stats, OUTPUT_STAGE, LENGTH_HISTOGRAM)
    if not before and not after:
        sec.not_run("validate", "no length histograms recorded")
        return sec
    series = [
        (f"before ({sum(b.count for b in before):,} docs)", before),
        (f"kept ({sum(b.count for b in after):,} docs)", after),
    ]
    sec.plot(
        "lengths",
        plots.histogram_chart(series, "characters per document", density=True),
        "document length (characters), share of documents per bucket",
    )
    return sec


def _histograms_of(
    inp: ReportInputs, sec: Section, stage: str, xlabel: str, config_key: str | None = None
) -> int:
    hists = inp.stats.get("stages", {}).get(stage, {}).get("histograms", {})
    config = _cfg(inp, config_key or stage)
    for name in sorted(hists):
        marks = rd.thresholds(config, name)
        sec.plot(
            f"{stage}.{name}",
            plots.histogram_chart([("documents", rd.buckets(hists[name]))], xlabel or name, marks),
            f"{stage}: {name}" + (" (dashed: thresholds)" if marks else ""),
        )
    return len(hists)


def _quality(inp: ReportInputs) -> Section:
    sec = Section("quality", "Quality signals")
    if not rd.stage_ran(inp.stats, "quality"):
        sec.not_run("quality")
    elif not _histograms_of(inp, sec, "quality", ""):
        sec.not_run("quality", "no quality signal histograms recorded")
    return sec


def _duplicates(inp: ReportInputs) -> Section:
    sec = Section("duplicates", "Duplicates")
    ran = [s for s in ("dedup_exact", "dedup_near") if rd.stage_ran(inp.stats, s)]
    if not ran:
        sec.not_run("dedup_exact, dedup_near")
        return sec
    shown = sum(_histograms_of(inp, sec, s, "cluster size", "dedup") for s in ran)
    removed = [(r, n) for r, n in rd.rejections(inp.stats) if r.startswith("dedup:")]
    if removed:
        sec.table(
            "duplicates", ["reason", "records removed"], [[("reason", r), ("count", n)] for r, n in removed]
        )
    elif not shown:
        sec.not_run(", ".join(ran), "no duplicates found by")
    return sec


def _counter_section(
    inp: ReportInputs, key: str, title: str, stages: tuple[str, ...], prefix: str, xlabel: str, what: str
) -> Section:
    sec = Section(key, title)
    if not any(rd.stage_ran(inp.stats, s) for s in stages):
        sec.not_run(", ".join(stages))
        return sec
    items = rd.prefixed_counters(inp.stats, stages, prefix)
    if not items:
        sec.not_run(", ".join(stages), f"no {what} recorded by")
        return sec
    sec.plot(key, plots.hbar_chart(list(items.items()), xlabel), title)
    sec.table(key, [what, xlabel], [[("key", k), ("count", n)] for k, n in items.items()])
    return sec


def _pii(inp: ReportInputs) -> Section:
    """Replacements per type, then a few masked passages per type (stats.json's pii examples)."""
    sec = _counter_section(
        inp, "pii", "PII replacements per type", ("pii",), "replaced:", "replacements", "type"
    )
    examples = inp.stats.get("stages", {}).get("pii", {}).get("examples") or {}
    for entity, passages in examples.items():
        items = "".join(f"<li><pre>{esc(p)}</pre></li>" for p in passages)
        sec.body.append(
            f"<details><summary>{esc(entity)}: masked examples ({len(passages)} shown)</summary>"
            f"<ul class=examples>{items}</ul></details>"
        )
    return sec


def _toxicity(inp: ReportInputs) -> Section:
    sec = Section("toxicity", "Toxicity scores")
    if not rd.stage_ran(inp.stats, "toxicity"):
        sec.not_run("toxicity")
        return sec
    scores = rd.histogram(inp.stats, "toxicity", "toxicity_score")
    if not scores:
        sec.not_run("toxicity", "no toxicity_score histogram recorded by")
        return sec
    threshold = _cfg(inp, "toxicity").get("threshold")
    marks = (
        [("threshold", float(threshold))]
        if isinstance(threshold, int | float) and not isinstance(threshold, bool)
        else []
    )
    sec.plot(
        "toxicity",
        plots.histogram_chart([("documents", scores)], "toxicity score", marks),
        "toxicity score distribution (dashed: threshold)",
    )
    return sec


def _bias(inp: ReportInputs) -> Section:
    sec = Section("bias", "Bias signals: identity mentions and gendered words")
    bias = inp.stats.get("bias")
    if not rd.stage_ran(inp.stats, "bias") or not bias:
        sec.not_run("bias")
        return sec
    before, kept = bias.get("before_filtering", {}), bias.get("kept", {})
    cats = sorted(set(before.get("per_million_words", {})) | set(kept.get("per_million_words", {})))
    if not cats:
        sec.not_run("bias", "no lexicon mention found by")
        return sec
    rate = [
        (name, [fig.get("per_million_words", {}).get(c, 0.0) for c in cats])
        for name, fig in (("before filtering", before), ("kept", kept))
    ]
    sec.plot(
        "bias.rates",
        plots.hbar_pair_chart(cats, rate, "mentions per million words"),
        "mentions per million words, per category, before filtering and kept",
    )
    share = [
        (name, [fig.get("toxic_share", {}).get(c, 0.0) for c in cats])
        for name, fig in (("before filtering", before), ("kept", kept))
    ]
    sec.plot(
        "bias.toxic",
        plots.hbar_pair_chart(cats, share, "share of mentions in toxic lines"),
        "share of each category's mentions in a line the toxicity classifier scores at or above its threshold",
    )
    sec.table(
        "bias",
        ["corpus", "documents", "words", "female:male"],
        [
            [
                ("corpus", name),
                ("documents", fig.get("documents", 0)),
                ("words", fig.get("words", 0)),
                (
                    "female_male_ratio",
                    "–" if fig.get("female_male_ratio") is None else f"{fig['female_male_ratio']:.3f}",
                ),
            ]
            for name, fig in (("before filtering", before), ("kept", kept))
        ],
    )
    sec.body.append(f"<p>{esc(bias.get('note', ''))}</p>")
    return sec


def _sequences(inp: ReportInputs) -> Section:
    sec = Section("sequences", "Tokens and sequence buckets")
    stages = ("tokenize", "bucket")
    if not any(rd.stage_ran(inp.stats, s) for s in stages):
        sec.not_run("tokenize")
        return sec
    rows = rd.sequence_buckets(inp.stats, stages)
    if not rows:
        sec.not_run("tokenize", "no per-bucket counters recorded by")
        return sec
    sec.plot("sequences", plots.buckets_chart(rows), "rows, tokens and padding per sequence bucket")
    total_t, total_p = sum(r.tokens for r in rows), sum(r.padding for r in rows)
    sec.table(
        "sequences",
        ["bucket", "rows", "tokens", "padding", "padding waste"],
        [
            [
                ("bucket", r.bucket),
                ("rows", r.rows),
                ("tokens", r.tokens),
                ("padding", r.padding),
                ("waste", f"{r.waste:.1%}"),
            ]
            for r in rows
        ]
        + [
            [
                ("bucket", "all"),
                ("rows", sum(r.rows for r in rows)),
                ("tokens", total_t),
                ("padding", total_p),
                ("waste", f"{total_p / (total_t + total_p) if total_t + total_p else 0:.1%}"),
            ]
        ],
    )
    controls = inp.stats.get("control_tokens")
    if controls:  # tokenize.control_tokens: kept documents per control token
        counts = list(controls["documents"].items())  # rule order, first rule on top
        sec.plot(
            "control_tokens",
            plots.hbar_chart(counts, "documents", top=len(counts)),
            "kept documents per control token",
        )
        sec.table(
            "control_tokens",
            ["control token", "id", "documents"],
            [
                [("token", t), ("id", str(controls.get("ids", {}).get(t, ""))), ("documents", n)]
                for t, n in controls["documents"].items()
            ],
        )
    mix = inp.stats.get("mix")
    if mix:  # token-budget mixing: what each group was asked for, had, and gave
        sec.table(
            "mix",
            ["group", "target tokens", "available", "achieved", "note"],
            [
                [
                    ("group", g),
                    ("target", m["target"]),
                    ("available", m["available"]),
                    ("achieved", m["achieved"]),
                    (
                        "note",
                        "no documents"
                        if m["no_documents"]
                        else f"capped at {mix['max_epochs']} epochs"
                        if m["capped"]
                        else "",
                    ),
                ]
                for g, m in mix["groups"].items()
            ],
        )
    return sec


def _other(inp: ReportInputs) -> Section | None:
    sec = Section("other", "Other distributions")
    for stage, s in inp.stats.get("stages", {}).items():
        if stage in _DEDICATED_STAGES:
            continue
        for name, hist in sorted(s.get("histograms", {}).items()):
            if (stage, name) not in _DEDICATED:
                sec.plot(
                    f"{stage}.{name}",
                    plots.histogram_chart([("documents", rd.buckets(hist))], name),
                    f"{stage}: {name}",
                )
    return sec if sec.body else None


def _example_items(examples: list[rd.Example]) -> str:
    return "".join(
        f'<li data-id="{esc(e.id)}"><div class=meta><code>{esc(e.id)}</code>'
        + (f" — {esc(e.detail)}" if e.detail else "")
        + (f" — duplicate of <code>{esc(e.duplicate_of)}</code>" if e.duplicate_of else "")
        + f"</div><pre>{esc(e.text) if e.text else '<i>(text not kept)</i>'}</pre></li>"
        for e in examples
    )


def _kept(inp: ReportInputs) -> Section:
    sec = Section("kept", "What survived: kept documents")
    if not inp.kept:
        sec.body.append('<p class="none">no kept documents to show</p>')
        return sec
    sec.body.append(
        f'<details data-kept="{len(inp.kept)}"><summary>{len(inp.kept)} kept documents, chosen by a '
        f"stable hash of their id (text cut short, contact-like spans masked)</summary>"
        f"<ul class=examples>{_example_items(inp.kept)}</ul></details>"
    )
    return sec


def _examples(inp: ReportInputs) -> Section:
    sec = Section("examples", "Rejected examples")
    if not inp.examples:
        sec.body.append(
            '<p class="none">no rejected records to show (none rejected, or examples turned off)</p>'
        )
        return sec
    sec.body.append(
        "<p>A few records per reason, chosen by a stable hash of their id; text cut short, and "
        "email, phone, card and IP-like spans masked.</p>"
    )
    for reason, examples in inp.examples.items():
        items = _example_items(examples)
        sec.body.append(
            f'<details data-reason="{esc(reason)}"><summary><code>{esc(reason)}</code> '
            f"({len(examples)} shown)</summary><ul class=examples>{items}</ul></details>"
        )
    return sec


def _config(inp: ReportInputs) -> Section:
    sec = Section("config", "Configuration and versions")
    blob = json.dumps(
        {"config": inp.stats.get("config", {}), "versions": inp.stats.get("versions", {})}, indent=2
    )
    sec.body.append(
        f"<details><summary>resolved config (hash {esc(inp.stats.get('config_hash', ''))}) and package "
        f"versions</summary><pre>{esc(blob)}</pre></details>"
    )
    return sec


SECTIONS: list[Callable[[ReportInputs], Section | None]] = [
    _summary,
    _funnel,
    _rejections,
    _language,
    _lengths,
    _quality,
    _duplicates,
    lambda i: _counter_section(
        i,
        "contamination",
        "Contamination hits per benchmark",
        ("decontamination",),
        "hits:",
        "hits",
        "benchmark",
    ),
    _pii,
    lambda i: _counter_section(
        i,
        "prompt",
        "Prompt scaffolding: documents tagged per signal",
        ("prompt",),
        "tagged:",
        "documents",
        "signal",
    ),
    _toxicity,
    _bias,
    _sequences,
    _other,
    _kept,
    _examples,
    _config,
]

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:.8em 0}figure svg{max-width:100%;height:auto}
figcaption{color:#666;font-size:12px}.not-run{color:#888;font-style:italic}.warn{color:#b00}
pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;margin:2px 0 10px}nav a{margin-right:.8em}
ul.examples{list-style:none;padding-left:.5em}.meta{font-size:12px;color:#555}
"""


def render(inp: ReportInputs) -> str:
    """The report as one HTML string (pure: no file access)."""
    sections = [s for s in (build(inp) for build in SECTIONS) if s is not None]
    s = inp.stats
    nav = "".join(f'<a href="#{esc(x.key)}">{esc(x.title.split(":")[0])}</a>' for x in sections)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>corpusforge run report</title><style>{STYLE}</style></head><body>"
        f"<h1>corpusforge run report</h1><p>finished {esc(s.get('finished_at', '?'))} · corpusforge "
        f"{esc(s.get('corpusforge_version', '?'))} · stages: {esc(' → '.join(s.get('stage_order', [])))}</p>"
        f"<nav>{nav}</nav>{''.join(x.html() for x in sections)}</body></html>"
    )


def load_stats(output_dir: str) -> dict[str, Any]:
    path = f"{output_dir.rstrip('/')}/stats.json"
    try:
        with FileSystems.open(path) as f:
            return json.loads(f.read().decode("utf-8"))
    except Exception as exc:
        raise FileNotFoundError(
            f"{path}: cannot read stats.json ({exc}); is this a corpusforge output folder?"
        ) from exc


def write_report(
    output_dir: str, examples_per_reason: int | None = None, example_chars: int | None = None
) -> str:
    """Build ``OUT/report.html`` from ``OUT/stats.json`` and the outputs; returns its path.

    Example settings default to the run's own config (``report`` section of stats.json).
    """
    output_dir = output_dir.rstrip("/")
    stats = load_stats(output_dir)
    cfg = (stats.get("config") or {}).get("report") or {}
    per_reason = cfg.get("examples_per_reason", 3) if examples_per_reason is None else examples_per_reason
    chars = cfg.get("example_chars", 300) if example_chars is None else example_chars
    kept_count = cfg.get("kept_examples", 5)
    inputs = ReportInputs(
        stats=stats,
        languages=rd.kept_languages(output_dir) if rd.stage_ran(stats, "language") else {},
        examples=rd.rejected_examples(output_dir, per_reason, chars),
        kept=rd.kept_examples(output_dir, kept_count, chars),
    )
    path = f"{output_dir}/{REPORT_FILE}"
    with FileSystems.create(path) as f:
        f.write(render(inputs).encode("utf-8"))
    return path
