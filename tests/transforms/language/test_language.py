"""Language identification: determinism, sampling, reasons; and both stages as Beam transforms."""

from __future__ import annotations

import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.pipelines.stages import enabled_stages
from corpusforge.schemas.config import LanguageConfig, QualityConfig, load_config
from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.language.stage import (
    IdentifyLanguage,
    LanguageDetector,
    LanguageFilter,
    sample_text,
)
from corpusforge.transforms.quality.stage import FilterQuality, QualityFilter
from tests.helpers import SAMPLE_DIR

EN = (
    "The committee met on Tuesday to discuss the new budget for the public library. Members agreed that "
    "the reading room needs better lighting and that the children's section should open earlier on weekends."
)
DE = (
    "Der Ausschuss traf sich am Dienstag, um über den neuen Haushalt der Stadtbibliothek zu sprechen. Die "
    "Mitglieder waren sich einig, dass der Lesesaal eine bessere Beleuchtung braucht."
)
ES = (
    "El comité se reunió el martes para hablar del nuevo presupuesto de la biblioteca pública. Los miembros "
    "acordaron que la sala de lectura necesita una mejor iluminación."
)


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    d = LanguageDetector(LanguageConfig(method="naive_bayes"))
    d.ready()
    return d


def test_detects_common_languages(detector):
    assert detector.detect(EN)[0] == "en"
    assert detector.detect(DE)[0] == "de"
    assert detector.detect(ES)[0] == "es"
    lang, score = detector.detect(EN)
    assert 0.9 < score <= 1.0


def test_same_answer_whatever_the_order_or_instance(detector):
    texts = [EN, DE, ES, "Mixed text with some Deutsch und ein bisschen español, pero no mucho."]
    first = [detector.detect(t) for t in texts]
    other = LanguageDetector(LanguageConfig(method="naive_bayes"))
    other.ready()
    second = [other.detect(t) for t in reversed(texts)][::-1]
    assert first == second
    again = pickle.loads(pickle.dumps(other))  # a worker gets a pickled copy without the profiles
    assert again._factory is None
    assert [again.detect(t) for t in texts] == first


def test_sample_is_bounded_and_spans_the_text():
    text = " ".join(f"w{i:05d}" for i in range(20000))
    sample = sample_text(text, 1500, 3)
    assert len(sample) <= 1500 + 2
    assert "w00000" in sample and "w19999" in sample and "w10000" not in sample[:600]
    assert sample_text("short text", 1500, 3) == "short text"


def test_language_reasons_and_annotations():
    stage = LanguageFilter(LanguageConfig(keep=["en"], min_score=0.65))
    stage.ready()
    kept = stage.process(Document(id="en", text=EN))
    assert isinstance(kept, Document) and kept.lang == "en" and kept.lang_score > 0.9
    de = stage.process(Document(id="de", text=DE))
    assert isinstance(de, RejectedDocument) and de.rejection.reason == "language:de" and de.doc.lang == "de"
    unk = stage.process(Document(id="n", text="12345 67890 !!! ---"))
    assert isinstance(unk, RejectedDocument) and unk.rejection.reason == "language:unknown"
    strict = LanguageFilter(LanguageConfig.model_construct(keep=["en"], min_score=1.01))  # above any score
    strict.ready()
    low = strict.process(Document(id="en", text=EN))
    assert isinstance(low, RejectedDocument) and low.rejection.reason == "language:en"


def test_keep_empty_keeps_every_language_but_annotates():
    stage = LanguageFilter(LanguageConfig(keep=[]))
    stage.ready()
    out = stage.process(Document(id="de", text=DE))
    assert isinstance(out, Document) and out.lang == "de"


def test_stages_as_transforms(test_pipeline):
    article = "\n".join(
        [
            EN,
            "A teacher from the primary school asked whether classes could visit the archive once a month.",
            "The librarian said that the old maps would first need new frames, which the town cannot yet afford.",
            "After a short vote, the members chose to ask local businesses to sponsor the repairs this spring.",
            "The mayor thanked everyone for coming, and the meeting ended shortly before nine in the evening.",
        ]
    )
    docs = [
        Document(id="en", text=article),
        Document(id="de", text=DE),
        Document(id="short", text="Click here now."),
    ]
    with test_pipeline as p:
        pcoll = p | beam.Create(docs)
        kept_l, rej_l = pcoll | IdentifyLanguage(LanguageConfig())
        kept_q, rej_q = kept_l | FilterQuality(QualityConfig())
        assert_that(
            kept_q | "KeptIds" >> beam.Map(lambda d: (d.id, d.lang, d.quality_signals is not None)),
            equal_to([("en", "en", True)]),
            label="kept",
        )
        rejected = (rej_l, rej_q) | beam.Flatten()
        assert_that(
            rejected | beam.Map(lambda r: (r.doc.id, r.rejection.reason)),
            equal_to([("de", "language:de"), ("short", "quality:gopher_quality.min_doc_words")]),
            label="rejected",
        )


