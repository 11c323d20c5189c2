"""Text preparation before toxicity scoring: artefacts dropped, masked profanity spelt out."""

from __future__ import annotations

import pytest

from corpusforge.schemas.config import ToxicityConfig
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.stage import ToxicityScorer
from corpusforge.transforms.toxicity.text import MASK_TARGET_MIN_WEIGHT, Unmasker, strip_artefacts


@pytest.fixture(scope="module")
def model() -> LinearToxicityModel:
    return LinearToxicityModel.load()


@pytest.fixture(scope="module")
def unmask(model) -> Unmasker:
    return Unmasker(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))


def test_offensive_terms_come_from_the_model(model):
    terms = set(model.offensive_terms(MASK_TARGET_MIN_WEIGHT))
    assert {"fuck", "shit", "bitch", "idiot", "stupid"} <= terms
    assert not {"library", "thanks", "garden"} & terms


@pytest.mark.parametrize(
    ("masked", "plain"),
    [
        ("what the f*ck", "what the fuck"),
        ("f**king mess", "fucking mess"),
        ("sh!t happens", "shit happens"),
        ("you b1tch", "you bitch"),
        ("a$$hole", "asshole"),
        ("st*pid plan", "stupid plan"),
        ("id!ot", "idiot"),
        ("sh*t!", "shit!"),
        ("oh f*ck, f*ck", "oh fuck, fuck"),
    ],
)
def test_masked_profanity_is_spelt_out(unmask, masked, plain):
    assert unmask(masked) == plain


@pytest.mark.parametrize(
    "text", ["mp3 player", "h1n1 and covid19", "b2b sales up 100%", "f***", "call me at 555-0100", "c3po"]
)
def test_codes_numbers_and_ambiguous_masks_stay(unmask, text):
    assert unmask(text) == text


def test_artefacts_are_removed_but_words_stay():
    assert strip_artefacts("RT @bob_1: look at this http://t.co/x &#8220;wow&#8221;").split() == [
        ":",
        "look",
        "at",
        "this",
        "wow",
    ]
    assert strip_artefacts("@USER @USER you are an idiot URL").split() == ["you", "are", "an", "idiot"]
    assert strip_artefacts("The art department") == "The art department"


def test_mentions_do_not_change_the_score_of_an_insult(model):
    scorer = ToxicityScorer(model)
    plain = scorer.score("you are an idiot and a liar")
    assert scorer.score("@USER @USER @USER you are an idiot and a liar URL") == pytest.approx(plain)
    raw = ToxicityScorer(model, ToxicityConfig(clean_text=False))
    assert raw.score("@USER @USER @USER you are an idiot and a liar URL") != pytest.approx(plain)


def test_masked_insult_scores_like_the_plain_one(model):
    scorer = ToxicityScorer(model)
    assert scorer.score("shut the f*ck up you st*pid b!tch") > 0.9
    assert ToxicityScorer(model, ToxicityConfig(clean_text=False)).score(
        "shut the f*ck up you st*pid b!tch"
    ) < scorer.score("shut the f*ck up you st*pid b!tch")
