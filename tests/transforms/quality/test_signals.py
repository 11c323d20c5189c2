"""Unit tests of the quality signals and rules on small texts written for the test, at and around
each threshold (no pipeline)."""

from __future__ import annotations

import pytest

from corpusforge.schemas.config import QualityConfig
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.quality import signals
from corpusforge.transforms.quality.signals import (
    compute_signals,
    count_sentences,
    ngram_signals,
    split_words,
)
from corpusforge.transforms.quality.stage import QualityFilter, build_rules, first_broken_rule
from corpusforge.transforms.quality.stopwords import STOP_WORDS, stop_words_for

EN = STOP_WORDS["en"]


@pytest.fixture(autouse=True, params=["compiled", "python"])
def signals_path(request, monkeypatch):
    """Every test here runs on the compiled signals (_signals.c) and on the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(signals, "_signals", None)
    elif signals._signals is None:
        pytest.skip("transforms/quality/_signals.c was not compiled here")
    return request.param


SENTENCES = [
    "The old mill on the river has been turned into a library with a reading room and a garden.",
    "Every morning the librarian opens the shutters and waters the plants that grow along the wall.",
    "Students come in the afternoon to study, and some of them stay until the lamps are lit.",
    "On Fridays a local historian gives a short talk about the town and the families that built it.",
    "The roof was repaired last year after a storm, and the work was paid for by a public collection.",
    "Visitors often ask about the wheel, which still turns slowly when the water is high in spring.",
]
ARTICLE = "\n".join(SENTENCES)


def quality(**overrides) -> QualityFilter:
    cfg = QualityConfig.model_validate(overrides)
    stage = QualityFilter(cfg)
    stage.ready()
    return stage


def reason(stage: QualityFilter, text: str, lang: str | None = "en") -> str | None:
    out = stage.process(Document(id="t", text=text, lang=lang))
    return out.rejection.reason if isinstance(out, RejectedDocument) else None


# ---- word splitting -------------------------------------------------------------------------


def test_punctuation_is_not_a_word():
    assert split_words("Hello , world - it's (fine) ... • yes!") == ["Hello", "world", "it's", "fine", "yes"]


def test_ordinary_article_passes_alpha_word_rule_despite_punctuation_and_dashes():
    text = ARTICLE.replace(".", " .").replace(",", " ,") + "\n- — | - — |"
    s = compute_signals(text, EN)
    assert s.alpha_words_frac > 0.95
    assert reason(quality(), text) is None


def test_clean_article_is_kept_with_signals():
    out = quality().process(Document(id="a", text=ARTICLE, lang="en"))
    assert not isinstance(out, RejectedDocument)
    assert out.quality_signals is not None
    assert out.quality_signals.n_words == len(split_words(ARTICLE))
    assert out.quality_signals.stop_words >= 2


# ---- Gopher quality -------------------------------------------------------------------------


def test_min_doc_words_at_threshold():
    words = ("the cat sat on the mat and looked at the dog with a calm face " * 10).split()
    text50 = " ".join(words[:50]) + "."
    text49 = " ".join(words[:49]) + "."
    stage = quality(gopher_repetition={"enabled": False}, c4={"enabled": False})
    assert reason(stage, text50) is None
    assert reason(stage, text49) == "quality:gopher_quality.min_doc_words"


def test_mean_word_length_bounds():
    short = " ".join(["a to of an it is"] * 20)
    long = " ".join(["internationalisation telecommunications"] * 40)
    stage = quality(gopher_repetition={"enabled": False})
    assert reason(stage, short) == "quality:gopher_quality.min_avg_word_length"
    assert reason(stage, long) == "quality:gopher_quality.max_avg_word_length"


def test_symbol_word_ratio_around_threshold():
    base = ARTICLE.split()  # ~100 words
    n = len(split_words(ARTICLE))
    over = " ".join(base) + " #" * (n // 10 + 1)
    under = " ".join(base) + " #" * (n // 10 - 1)
    stage = quality(gopher_repetition={"enabled": False}, fineweb={"enabled": False})
    assert reason(stage, over) == "quality:gopher_quality.symbol_word_ratio"
    assert reason(stage, under) is None


def test_bullet_and_ellipsis_lines():
    bullets = "\n".join(f"• {s}" for s in SENTENCES)
    assert reason(quality(), bullets) == "quality:gopher_quality.bullet_lines_ratio"
    # 2 of 6 lines (33%) end with an ellipsis: over 0.3; 1 of 6 (17%): fine
    two = "\n".join(s[:-1] + "..." if i < 2 else s for i, s in enumerate(SENTENCES))
    one = "\n".join(s[:-1] + "..." if i < 1 else s for i, s in enumerate(SENTENCES))
    stage = quality(gopher_quality={"max_symbol_word_ratio": 1.0})
    assert reason(stage, two) == "quality:gopher_quality.ellipsis_lines_ratio"
    assert reason(stage, one) is None


def test_line_ratios_not_judged_on_two_or_three_lines():
    text = SENTENCES[0][:-1] + "...\n" + " ".join(SENTENCES[1:])  # 1 of 2 lines ends with an ellipsis
    assert reason(quality(gopher_quality={"max_symbol_word_ratio": 1.0}), text) is None


def test_alpha_words_ratio():
    numbers = " ".join(str(1000 + i) for i in range(60)) + " the and of the"
    assert reason(quality(), numbers) == "quality:gopher_quality.alpha_words_ratio"


def test_stop_words_required_and_language_aware():
    salad = "\n".join(
        " ".join(
            ["cheap", "watches", "discount", "shoes", "bonus", "offer", "deal", "price"][(i + k) % 8]
            for k in range(9)
        )
        + "."
        for i in range(10)
    )
    assert reason(quality(gopher_repetition={"enabled": False}), salad) == "quality:gopher_quality.stop_words"
    german = (
        "Der Markt in der Altstadt ist jeden Samstag geöffnet, und die Bauern bringen Obst und Käse mit. "
        "Die Kinder laufen zwischen den Ständen, während die Eltern mit den Händlern sprechen. "
        "Am Nachmittag ist der Platz wieder leer, und nur die Tauben suchen noch nach Krümeln. "
        "Wer den Markt erleben will, sollte früh kommen und einen Korb mitbringen."
    )
    stage = quality()
    assert reason(stage, german, lang="de") is None
    assert reason(stage, german, lang="en") == "quality:gopher_quality.stop_words"
    assert reason(stage, german, lang=None) is None  # unknown language: union of the lists
    assert stop_words_for("ja") == frozenset()  # no list: rule skipped rather than reject everything


# ---- Gopher repetition ----------------------------------------------------------------------


def test_dup_line_frac_around_threshold():
    unique = [
        f"Line number {w} tells a different part of the story of the town."
        for w in "one two three four five six seven eight nine ten".split()
    ]
    over = unique[:7] + [unique[0]] * 4  # 4 of 11 lines repeat (36%)
    under = unique + [unique[0]] * 2  # 2 of 12 repeat (17%)
    off = {
        "top_2gram_char_frac": 1,
        "top_3gram_char_frac": 1,
        "top_4gram_char_frac": 1,
        **{f"dup_{n}gram_char_frac": 1 for n in range(5, 11)},
        "dup_line_char_frac": 1,
        "dup_para_char_frac": 1,
    }
    stage = quality(gopher_repetition=off, fineweb={"enabled": False})
    assert reason(stage, "\n".join(over)) == "quality:gopher_repetition.dup_line_frac"
    assert reason(stage, "\n".join(under)) is None


def test_dup_paragraph_frac():
    paras = ["\n".join(SENTENCES[:3]), "\n".join(SENTENCES[3:])]
    text = "\n\n".join(paras + [paras[0], paras[1], paras[0]])
    s = compute_signals(text, EN)
    assert s.dup_para_frac == pytest.approx(3 / 5)
    assert reason(quality(), text).startswith("quality:gopher_repetition.dup_")


def test_top_ngram_fraction():
    words = "buy cheap watches now".split() * 10 + SENTENCES[0].split()
    top, _ = ngram_signals(words, len(" ".join(words)))
    assert top[2] > 0.2 and top[3] > 0.18 and top[4] > 0.16
    assert top[2] == pytest.approx(len("buy cheap") * 10 / len(" ".join(words)))  # spaces inside count
    top_clean, dup_clean = ngram_signals(split_words(ARTICLE), len(ARTICLE))
    assert max(top_clean.values()) < 0.1 and max(dup_clean.values()) == 0.0


@pytest.mark.parametrize("short_first", [True, False])
def test_top_ngram_ties_go_to_the_first_occurring(short_first):
    """Two 2-grams occur three times each: the one met first is the top one, whatever the words
    (the reference implementations take the first; a hash order would flip with the vocabulary)."""
    short, long_ = ["ox", "ax"], ["ambassador", "plenipotentiary"]
    first, second = (short, long_) if short_first else (long_, short)
    words = []
    for i, pair in enumerate([first] * 3 + [second] * 3):
        words += pair + [f"sep{i}"]  # separators differ, so every other 2-gram occurs once
    total = len(" ".join(words))
    top, _ = ngram_signals(words, total)
    assert top[2] == pytest.approx(len(" ".join(first)) * 3 / total)


def test_top_ngram_verdicts_do_not_depend_on_the_words_before_the_repetition():
    """Same shape, different opening words: the same top 2-gram and so the same verdict."""
    body = ("tiny bit " * 4 + "considerable exaggeration " * 4).split()
    for opening in (["Hello", "there"], ["Good", "morning", "everyone"], ["Zebra"]):
        words = opening + body
        top, _ = ngram_signals(words, len(" ".join(words)))
        assert top[2] == pytest.approx(len("tiny bit") * 4 / len(" ".join(words))), opening


def test_dup_ngram_counts_each_word_once_and_skips_first_occurrence():
    words = "a b c d e f g".split() + ["x"] + "a b c d e f g".split()
    text = " ".join(words)
    _, dup = ngram_signals(words, len(text))
    # the second "a..g" (7 words, 7 chars) repeats 5-grams; the first occurrence does not count
    assert dup[5] == pytest.approx(7 / len(text))
    assert dup[7] == pytest.approx(7 / len(text))
    assert dup[8] == 0.0


def test_repeated_paragraph_rejected_by_dup_ngrams():
    text = ARTICLE + "\n\n" + " ".join(SENTENCES[:3]) + "\n\n" + " ".join(SENTENCES[3:])
    r = reason(quality(), text)
    assert r is not None and r.startswith("quality:gopher_repetition.dup_")


# ---- C4 -------------------------------------------------------------------------------------


def test_c4_lorem_ipsum_and_curly_brace():
    stage = quality()
    assert (
        reason(stage, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" + ARTICLE)
        == "quality:c4.lorem_ipsum"
    )
    assert (
        reason(stage, "if the value is set then { return the value to the caller }\n" + ARTICLE)
        == "quality:c4.curly_brace"
    )
    # a brace on a line of fewer than 5 words is a line C4 drops, not a page it drops
    assert reason(stage, "{ }\n" + ARTICLE) is None
    assert (
        reason(quality(c4={"curly_brace": False}), "if the value is set then { return it }\n" + ARTICLE)
        is None
    )


def test_c4_javascript_and_policy_lines():
    js = "\n".join(["Please enable JavaScript in your browser to view this page properly."] * 2 + SENTENCES)
    assert (
        reason(quality(gopher_repetition={"enabled": False}, fineweb={"enabled": False}), js)
        == "quality:c4.javascript"
    )
    policy = "\n".join(
        [f"Read our privacy policy and terms of use before you continue, part {i}." for i in range(8)]
        + SENTENCES[:4]
    )
    assert reason(quality(gopher_repetition={"enabled": False}), policy) == "quality:c4.policy"


def test_c4_min_sentences():
    assert count_sentences("One. Two! Three? four") == 4
    assert count_sentences("It ended.The next began.") == 2
    two = " ".join(["the quiet town and its river and its people"] * 6) + ". It rained."
    assert compute_signals(two, EN).c4_sentences == 2
    assert reason(quality(gopher_repetition={"enabled": False}), two) == "quality:c4.min_sentences"


def test_c4_terminal_punct_switch():
    text = "\n".join(s[:-1] for s in SENTENCES)  # no line ends with a full stop
    assert compute_signals(text, EN, c4_terminal_punct=False).c4_sentences == 6
    assert compute_signals(text, EN, c4_terminal_punct=True).c4_sentences == 0


def test_c4_citation_markers_are_removed_before_the_terminal_punctuation_check():
    """A Wikipedia-style page: lines end in '.[3]', '. [edit]' or '[citation needed]' (C4's
    reference code removes these markers first, so each line still ends a sentence)."""
    markers = ["[3]", "[12]", " [edit]", "[citation needed]", "[]", "[7]"]
    text = "\n".join(s + m for s, m in zip(SENTENCES, markers, strict=True))
    assert compute_signals(text, EN, c4_terminal_punct=True).c4_sentences == 6
    # C4 alone (FineWeb's own line punctuation rule keeps no such exception, as in datatrove)
    stage = quality(c4={"filter_no_terminal_punct": True}, fineweb={"enabled": False})
    assert reason(stage, text) is None
    # a marker C4 does not know is not removed: those lines end in "]" and are not counted
    odd = "\n".join(s + "[note a]" for s in SENTENCES)
    assert compute_signals(odd, EN, c4_terminal_punct=True).c4_sentences == 0
    assert reason(stage, odd) == "quality:c4.min_sentences"
    # the text itself is never modified
    stage.setup()
    assert stage.process(Document(id="w", text=text, lang="en")).text == text


# ---- FineWeb --------------------------------------------------------------------------------


def test_fineweb_line_punct_ratio():
    text = "\n".join(s[:-1] for s in SENTENCES)
    assert reason(quality(), text) == "quality:fineweb.line_punct_ratio"
    assert reason(quality(fineweb={"line_punct_exclude_zero": True}), text) is None


def test_fineweb_short_lines_and_list_ratio():
    notes = [
        f"The {w} is here." for w in "bread milk tea salt rice corn fish wine soap rope lamp coat hat".split()
    ]
    short = "\n".join(SENTENCES + notes)  # 13 of 19 lines short (68%)
    assert compute_signals(short, EN).short_line_ratio == pytest.approx(13 / 19)
    assert reason(quality(), short) == "quality:fineweb.short_line_ratio"
    assert reason(quality(), "\n".join(SENTENCES + notes[:11])) is None  # 11 of 17 (65%)
    # newlines per word: 6 article lines (~100 words) plus one-word lines
    words = "apples pears plums grapes lemons melons cherries peaches oranges limes figs dates".split()
    listy = ARTICLE + "\n" + "\n".join(f"{w}." for w in words * 4)
    s = compute_signals(listy, EN)
    assert s.list_ratio == pytest.approx(listy.count("\n") / s.n_words) and s.list_ratio > 0.3
    only_list = {
        "gopher_repetition": {"enabled": False},
        "gopher_quality": {"enabled": False},
        "c4": {"enabled": False},
        "fineweb": {"short_line_thr": 1.0, "max_char_dup_ratio": 1.0},
    }
    assert reason(quality(**only_list), listy) == "quality:fineweb.list_ratio"
    assert reason(quality(**only_list), ARTICLE) is None


def test_fineweb_char_dup_ratio_threshold():
    line = "Quote:"
    text = ARTICLE + "\n" + "\n".join([line] * 3)
    s = compute_signals(text, EN)
    assert s.char_dup_ratio == pytest.approx(2 * len(line) / len(text.replace("\n", "")))
    assert 0.01 < s.char_dup_ratio < 0.1
    only_fw = {
        "gopher_repetition": {"enabled": False},
        "gopher_quality": {"enabled": False},
        "c4": {"enabled": False},
    }
    assert reason(quality(**only_fw), text) is None  # our default 0.1
    assert (
        reason(quality(**only_fw, fineweb={"max_char_dup_ratio": 0.01}), text)
        == "quality:fineweb.char_dup_ratio"
    )


# ---- extra ----------------------------------------------------------------------------------


def test_mojibake_and_all_caps():
    moji = ARTICLE.replace("e", "Ã©").replace("'", "â€™")
    assert reason(quality(), moji) == "quality:extra.mojibake_ratio"
    assert compute_signals("Café, naïve and Zürich are fine.", EN).mojibake_ratio == 0.0
    caps = ARTICLE.upper()
    assert compute_signals(caps, EN).all_caps_words_ratio > 0.9
    assert reason(quality(), caps) is None  # off by default (upper-cased copies are dedup's to resolve)
    assert (
        reason(quality(extra={"max_all_caps_words_ratio": 0.5}), caps) == "quality:extra.all_caps_words_ratio"
    )


# ---- rules and config -----------------------------------------------------------------------


def test_every_reason_names_family_and_rule():
    names = [name for name, _ in build_rules(QualityConfig())]
    assert len(names) == len(set(names))
    for name in names:
        family, rule = name.split(".")
        assert family in {"gopher_quality", "gopher_repetition", "c4", "fineweb", "extra"} and rule


def test_disabled_family_has_no_rules():
    names = [n for n, _ in build_rules(QualityConfig.model_validate({"c4": {"enabled": False}}))]
    assert not any(n.startswith("c4.") for n in names)
    assert first_broken_rule(compute_signals(ARTICLE, EN), build_rules(QualityConfig())) is None


def test_rejected_record_keeps_signals_and_input_is_not_mutated():
    doc = Document(id="r", text="Too short to keep.", lang="en")
    out = quality().process(doc)
    assert isinstance(out, RejectedDocument)
    assert out.doc.quality_signals is not None and out.doc.quality_signals.n_words == 4
    assert doc.quality_signals is None


def test_signals_struct_is_written_as_typed_columns():
    import pyarrow as pa

    from corpusforge.schemas.arrow import document_schema
    from corpusforge.schemas.records import document_row

    out = quality().process(Document(id="a", text=ARTICLE, lang="en"))
    table = pa.Table.from_pylist([document_row(out)], schema=document_schema())
    struct = table.schema.field("quality_signals").type
    assert struct.field("dup_line_frac").type == pa.float32()
    assert struct.field("n_words").type == pa.int32()
    assert table.column("quality_signals")[0]["n_words"].as_py() == out.quality_signals.n_words