def test_config_builds_stages_in_data_flow_order_and_switches_off():
    names = [n for n, _ in enabled_stages(load_config())]
    assert names.index("normalize") < names.index("language") < names.index("quality")
    off = [
        n
        for n, _ in enabled_stages(load_config(overrides=["language.enabled=false", "quality.enabled=false"]))
    ]
    assert "language" not in off and "quality" not in off


def test_sample_exercises_the_reasons():
    recs = [json.loads(line) for line in (SAMPLE_DIR / "langquality.jsonl").read_text().splitlines()]
    lang = LanguageFilter()
    qual = QualityFilter()
    lang.ready()
    qual.ready()
    reasons = {}
    for r in recs:
        out = lang.process(Document(id=r["id"], text=r["text"]))
        if not isinstance(out, RejectedDocument):
            out = qual.process(out)
        reasons[r["id"]] = out.rejection.reason if isinstance(out, RejectedDocument) else "kept"
    assert reasons["lq-clean-en"] == "kept"
    assert reasons["lq-german"] == "language:de" and reasons["lq-french"] == "language:fr"
    assert reasons["lq-digits"] == "language:unknown"
    assert reasons["lq-lorem"] == "quality:c4.lorem_ipsum"
    assert reasons["lq-repeated-line"].startswith("quality:gopher_repetition.")
    assert reasons["lq-mojibake"] == "quality:extra.mojibake_ratio"
    assert reasons["lq-nav"] == "quality:c4.min_sentences"
    assert reasons["lq-numbers"] == "quality:gopher_quality.alpha_words_ratio"
    assert reasons["lq-list"].startswith("quality:fineweb.")  # an ingredient list: lines without punctuation


def _langdetect_posterior(text: str) -> dict[str, float]:
    """The naive Bayes posterior written from langdetect's own pieces: its Detector prepares the
    text and lists the n-grams (``_extract_ngrams``), its profiles give p(n-gram | language)."""
    import math

    from langdetect.detector import Detector

    from corpusforge.transforms.language.stage import build_factory

    factory = build_factory(0)
    det = Detector(factory)
    det.append(text)
    det.cleaning_text()
    grams = det._extract_ngrams()
    weight = det.ALPHA_DEFAULT / det.BASE_FREQ
    logs = [
        sum(math.log(weight + factory.word_lang_prob_map[g][k]) for g in grams)
        for k in range(len(det.langlist))
    ]
    top = max(logs)
    total = sum(math.exp(v - top) for v in logs)
    return {lang.split("-")[0]: math.exp(v - top) / total for lang, v in zip(det.langlist, logs, strict=True)}


@pytest.mark.parametrize("text", [EN, DE, ES, "Ein kurzer Satz. A short one too. Y uno más, por favor."])
def test_naive_bayes_computes_langdetects_posterior_exactly(detector, text):
    expected = _langdetect_posterior(text)
    best = max(expected, key=expected.get)
    lang, score = detector.detect(text)
    assert lang == best
    assert score == pytest.approx(expected[best], rel=1e-9, abs=1e-12)


def test_mostly_cyrillic_text_drops_its_latin_letters_as_langdetect_does(detector):
    text = "Москва является столицей России и крупнейшим городом страны. Moscow is big."
    expected = _langdetect_posterior(text)
    assert detector.detect(text) == (max(expected, key=expected.get), pytest.approx(max(expected.values())))
    assert detector.detect(text)[0] == "ru"


def test_the_sampling_walk_is_still_available_and_agrees_on_clear_text():
    sampling = LanguageDetector(LanguageConfig(method="sampling"))
    assert [sampling.detect(t)[0] for t in (EN, DE, ES)] == ["en", "de", "es"]
    with pytest.raises(ValueError, match="unknown language detection method 'fast'"):
        LanguageDetector(LanguageConfig.model_construct(method="fast"))


def test_config_names_a_bad_method():
    from corpusforge.schemas.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="language.method"):
        load_config(None, ["language.method=fast"])


def test_naive_bayes_answers_do_not_depend_on_the_word_memo(monkeypatch):
    from corpusforge.transforms.language import naive_bayes

    monkeypatch.setattr(naive_bayes, "_ngrams", None)  # the memo is the pure-Python path's
    texts = [EN, DE, ES, EN + " " + DE]
    fresh = naive_bayes.NaiveBayesLanguageDetector()
    expected = [fresh.detect(t) for t in texts]
    monkeypatch.setattr(naive_bayes, "_WORD_ROWS_MAX", 40)  # smaller than one text's words: cleared often
    small = naive_bayes.NaiveBayesLanguageDetector()
    assert [small.detect(t) for t in texts + texts] == expected + expected
    assert len(small._word_rows) <= max(40, len(set((EN + " " + DE).split())) + 2)
