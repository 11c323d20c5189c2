"""The stage-order rules the outputs depend on, pinned on the graph the default config builds."""

from __future__ import annotations

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import load_config


def test_decontamination_before_dedup_and_pii_after_dedup():
    """Decontamination before dedup: a contaminated page must be rejected as contamination, not kept
        as the survivor of its duplicate cluster. PII after dedup: replacing spans changes the text that
        dedup compares. Toxicity after every filter: it scores only what is kept (bias, which reads the
    same classifier and only tags, comes after it)."""
    order = [name for name, _ in enabled_stages(load_config())]
    assert order.index("decontamination") < order.index("dedup_exact") < order.index("dedup_near")
    assert order.index("dedup_near") < order.index("pii")
    assert order.index("pii") < order.index("toxicity") < order.index("bias")
    assert order[-2:] == ["toxicity", "bias"]
    assert order[0] == "normalize"
