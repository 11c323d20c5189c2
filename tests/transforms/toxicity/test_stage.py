"""Toxicity tagging: the shipped classifier, segmentation and aggregation, the stage, the transform.

Every text here was written for these tests.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.stages import STAGES, enabled_stages
from corpusforge.schemas.config import Config, ToxicityConfig, load_config
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.toxicity.model import LinearToxicityModel
from corpusforge.transforms.toxicity.stage import TagToxicity, ToxicityScorer, ToxicityTagger, aggregate
from tests.helpers import REPO

SAMPLE_DIR = REPO / "samples" / "sample"

CLEAN_LINES = [
    "The city council approved the new budget for public libraries on Tuesday.",
    "Opening hours will be extended on weekends starting next month.",
    "Residents can borrow e-books and audiobooks with their library card.",
    "The mayor thanked volunteers who organised the summer reading program.",
    "A public hearing on the plan is scheduled for early October.",
    "Parking near the central branch remains free after six in the evening.",
]
TOXIC_LINES = [
    "This is a fucking joke, you stupid bitch.",
    "Shut the fuck up, nobody cares about your shit.",
    "You are a worthless piece of shit and an idiot.",
]
CLEAN_PAGE = "\n".join(CLEAN_LINES)
MIXED_PAGE = "\n".join([*CLEAN_LINES, TOXIC_LINES[0]])
RANT = "\n".join(TOXIC_LINES)


@pytest.fixture(scope="module")
def model() -> LinearToxicityModel:
    return LinearToxicityModel.load()


@pytest.fixture(scope="module")
def scorer(model) -> ToxicityScorer:
    return ToxicityScorer(model)


def doc(text: str, id: str = "d") -> Document:
    return Document(id=id, text=text)


# --- the classifier --------------------------------------------------------------------------------


def test_model_separates_insults_from_ordinary_sentences(model):
    clean = model.predict(["Thanks for the recipe, the bread came out great.", *CLEAN_LINES])
    toxic = model.predict([*TOXIC_LINES, "shut up bitch", "you are such a stupid moron"])
    assert clean.max() < 0.2
    assert toxic.min() > 0.9


def test_model_reproduces_the_exported_package_probabilities(model):
    # Values of alt-profanity-check 1.9.1's predict_prob, recorded when the asset was exported
    # (scripts/build_toxicity_model.py checks the export against the package the same way).
    got = model.predict(
        ["have a lovely day, thanks for the help", "shut up bitch", "", "you are such a stupid moron"]
    )
    assert got == pytest.approx([0.00597119, 0.99999995, 0.03637575, 0.99999913], abs=1e-6)


def test_model_tokenises_like_the_vectorizer(model):
    # Lower-cased, 2+ word characters, stop words and unknown tokens dropped, order kept.
    assert model.term_ids("The IDIOT!! a b") == model.term_ids("idiot")
    assert model.term_ids("zzqxv qqzzv") == []
    assert len(model.term_ids("idiot idiot")) == 2


def test_batched_scoring_equals_one_at_a_time(model):
    texts = [*CLEAN_LINES, *TOXIC_LINES, ""]
    batched = model.predict(texts)
    single = np.array([model.predict([t])[0] for t in texts])
    assert np.allclose(batched, single, atol=1e-12)


# --- segmentation and aggregation ------------------------------------------------------------------


def test_lines_are_segments_and_long_lines_split_into_sentences(model):
    s = ToxicityScorer(model, ToxicityConfig(max_segment_terms=20))
    assert len(s.segments(CLEAN_PAGE)) == len(CLEAN_LINES)
    one_line = " ".join(CLEAN_LINES)  # > 20 terms: one segment per sentence
    assert len(s.segments(one_line)) == len(CLEAN_LINES)
    assert s.segments(CLEAN_LINES[0]) == [model.term_ids(CLEAN_LINES[0])]
    # A short line keeps its sentences together.
    assert len(s.segments("You are late. The library closes at six.")) == 1
    assert s.segments("\n\n   \n") == []


def test_long_sentences_are_chunked_by_terms(model):
    s = ToxicityScorer(model, ToxicityConfig(max_segment_terms=4))
    segs = s.segments("library budget council hearing volunteers reading program parking evening")
    assert [len(x) for x in segs] == [4, 4, 1]


def test_one_pass_tokenisation_matches_the_classifier(model):
    text = "Don't STOP: it's 2024... a_b x y-z naïve café\tend. Über! e.g. 3.14 ok?"
    s = ToxicityScorer(model, ToxicityConfig(max_segment_terms=10_000, clean_text=False))
    assert [i for i in s.marked_ids(text) if i >= 0] == model.term_ids(text)


def test_batch_scores_equal_the_scalar_aggregation(model):
    s = ToxicityScorer(model, ToxicityConfig(max_segment_terms=8))
    texts = [MIXED_PAGE, "", RANT, "zzqxv", CLEAN_PAGE, TOXIC_LINES[1]]
    batched = s.score_many(texts)
    for text, got in zip(texts, batched, strict=True):
        segs = s.segments(text)
        if not segs:
            assert got is None
            continue
        _, _, _, seg_words, doc_words = s.segment_batch([text])
        expected = aggregate(model.score_ids(segs), seg_words, 0.5, float(doc_words[0]))
        assert got == pytest.approx(expected, abs=1e-12)
        assert s.score(text) == pytest.approx(got, abs=1e-12)


def test_aggregate_balances_peak_and_prevalence():
    probs, weights = np.array([0.9, 0.1, 0.1, 0.1]), np.array([1.0, 1.0, 1.0, 1.0])
    assert aggregate(probs, weights, 1.0) == pytest.approx(0.9)
    assert aggregate(probs, weights, 0.0) == pytest.approx(0.3)
    assert aggregate(probs, weights, 0.5) == pytest.approx((0.9 * 0.3) ** 0.5)
    assert aggregate(np.zeros(0), np.zeros(0), 0.5) == 0.0


def test_rant_scores_above_mixed_page_above_clean_page(scorer):
    clean, mixed, rant = scorer.score_many([CLEAN_PAGE, MIXED_PAGE, RANT])
    assert rant > 0.9
    assert 0.2 < mixed < 0.7
    assert clean < 0.1
    # The more of the page is toxic, the higher its score.
    half = "\n".join([*CLEAN_LINES[:3], *TOXIC_LINES])
    assert mixed < scorer.score(half) < rant


def test_a_tweet_scores_exactly_the_model_probability(scorer, model):
    tweet = "@someone shut up bitch, nobody asked you"
    assert scorer.score(tweet) == pytest.approx(float(model.predict([tweet])[0]))


def test_text_without_vocabulary_terms_has_no_score(scorer):
    assert scorer.score_many(["", "zzqxv", CLEAN_PAGE])[:2] == [None, None]


# --- the stage -------------------------------------------------------------------------------------


def test_stage_tags_without_rejecting_by_default():
    stage = ToxicityTagger()
    stage.ready()
    docs = [doc(CLEAN_PAGE, "clean"), doc(RANT, "rant"), doc("", "empty")]
    out = stage.process_batch(docs)
    assert all(isinstance(d, Document) for d in out)
    scores = {d.id: d.toxicity_score for d in out}
    assert scores["rant"] > 0.9 > 0.1 > scores["clean"]
    assert scores["empty"] == 0.0
    assert all(d.toxicity_score is None for d in docs)  # inputs untouched


def test_stage_filter_rejects_above_threshold_only():
    stage = ToxicityTagger(ToxicityConfig(filter=True, threshold=0.7))
    stage.ready()
    clean, mixed, rant = stage.process_batch([doc(CLEAN_PAGE), doc(MIXED_PAGE), doc(RANT)])
    assert isinstance(rant, RejectedDocument) and rant.rejection.reason == "toxicity:above_threshold"
    assert rant.rejection.detail.startswith("toxicity_score=")
    assert rant.doc.toxicity_score > 0.9  # rejected/ keeps the score that got the document rejected
    assert isinstance(clean, Document) and isinstance(mixed, Document)
    assert stage.process(doc(CLEAN_PAGE)).toxicity_score == clean.toxicity_score


def test_stage_pickles_without_the_model():
    stage = ToxicityTagger()
    stage.ready()
    blob = pickle.dumps(stage)
    assert len(blob) < 2000  # the 15k-term model is rebuilt in setup() on each worker
    clone = pickle.loads(blob)
    clone.ready()
    assert clone.process(doc(RANT)).toxicity_score > 0.9


# --- config and wiring -----------------------------------------------------------------------------


def test_config_defaults_tag_only_and_overrides_validate():
    cfg = Config()
    assert cfg.toxicity.enabled and not cfg.toxicity.filter
    cfg = load_config(overrides=["toxicity.filter=true", "toxicity.threshold=0.5"])
    assert cfg.toxicity.filter and cfg.toxicity.threshold == 0.5
    with pytest.raises(ValueError, match="toxicity.threshold"):
        load_config(overrides=["toxicity.threshold=1.5"])
    with pytest.raises(ValueError, match="toxicity.treshold"):
        load_config(overrides=["toxicity.treshold=0.5"])


def test_toxicity_follows_every_filter_and_can_be_disabled():
    # only the bias stage (tagging only, it reads the same classifier) comes after it
    assert [row.name for row in STAGES][-2:] == ["toxicity", "bias"]
    names = [n for n, _ in enabled_stages(load_config())]
    assert names[-2:] == ["toxicity", "bias"]
    assert "toxicity" not in [n for n, _ in enabled_stages(load_config(overrides=["toxicity.enabled=false"]))]


# --- the transform ---------------------------------------------------------------------------------


def test_transform_routes_kept_and_rejected(test_pipeline):
    import apache_beam as beam

    docs = [doc(CLEAN_PAGE, "clean"), doc(MIXED_PAGE, "mixed"), doc(RANT, "rant")]
    with test_pipeline as p:
        kept, rejected = p | beam.Create(docs) | TagToxicity(ToxicityConfig(filter=True, threshold=0.7))
        assert_that(
            kept | "KeptIds" >> beam.Map(lambda d: (d.id, d.toxicity_score is not None)),
            equal_to([("clean", True), ("mixed", True)]),
            label="kept",
        )
        assert_that(
            rejected
            | "RejIds" >> beam.Map(lambda r: (r.doc.id, r.rejection.reason, r.doc.toxicity_score > 0.9)),
            equal_to([("rant", "toxicity:above_threshold", True)]),
            label="rejected",
        )


def test_embedded_sample_exercises_every_outcome():
    rows = [json.loads(line) for line in (SAMPLE_DIR / "toxicity.jsonl").open(encoding="utf-8")]
    stage = ToxicityTagger(ToxicityConfig(filter=True))
    stage.ready()
    out = {r["id"]: stage.process(replace(doc(r["text"]), id=r["id"])) for r in rows}
    rejected = {i for i, o in out.items() if isinstance(o, RejectedDocument)}
    assert rejected == {r["id"] for r in rows if r["expect"] == "rejected"}
    for r in rows:
        if r["expect"] == "no_terms":
            assert out[r["id"]].toxicity_score == 0.0


# --- coverage: lines the English model cannot read -------------------------------------------------

GERMAN_PAGE = "\n".join(
    [
        "Die Stadtbibliothek hat ab Montag wieder länger geöffnet.",
        "Fast alle Leserinnen und Leser begrüßen die neuen Öffnungszeiten.",
        "Die Ausleihe von Hörbüchern bleibt weiterhin kostenlos.",
    ]
)


def test_foreign_lines_are_not_scored_by_stray_english_terms(model):
    # "die", "fast", "hat" are English terms; alone they would decide each German line's score.
    assert ToxicityScorer(model).score(GERMAN_PAGE) is None
    assert ToxicityScorer(model, ToxicityConfig(min_coverage=0.0)).score(GERMAN_PAGE) is not None


def test_an_english_line_inside_a_foreign_page_is_still_scored(model):
    scorer = ToxicityScorer(model)
    page = GERMAN_PAGE + "\n" + TOXIC_LINES[2]
    # Flagged by its worst line, tempered by how little of the page it is (German words count too).
    assert 0.5 < scorer.score(page) < scorer.score(TOXIC_LINES[2])
    assert scorer.score(GERMAN_PAGE + "\nDie Preise: fast alles wie gehabt, und die Kasse ist offen.") is None


def test_english_with_slang_and_names_stays_readable(model):
    scorer = ToxicityScorer(model)
    assert scorer.score("lmao Jaylen said that fool is trippin, shut up bitch") > 0.9


def test_language_stage_english_verdict_overrides_coverage():
    stage = ToxicityTagger()
    stage.ready()
    hashtags = "#LiberalLies #WalkAwayNow #DrainTheSwampToday #Qwertyish idiots"
    unknown, english = stage.process_batch([doc(hashtags, "a"), replace(doc(hashtags, "b"), lang="en")])
    assert unknown.toxicity_score == 0.0  # mostly unknown words: not read as English
    assert english.toxicity_score > 0.5
