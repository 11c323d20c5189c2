"""A synthetic stats.json in which every stage recorded everything the report can draw."""

from __future__ import annotations

from typing import Any

from corpusforge.pipelines.report.bias import bias_summary


def stage(n_in: int, kept: int, reasons: dict[str, int] | None = None, chars: int = 1000, **extra: Any) -> dict[str, Any]:
    reasons = reasons or {}
    out = {"in": n_in, "kept": kept, "rejected": sum(reasons.values()), "rejected_by_reason": reasons,
           "chars_in": n_in * chars, "chars_kept": kept * chars}
    out.update(extra)
    return out


def full_stats() -> dict[str, Any]:
    order = ["read", "validate", "normalize", "language", "quality", "decontamination", "prompt", "dedup_exact",
             "dedup_near", "pii", "toxicity", "bias", "tokenize"]
    bias_counters = {"docs": 600, "words": 500_000, "mentions:female": 900, "mentions:male": 1200,
                     "mentions:religion": 80, "toxic_mentions:religion": 8, "toxic_mentions:female": 30,
                     "rejected_records:docs": 400, "rejected_records:words": 300_000,
                     "rejected_records:mentions:religion": 70, "rejected_records:toxic_mentions:religion": 20}
    return {
        "bias": bias_summary(bias_counters),
        "corpusforge_version": "0.1.0", "records_read": 1000, "kept": 600, "rejected": 400, "conservation_ok": True,
        "stage_order": order,
        "stages": {
            "read": stage(1000, 1000, chars=0),
            "validate": stage(1000, 990, {"invalid:bad_json": 6, "invalid:empty": 4},
                              histograms={"chars": {"0.0": 10, "100.0": 500, "1000.0": 480}}),
            "normalize": stage(990, 990),
            "language": stage(990, 900, {"language:de": 60, "language:fr": 30},
                              histograms={"lang_score": {"0.5": 40, "0.8": 100, "0.9": 850}}),
            "quality": stage(900, 760, {"quality:gopher_quality.min_words": 90, "quality:c4.lorem_ipsum": 50},
                             histograms={"gopher_repetition.dup_line_frac": {"0.0": 700, "0.1": 150, "0.3": 50},
                                         "gopher_quality.mean_word_length": {"2.0": 30, "3.0": 800, "10.0": 70}}),
            "decontamination": stage(760, 740, {"contamination:gsm8k": 15, "contamination:mmlu": 5},
                                     counters={"hits:gsm8k": 15, "hits:mmlu": 5, "hits:humaneval": 0}),
            "prompt": stage(740, 740, counters={"tagged": 4, "tagged:chat_markers": 3, "tagged:jailbreak": 1}),
            "dedup_exact": stage(740, 700, {"dedup:exact": 40}),
            "dedup_near": stage(700, 600, {"dedup:near": 100},
                                histograms={"cluster_size": {"2.0": 60, "3.0": 20, "10.0": 4}}),
            "pii": stage(600, 600, counters={"replaced:EMAIL_ADDRESS": 41, "replaced:PHONE_NUMBER": 12}),
            "toxicity": stage(600, 600, histograms={"toxicity_score": {"0.0": 500, "0.5": 80, "0.9": 20}}),
            "bias": stage(600, 600, counters=bias_counters),
            "tokenize": stage(600, 600, counters={
                "rows:bucket=512": 300, "tokens:bucket=512": 100_000, "padding:bucket=512": 53_600,
                "rows:bucket=2048": 100, "tokens:bucket=2048": 150_000, "padding:bucket=2048": 54_800,
                "tokens_total": 250_000}),
            "output": stage(600, 600, histograms={"chars": {"100.0": 250, "1000.0": 350}}),
        },
        "inputs": [], "unreadable_files": [], "outputs": {},
        "config": {
            "language": {"enabled": True, "keep": ["en"], "min_score": 0.65},
            "quality": {"gopher_repetition": {"dup_line_frac": 0.3},
                        "gopher_quality": {"min_mean_word_length": 3, "max_mean_word_length": 10}},
            "toxicity": {"enabled": True, "threshold": 0.8, "filter": False},
            "report": {"examples_per_reason": 2, "example_chars": 120},
        },
        "config_hash": "0123456789abcdef", "versions": {}, "runner": "LocalRunner", "wall_time_s": 12.5,
        "finished_at": "2026-01-01T00:00:00Z",
    }


# Every plot the full stats must produce (data-plot names).
FULL_PLOTS = {
    "funnel", "rejections", "languages", "lang_score", "lengths", "quality.gopher_repetition.dup_line_frac",
    "quality.gopher_quality.mean_word_length", "dedup_near.cluster_size", "contamination", "pii", "prompt", "toxicity",
    "bias.rates", "bias.toxic", "sequences",
}
