"""Prompt control: the crafted pages are tagged with the right signal, ordinary pages are not,
patterns are extendable and validated, and the filter rejects as prompt:<signal>."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import Config, ConfigError, load_config
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.prompt.patterns import (
    PatternError,
    compile_patterns,
    load_patterns,
    parse_patterns,
)
from corpusforge.transforms.prompt.stage import PromptScanner, TagPrompt, tagged_signals

PAGES = [json.loads(line) for line in (Path(__file__).parent / "pages.jsonl").read_text().splitlines()]
THRESHOLDS = Config().prompt.thresholds.model_dump()


@pytest.fixture(scope="module")
def scanner() -> PromptScanner:
    return PromptScanner(compile_patterns(load_patterns()))


@pytest.mark.parametrize("page", [p for p in PAGES if p["signal"]], ids=lambda p: p["id"])
def test_crafted_pages_are_tagged_with_their_signal(scanner, page):
    assert page["signal"] in tagged_signals(scanner.scan(page["text"]), THRESHOLDS)


@pytest.mark.parametrize("page", [p for p in PAGES if not p["signal"]], ids=lambda p: p["id"])
def test_ordinary_pages_are_not_tagged(scanner, page):
    assert tagged_signals(scanner.scan(page["text"]), THRESHOLDS) == []


def test_counts_every_match(scanner):
    s = scanner.scan("<|im_start|>user\nhi<|im_end|>\nHuman: a\nAssistant: b\n")
    assert (s.template_tokens, s.chat_markers, s.assistant_boilerplate, s.jailbreak) == (2, 2, 0, 0)


def test_extra_patterns_extend_the_shipped_file():
    base = PromptScanner(compile_patterns(load_patterns()))
    more = PromptScanner(compile_patterns(load_patterns(extra={"assistant_boilerplate": ["(?i:as an llm)"]})))
    text = "As an LLM, I think so."
    assert base.scan(text).assistant_boilerplate == 0 and more.scan(text).assistant_boilerplate == 1


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("no_such_signal: abc", "unknown signal"),
        ("jailbreak: (unclosed", "bad regular expression"),
        ("jailbreak: a(b)c", "capturing groups"),
        ("jailbreak: x*", "empty string"),
        ("just text", "expected"),
    ],
)
def test_bad_patterns_name_file_and_line(text, what):
    with pytest.raises(PatternError, match=rf"mine.txt:2: .*{what}"):
        parse_patterns("# comment\n" + text, "mine.txt")


def test_bad_extra_pattern_fails_at_start_up_naming_the_key():
    cfg = load_config(overrides=["prompt.extra_patterns={jailbreak: ['(oops']}"])
    with pytest.raises(ConfigError, match=r"prompt.extra_patterns.jailbreak\[0\]: bad regular expression"):
        enabled_stages(cfg)


def test_tagging_only_by_default_and_filter_rejects_with_reason():
    doc = Document(id="x", text=next(p["text"] for p in PAGES if p["id"] == "jail-1"))
    tag = TagPrompt(THRESHOLDS)
    out = tag.process(doc)
    assert isinstance(out, Document) and out.prompt_signals.jailbreak >= 1
    rejected = TagPrompt(THRESHOLDS, filter=True).process(doc)
    assert isinstance(rejected, RejectedDocument) and rejected.rejection.reason == "prompt:jailbreak"
    assert rejected.doc.prompt_signals.jailbreak >= 1  # the signals stay on the rejected record
    off = dict(THRESHOLDS, jailbreak=0)
    assert isinstance(TagPrompt(off, filter=True).process(doc), Document)  # threshold 0: never


def test_thresholds_are_validated():
    with pytest.raises(ConfigError, match="prompt.thresholds.chat_markers"):
        load_config(overrides=["prompt.thresholds.chat_markers=-1"])
