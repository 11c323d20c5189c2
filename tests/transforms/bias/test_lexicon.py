"""The bias lexicon: file format, errors that name the file and line, whole-word matching."""

from __future__ import annotations

import pytest

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import ConfigError, load_config
from corpusforge.transforms.bias.lexicon import Lexicon, LexiconError, parse_lexicon


def test_shipped_lexicon_has_the_issue_categories():
    lex = Lexicon.load()
    for cat in (
        "female",
        "male",
        "gender_sexuality",
        "religion",
        "nationality_ethnicity",
        "disability",
        "age",
    ):
        assert cat in lex.categories
    assert lex.single["she"] == ("female",) and lex.single["his"] == ("male",)


def test_parse_comments_several_terms_and_multiword():
    entries = parse_lexicon("# a comment\nreligion: Muslim, jews  # trailing\n\nage: old people\n")
    assert entries == [("religion", "Muslim"), ("religion", "jews"), ("age", "old people")]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("religion: muslim\nno colon here\n", 2, "expected 'category: term"),
        ("Religion: muslim\n", 1, "lower-case"),
        ("religion: muslim,, jew\n", 1, "empty term"),
        ("religion: ---\n", 1, "no word characters"),
    ],
)
def test_bad_lexicon_names_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "mine.txt"
    path.write_text(text)
    with pytest.raises(LexiconError) as err:
        Lexicon.load(path)
    assert f"{path}:{line}:" in str(err.value) and what in str(err.value)


def test_empty_or_missing_lexicon_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(LexiconError, match="no entries"):
        Lexicon.load(tmp_path / "empty.txt")
    with pytest.raises(LexiconError, match="cannot read"):
        Lexicon.load(tmp_path / "absent.txt")


def test_bad_user_lexicon_fails_at_start_up_naming_the_key(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("religion muslim\n")
    cfg = load_config(overrides=[f"bias.lexicon={path}"])
    with pytest.raises(ConfigError, match=rf"bias.lexicon: {path}:1:"):
        enabled_stages(cfg)


def test_whole_words_only():
    lex = Lexicon.from_entries([("male", "he"), ("age", "old people")])
    # "he" inside "the", "there", "hello" is no match; "old" alone or "people" alone is none either
    assert lex.match("the other hello there he".split()) == ["male"]
    assert lex.match("old people and old and people".split()) == ["age"]
    assert lex.match(["old"]) == []  # a multi-word term cut by the end of the unit


def test_a_term_in_two_categories_counts_for_both():
    lex = Lexicon.from_entries([("female", "grandmother"), ("age", "grandmother")])
    assert sorted(lex.match(["grandmother"])) == ["age", "female"]


def test_every_occurrence_counts_once_per_category():
    # repeated single and multi-word terms, overlapping with a one-word term sharing the first word
    lex = Lexicon.from_entries([("male", "he"), ("age", "old people"), ("age", "old"), ("age", "old men")])
    words = "he said old people and he said old men he".split()
    assert sorted(lex.match(words)) == ["age"] * 4 + ["male"] * 3
