"""stats.json's conservation check from counters alone (fast): three counts must agree, the
reader's per-file records, validate's input and the rows written."""

from __future__ import annotations

import time

from corpusforge.pipelines.report.stats import build_stats, conservation_message


def stats_for(read_per_file: dict[str, int], validated: int, kept: int, rejected: int) -> dict:
    counters = {
        "read": {
            "in": sum(read_per_file.values()),
            "kept": sum(read_per_file.values()),
            **{f"records:{p}": n for p, n in read_per_file.items()},
        },
        "validate": {"in": validated, "kept": validated},
    }
    return build_stats(
        counters=counters,
        stage_order=["read", "validate"],
        config={},
        config_hash="0" * 16,
        inputs=[{"path": p} for p in sorted(read_per_file)],
        unreadable=[],
        outputs={"documents": {"rows": kept}, "rejected": {"rows": rejected}},
        started=time.time(),
        runner="test",
    )


def test_counts_that_agree_conserve_and_list_records_per_file():
    stats = stats_for({"a.jsonl": 3, "b.jsonl": 2}, validated=5, kept=4, rejected=1)
    assert stats["conservation_ok"] is True
    assert stats["records_read"] == 5
    assert [(i["path"], i["records"]) for i in stats["inputs"]] == [("a.jsonl", 3), ("b.jsonl", 2)]
    # the per-file counters are moved to inputs, not left among the read stage's counters
    assert "counters" not in stats["stages"]["read"]


def test_rows_lost_between_validate_and_the_writers_break_conservation():
    stats = stats_for({"a.jsonl": 5}, validated=5, kept=3, rejected=1)
    assert stats["conservation_ok"] is False
    assert "kept 3 + rejected 1 = 4" in conservation_message(stats)


def test_a_reader_losing_lines_breaks_conservation_even_when_the_outputs_match_validate():
    """Records the reader took but validate never saw: kept + rejected = validate's input, yet the
    run did not conserve what it read."""
    stats = stats_for({"a.jsonl": 6}, validated=5, kept=4, rejected=1)
    assert stats["conservation_ok"] is False
    message = conservation_message(stats)
    assert "read 6" in message and "validate saw 5" in message
