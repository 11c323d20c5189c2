"""stats.json ``bias`` section: the bias stage's counters as rates a reviewer can compare.

The stage runs after every filtering stage, so its own counters describe the **kept** corpus; the
same counts over every rejected record (``rejected_records:*``, counted beside the rejected
output) added to them give the corpus **before filtering** (every record read that had text,
whichever stage rejected it). Comparing the two shows what the filters did to each group's share.
"""

from __future__ import annotations

from typing import Any

from corpusforge.transforms.bias.lexicon import FEMALE, MALE
from corpusforge.transforms.bias.stage import REJECTED_PREFIX

_MENTIONS, _TOXIC = "mentions:", "toxic_mentions:"


def _figures(counts: dict[str, int]) -> dict[str, Any]:
    words = counts.get("words", 0)
    mentions = {k[len(_MENTIONS) :]: v for k, v in counts.items() if k.startswith(_MENTIONS)}
    toxic = {k[len(_TOXIC) :]: v for k, v in counts.items() if k.startswith(_TOXIC)}
    female, male = mentions.get(FEMALE, 0), mentions.get(MALE, 0)
    return {
        "documents": counts.get("docs", 0),
        "words": words,
        "mentions": dict(sorted(mentions.items())),
        "per_million_words": {
            c: round(n * 1e6 / words, 1) if words else 0.0 for c, n in sorted(mentions.items())
        },
        "female_male_ratio": round(female / male, 4) if male else None,
        "toxic_share": {c: round(toxic.get(c, 0) / n, 4) for c, n in sorted(mentions.items()) if n},
    }


def bias_summary(counters: dict[str, int] | None) -> dict[str, Any] | None:
    """The ``bias`` section from the stage's counters, or None when the stage did not run."""
    if not counters or "docs" not in counters:
        return None
    kept = {k: v for k, v in counters.items() if not k.startswith(REJECTED_PREFIX)}
    before = dict(kept)
    for k, v in counters.items():
        if k.startswith(REJECTED_PREFIX):
            name = k[len(REJECTED_PREFIX) :]
            before[name] = before.get(name, 0) + v
    return {
        "note": "kept: the documents the bias stage tagged (it runs after every filter); before_filtering: "
        "those plus every rejected record, whichever stage rejected it",
        "before_filtering": _figures(before),
        "kept": _figures(kept),
    }
