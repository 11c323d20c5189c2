"""PII scrubbing logic (no Beam): recognizers, over-scrubbing guards, overlaps, chunking, offline."""

from __future__ import annotations

import pickle
import socket

import pytest

from corpusforge.schemas.config import ConfigError, PiiConfig, load_config
from corpusforge.schemas.records import Document
from corpusforge.transforms.pii.engine import PiiScrubber, Span, resolve_overlaps
from corpusforge.transforms.pii.recognizers import card_network_ok, iban_ok, luhn_ok
from corpusforge.transforms.pii.stage import PiiRedactor, ScrubPII


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    s = PiiScrubber()
    s.ready()
    return s


# --- detection: each type, including the formats presidio's stock recognizers miss -------------


@pytest.mark.parametrize(
    "text, value, entity",
    [
        ("Write to Jane.Doe+news@example.co.uk today.", "Jane.Doe+news@example.co.uk", "EMAIL_ADDRESS"),
        ("Maestro 12 digits: 503867297114 thanks", "503867297114", "CREDIT_CARD"),
        ("Visa 19 digits 4652943034623769885.", "4652943034623769885", "CREDIT_CARD"),
        ("Mastercard 2-series 2720418695252980 expired", "2720418695252980", "CREDIT_CARD"),
        ("JCB 15 digits 213161594239298 please", "213161594239298", "CREDIT_CARD"),
        ("grouped 4111 1111 1111 1111 works", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("Server 195.206.132.199 is down", "195.206.132.199", "IP_ADDRESS"),
        ("v6 host 2001:db8:85a3::8a2e:370:7334 replied", "2001:db8:85a3::8a2e:370:7334", "IP_ADDRESS"),
        ("pay to gb42nawi04454264788619 now", "gb42nawi04454264788619", "IBAN_CODE"),
        ("IBAN DE89 3704 0044 0532 0130 00 bitte", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("His social security number is 474-49-7577", "474-49-7577", "US_SSN"),
        ("SSN: 474 49 7577", "474 49 7577", "US_SSN"),
        ("Desk: +41 (0)85 806 98 67", "+41 (0)85 806 98 67", "PHONE_NUMBER"),
        ("Fax: 463-612-6138x036\n", "463-612-6138x036", "PHONE_NUMBER"),
        ("call (579)888-3058 now", "(579)888-3058", "PHONE_NUMBER"),
        ("Personal Info:\nPhone:\n780 6326\n", "780 6326", "PHONE_NUMBER"),
        ("They're not answering at 72 128 827", "72 128 827", "PHONE_NUMBER"),
        ("085 175 7641-Office", "085 175 7641", "PHONE_NUMBER"),
        ("Can someone call me on 01.84.17.61.18? Thanks", "01.84.17.61.18", "PHONE_NUMBER"),
        ("Telefon: 0732/10620883", "0732/10620883", "PHONE_NUMBER"),
    ],
)
def test_detects_and_replaces_with_typed_placeholder(scrubber, text, value, entity):
    res = scrubber.scrub(text)
    assert value not in res.text
    assert f"<{entity}>" in res.text
    assert res.counts == {entity: 1}


@pytest.mark.parametrize(
    "text",
    [
        "The meeting on 2024-03-15 at 14:30 moved to 03/22/2024; also 15.03.2024 and 1992-02-08 20:15:24.",
        "Founded in 1998; revenue grew from $1,234,567.89 in 2019-2020 to €2.345.678 and 12 345 678 units.",
        "ISBN 978-0-306-40615-7, ISBN-13: 9780306406157 and ISBN 0-306-40615-2.",
        "Upgrade to version 1.2.3.4 or v10.0.19041.1; Python 3.11.4 and node 18.17.1.",
        "std::vector<int> v; foo::bar::baz(); a::b; Foo::Bar(); self::add(); dead::beef; x :: Int",
        "See https://example.com/item/4111111111111111?ref=5403926876 and https://x.org/p/198-765-4321",
        "Page numbers 123-145, population 8,336,817, ZIP 94103-1234, call it 2019/20.",
        "Timestamp 1700000000000, order 12345678901234, 2023-11-08T20:15:24Z, 1 234 567 people.",
    ],
)
def test_dates_prices_isbns_versions_code_and_urls_survive(scrubber, text):
    res = scrubber.scrub(text)
    assert res.text == text, res.spans
    assert res.counts == {}


def test_ambiguous_digit_groups_need_phone_context(scrubber):
    assert scrubber.scrub("We counted 780 6326 birds.").text == "We counted 780 6326 birds."
    assert scrubber.scrub("Mobile: 780 6326").text == "Mobile: <PHONE_NUMBER>"
    count = "The number of visitors rose to 12 345 678 this year."
    assert scrubber.scrub(count).text == count
    assert scrubber.scrub("My phone number is 516 466 638").counts == {"PHONE_NUMBER": 1}


def test_context_does_not_leak_between_batched_documents(scrubber):
    a = "Please call me, my phone is broken."
    b = "780 6326 birds were counted."
    out = scrubber.scrub_batch([a, b])
    assert out[1].text == b


def test_invalid_checksums_are_not_pii(scrubber):
    text = "card 4111111111111112, iban GB00XDHF05610830433955, ssn 000-12-3456 and 666-12-3456"
    assert scrubber.scrub(text).text == text


def test_validators():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_network_ok("060426070011") and not card_network_ok("9780306406157")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


# --- overlaps, placeholders, counts -------------------------------------------------------------


def test_overlaps_resolved_by_score_then_length():
    spans = [
        Span("PHONE_NUMBER", 0, 12, 0.7),
        Span("US_SSN", 0, 11, 0.85),
        Span("EMAIL_ADDRESS", 20, 30, 0.5),
        Span("IP_ADDRESS", 18, 32, 0.5),
    ]
    kept = resolve_overlaps(spans)
    assert [s.entity for s in kept] == ["US_SSN", "IP_ADDRESS"]


def test_several_types_in_one_document_are_counted(scrubber):
    text = "Mail a@example.com or b@example.org, card 4111111111111111, ip 10.0.0.1."
    res = scrubber.scrub(text)
    assert res.counts == {"EMAIL_ADDRESS": 2, "CREDIT_CARD": 1, "IP_ADDRESS": 1}
    assert res.text == "Mail <EMAIL_ADDRESS> or <EMAIL_ADDRESS>, card <CREDIT_CARD>, ip <IP_ADDRESS>."


def test_configurable_placeholder_entities_and_threshold():
    s = PiiScrubber(PiiConfig(entities=["EMAIL_ADDRESS"], placeholder="[{entity}]"))
    out = s.scrub("a@example.com 4111111111111111")
    assert out.text == "[EMAIL_ADDRESS] 4111111111111111"
    low = PiiScrubber(PiiConfig(entities=["PHONE_NUMBER"], score_threshold=0.2))
    assert low.scrub("We counted 780 6326 birds.").counts == {"PHONE_NUMBER": 1}


# --- chunking and gates -------------------------------------------------------------------------


def test_long_documents_lose_no_span_at_chunk_borders():
    values = [f"4111 1111 1111 1111 and 10.0.{i}.1 and user{i}@example.com" for i in range(150)]
    text = " filler words here. ".join(values)
    small = PiiScrubber(PiiConfig(window_chars=32, max_chunk_chars=512))
    big = PiiScrubber(PiiConfig(window_chars=32, max_chunk_chars=10**7))
    a, b = small.scrub(text), big.scrub(text)
    assert a.text == b.text
    assert a.counts == {"CREDIT_CARD": 150, "IP_ADDRESS": 150, "EMAIL_ADDRESS": 150}
    assert "@" not in a.text and "1111" not in a.text


def test_text_without_candidates_never_reaches_the_analyzer(scrubber, monkeypatch):
    calls = []
    real = scrubber.analyzer.analyze
    monkeypatch.setattr(scrubber.analyzer, "analyze", lambda **kw: calls.append(kw) or real(**kw))
    scrubber.scrub_batch(["Plain prose, no digits at all.", "Published in 2024 for $30."])
    assert calls == []
    scrubber.scrub("mail me: x@example.com")
    assert len(calls) == 1 and calls[0]["entities"] == ["EMAIL_ADDRESS"]
    assert len(calls[0]["text"]) < 100


# --- offline, pickling, stage -------------------------------------------------------------------


def test_engine_builds_and_runs_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    s = PiiScrubber()
    s.ready()
    assert s.scrub("write to someone@newdomain.example.org").counts == {"EMAIL_ADDRESS": 1}


def test_missing_ner_model_turns_person_off_not_the_run(caplog):
    s = PiiScrubber(PiiConfig(entities=["EMAIL_ADDRESS", "PERSON"], ner_model="no_such_spacy_model"))
    s.ready()
    assert s.ner_entities == ()
    assert s.scrub("John Smith, john@example.com").text == "John Smith, <EMAIL_ADDRESS>"
    with caplog.at_level("INFO"):
        stage = ScrubPII(PiiConfig(entities=["EMAIL_ADDRESS", "PERSON"], ner_model=None))
    assert "PERSON and LOCATION detection is off" in caplog.text
    assert stage.logic.scrubber.entities == ("EMAIL_ADDRESS",)
    caplog.clear()
    with caplog.at_level("WARNING"):
        ScrubPII(PiiConfig(ner_model="no_such_spacy_model"))
    assert "'no_such_spacy_model' is not an installed" in caplog.text


def test_stage_never_rejects_and_is_picklable_without_engine():
    stage = ScrubPII(PiiConfig()).logic
    stage.ready()
    blob = pickle.dumps(stage)
    assert b"AnalyzerEngine" not in blob
    clone: PiiRedactor = pickle.loads(blob)
    clone.ready()
    docs = [Document(id="1", text="ip 10.1.2.3"), Document(id="2", text="nothing here")]
    out = clone.process_batch(docs)
    assert [d.text for d in out] == ["ip <IP_ADDRESS>", "nothing here"]
    assert [d.pii_counts for d in out] == [{"IP_ADDRESS": 1}, {}]
    assert docs[0].text == "ip 10.1.2.3"  # input untouched


def test_config_validation():
    cfg = load_config(overrides=["pii.entities=[EMAIL_ADDRESS]", "pii.score_threshold=0.4"])
    assert cfg.pii.entities == ["EMAIL_ADDRESS"] and cfg.pii.score_threshold == 0.4
    with pytest.raises(ConfigError, match="pii.entities"):
        load_config(overrides=["pii.entities=[PASSPORT]"])
    with pytest.raises(ConfigError, match="pii.placeholder"):
        load_config(overrides=["pii.placeholder=<{type}>"])
    with pytest.raises(ConfigError, match="pii.colour"):
        load_config(overrides=["pii.colour=red"])


def test_default_yaml_documents_every_pii_default():
    import yaml

    from corpusforge.schemas.config import default_config_path

    documented = yaml.safe_load(default_config_path().read_text())["pii"]
    assert documented == PiiConfig().model_dump()


def test_installed_model_directory_enables_ner_without_download(tmp_path, monkeypatch):
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank_en")

    def no_download(*args, **kwargs):
        raise AssertionError("download attempted")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    s = PiiScrubber(
        PiiConfig(
            entities=["EMAIL_ADDRESS", "PERSON"], ner_model=str(tmp_path / "blank_en"), max_chunk_chars=600
        )
    )
    s.ready()
    assert s.ner_entities == ("PERSON",)
    res = s.scrub("Jane Roe wrote this. " * 100 + "mail: jane@example.com")
    assert res.counts == {"EMAIL_ADDRESS": 1}  # a blank model has no NER: nothing else found
    assert res.analyzed_chars >= 2000  # NER reads the whole document, in bounded chunks
    stage = ScrubPII(PiiConfig(ner_model=str(tmp_path / "blank_en")))
    assert stage.logic.scrubber.entities[-2:] == ("PERSON", "LOCATION")  # naming the model turns them on
