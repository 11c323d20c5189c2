"""The ``sequences`` section of stats.json, read off the ``tokenize`` and ``bucket`` counters."""

from __future__ import annotations

from typing import Any


def sequence_summary(counters: dict[str, dict[str, int]]) -> dict[str, Any] | None:
    """The ``sequences`` section of stats.json, from the ``tokenize`` and ``bucket`` counters.

    Per bucket: rows, tokens, the pad tokens a batch padded to the bucket's bound would spend, and
    that waste as a fraction of the padded batch; ``tokens_conserved`` says whether every token of
    the kept documents (``tokenize`` counted them) landed in exactly one row.
    """
    bucket_counters = counters.get("bucket")
    if not bucket_counters:
        return None
    per: dict[int, dict[str, int]] = {}
    for key, value in bucket_counters.items():
        kind, sep, bound = key.partition(":bucket=")
        if sep and kind in ("rows", "tokens", "padding"):
            per.setdefault(int(bound), {"rows": 0, "tokens": 0, "padding": 0})[kind] = value
    buckets = {}
    for bound in sorted(per):
        b = per[bound]
        padded = b["tokens"] + b["padding"]
        buckets[str(bound)] = {**b, "padding_frac": round(b["padding"] / padded, 4) if padded else 0.0}
    tokens = sum(b["tokens"] for b in per.values())
    padding_total = sum(b["padding"] for b in per.values())
    return {
        "rows": sum(b["rows"] for b in per.values()),
        "tokens": tokens,
        "padding": padding_total,
        "padding_frac": round(padding_total / (tokens + padding_total), 4) if tokens else 0.0,
        "tokens_conserved": tokens == counters.get("tokenize", {}).get("tokens", 0),
        "buckets": buckets,
    }
