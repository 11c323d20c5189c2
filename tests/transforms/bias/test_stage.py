"""The bias tagger and stage: counts, case, toxic lines, counters, and the transform."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.report.bias import bias_summary
from corpusforge.schemas.config import Config
from corpusforge.schemas.records import Document, document_row
from corpusforge.transforms.bias.lexicon import Lexicon
from corpusforge.transforms.bias.stage import BiasTagger, TagBiasSignals, _holder, signal_counts, words_of
from corpusforge.transforms.toxicity.model import LinearToxicityModel

TOXIC = "you fucking stupid bitch, shut up you worthless idiot"


@pytest.fixture(scope="module")
def tagger() -> BiasTagger:
    return BiasTagger(Lexicon.load(), LinearToxicityModel.load(), threshold=0.7)


def test_words_are_case_insensitive_and_split_at_punctuation():
    assert words_of("She’s HIS—Friend, (the) non-binary") == [
        b"she",
        b"s",
        b"his",
        b"friend",
        b"the",
        b"non",
        b"binary",
    ]


def test_counts_gendered_words_apart_and_identity_mentions(tagger):
    (s,) = tagger.tag_many(["SHE told him. The other Muslims, hello there.\nOld People and Non-Binary teens"])
    assert (s.female, s.male) == (1, 1)  # "the", "other", "hello", "there" hold no "he"
    assert s.mentions == {"age": 2, "gender_sexuality": 1, "religion": 1}
    assert s.words == 14
    assert s.toxic_mentions == {}


def test_mentions_in_a_toxic_line_are_counted_as_toxic(tagger):
    (s,) = tagger.tag_many([f"My grandmother is a muslim woman.\n{TOXIC}, she said to the muslim"])
    assert s.mentions["religion"] == 2 and s.female == 3
    # only the second line is toxic: one muslim and one "she" in it
    assert s.toxic_mentions == {"female": 1, "religion": 1}


def test_masked_profanity_is_read_as_the_toxicity_stage_reads_it(tagger):
    (s,) = tagger.tag_many(["f*cking stupid b*tch, the muslims are worthless idiots"])
    assert s.toxic_mentions == {"religion": 1}


def test_long_lines_are_scored_by_sentence(tagger):
    clean = " ".join(["The weather in the valley was calm and pleasant for the whole week."] * 8)
    (s,) = tagger.tag_many([f"{clean} She met a jewish friend there. {TOXIC}, said the muslim."])
    assert s.mentions == {"religion": 2}
    assert s.toxic_mentions == {"religion": 1}  # the jewish friend's sentence is not toxic


def test_without_the_classifier_nothing_is_toxic():
    t = BiasTagger(Lexicon.load(), None)
    (s,) = t.tag_many([f"{TOXIC} muslim"])
    assert s.mentions == {"religion": 1} and s.toxic_mentions == {}


def test_empty_text(tagger):
    (s,) = tagger.tag_many([""])
    assert (s.words, s.female, s.male, s.mentions, s.toxic_mentions) == (0, 0, 0, {}, {})


def test_counters_and_stats_section(tagger):
    tagged = tagger.tag_many(["she and she and he", f"{TOXIC} muslim"])
    counters = dict(signal_counts(tagged)) | dict(
        signal_counts(tagger.tag_many(["her muslim muslim"]), "rejected_records:")
    )
    section = bias_summary(counters)
    kept, before = section["kept"], section["before_filtering"]
    assert kept["documents"] == 2 and before["documents"] == 3
    assert kept["female_male_ratio"] == 2.0 and before["female_male_ratio"] == 3.0
    assert kept["toxic_share"]["religion"] == 1.0 and before["toxic_share"]["religion"] == pytest.approx(
        1 / 3, abs=1e-4
    )
    assert before["per_million_words"]["religion"] == pytest.approx(3e6 / before["words"], rel=1e-3)
    assert bias_summary({}) is None


def test_stage_tags_every_document_and_rows_are_arrow_ready(test_pipeline):
    import pyarrow as pa

    from corpusforge.schemas.arrow import document_schema

    docs = [Document(id=str(i), text=t) for i, t in enumerate(["she said", "the muslim man", ""])]
    stage = TagBiasSignals(Config().bias, Config().toxicity)
    with test_pipeline as p:
        kept, rejected = p | beam.Create(docs) | stage

        def check(out):
            assert sorted(d.id for d in out) == ["0", "1", "2"]
            by_id = {d.id: d.bias for d in out}
            assert by_id["0"].female == 1 and by_id["1"].male == 1 and by_id["1"].mentions == {"religion": 1}
            pa.Table.from_pylist([document_row(d) for d in out], schema=document_schema())

        assert_that(kept, check)
        assert_that(rejected, equal_to([]), label="none rejected")


def test_holder_is_not_pickled_with_its_model():
    import pickle

    h = _holder(Config().bias, Config().toxicity)
    _ = h.tagger
    assert pickle.loads(pickle.dumps(h))._tagger is None
