"""Validation: every kind of bad record gets its reason; good records become documents."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.schemas.records import Document, RejectedDocument
from corpusforge.transforms.io.validate import RecordParser, Validate, derive_id

PARSER = RecordParser(max_chars=100)


def reason(payload):
    out = PARSER.parse("in.jsonl", 0, payload)
    return out.rejection.reason if isinstance(out, RejectedDocument) else None


def test_good_record_keeps_fields_and_metadata_in_order():
    line = json.dumps({"id": "a1", "text": "Hello.", "url": "u", "source": "s", "z": 1, "a": [1, 2]}).encode()
    doc = PARSER.parse("in.jsonl", 10, line)
    assert isinstance(doc, Document)
    assert (doc.id, doc.text, doc.url, doc.source) == ("a1", "Hello.", "u", "s")
    assert doc.metadata == '{"z": 1, "a": [1, 2]}'
    assert (doc.input_path, doc.input_offset) == ("in.jsonl", 10)


def test_each_invalid_reason():
    assert reason(b'{"text": "x"') == "invalid:bad_json"
    assert reason(b'["text"]') == "invalid:no_text"
    assert reason(b'{"body": "x"}') == "invalid:no_text"
    assert reason(b'{"text": null}') == "invalid:no_text"
    assert reason(b'{"text": ["x"]}') == "invalid:no_text"
    assert reason(b'{"text": "caf\xe9"}') == "invalid:bad_utf8"
    assert reason(b'{"text": "lone \\udc80 surrogate"}') == "invalid:bad_utf8"
    assert reason(b'{"text": ""}') == "invalid:empty"
    assert reason(b'{"text": " \\n\\t "}') == "invalid:empty"
    assert reason(json.dumps({"text": "x" * 101}).encode()) == "invalid:too_long"
    assert reason(json.dumps({"text": "x" * 100}).encode()) is None


def test_surrogate_pairs_written_as_escapes_are_fine():
    doc = PARSER.parse("in.jsonl", 0, b'{"text": "smile \\ud83d\\ude00"}')
    assert isinstance(doc, Document) and doc.text == "smile \U0001f600"


def test_rejected_record_keeps_the_raw_line_for_audit():
    out = PARSER.parse("in.jsonl", 7, b'{"id": "q", "text": oops}')
    assert out.doc.text == '{"id": "q", "text": oops}'
    assert out.doc.id == derive_id("in.jsonl", 7)


def test_missing_id_is_derived_from_path_and_position():
    a = PARSER.parse("dir/in.jsonl", 0, b'{"text": "x"}')
    b = PARSER.parse("dir/in.jsonl", 14, b'{"text": "x"}')
    c = PARSER.parse("other/in.jsonl", 0, b'{"text": "x"}')
    assert a.id == derive_id("dir/in.jsonl", 0)
    assert len({a.id, b.id, c.id}) == 3
    assert PARSER.parse("in.jsonl", 0, b'{"id": 12, "text": "x"}').id == "12"


def test_custom_field_names():
    parser = RecordParser(text_field="content", id_field="doc_id", source_field=None, url_field=None)
    doc = parser.parse("f", 0, b'{"doc_id": "d", "content": "words", "source": "kept in metadata"}')
    assert (doc.id, doc.text, doc.source) == ("d", "words", None)
    assert json.loads(doc.metadata) == {"source": "kept in metadata"}


def test_parquet_rows_with_binary_text():
    assert isinstance(PARSER.parse("f.parquet", 0, {"text": b"bytes ok"}), Document)
    assert PARSER.parse("f.parquet", 0, {"text": b"\xff"}).rejection.reason == "invalid:bad_utf8"


def test_duplicate_ids_keep_the_first_occurrence(test_pipeline):
    records = [
        ("b.jsonl", 0, b'{"id": "x", "text": "from b"}'),
        ("a.jsonl", 50, b'{"id": "x", "text": "from a, later"}'),
        ("a.jsonl", 0, b'{"id": "x", "text": "from a, first"}'),
        ("a.jsonl", 90, b'{"id": "y", "text": "unique"}'),
    ]
    with test_pipeline as p:
        kept, rejected = p | beam.Create(records) | Validate(RecordParser())
        assert_that(
            kept | "K" >> beam.Map(lambda d: (d.id, d.text)),
            equal_to([("x", "from a, first"), ("y", "unique")]),
            label="kept",
        )
        assert_that(
            rejected | "R" >> beam.Map(lambda r: (r.rejection.reason, r.doc.text, r.rejection.duplicate_of)),
            equal_to(
                [("invalid:duplicate_id", "from b", "x"), ("invalid:duplicate_id", "from a, later", "x")]
            ),
            label="rejected",
        )


def test_byte_order_mark_and_raw_control_characters_are_tolerated():
    doc = PARSER.parse("in.jsonl", 0, '\ufeff{"id": "b", "text": "after a BOM"}'.encode())
    assert isinstance(doc, Document) and doc.text == "after a BOM"
    doc = PARSER.parse("in.jsonl", 0, b'{"id": "t", "text": "raw\ttab and \x00 nul"}')
    assert isinstance(doc, Document) and doc.text == "raw\ttab and \x00 nul"


def test_hostile_json_is_rejected_not_raised():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert reason(deep) == "invalid:bad_json"
    assert reason(b'{"id": "x", "text": "ok"} trailing') == "invalid:bad_json"
    assert reason(b"null") == reason(b"42") == reason(b'"text"') == "invalid:no_text"
    assert reason(b'{"text": NaN}') == "invalid:no_text"


def test_float_ids_from_pandas_and_strict_json_metadata():
    doc = PARSER.parse("f.parquet", 3, {"id": 7.0, "text": "x", "score": float("nan"), "blob": b"\x00\xff"})
    assert doc.id == "7"
    assert json.loads(doc.metadata) == {"score": None, "blob": "AP8="}
    assert "NaN" not in doc.metadata


def test_lone_surrogate_rejection_keeps_the_record_id():
    out = PARSER.parse("in.jsonl", 5, b'{"id": "s1", "text": "bad \\udfff"}')
    assert out.rejection.reason == "invalid:bad_utf8" and out.doc.id == "s1"


def test_the_scan_decides_as_parse_does_on_every_kind_of_record():
    """``document_id`` (the duplicate-id scan's cheap parse) keeps exactly what ``parse`` keeps,
    with the same id: a record it wrongly kept would reject a real document as its duplicate."""
    lines = [
        b'{"text": "x"',
        b'["text"]',
        b'{"body": "x"}',
        b'{"text": null}',
        b'{"text": ["x"]}',
        b'{"text": "caf\xe9"}',
        b'{"text": "lone \\udc80 surrogate"}',
        b'{"id": "s1", "text": "ok", "meta": "lone \\udfff"}',
        b'{"text": ""}',
        b'{"text": " \\n\\t \\u3000"}',
        json.dumps({"text": "x" * 101}).encode(),
        json.dumps({"id": "edge", "text": "x" * 100}).encode(),
        b'{"text": "smile \\ud83d\\ude00"}',
        b'{"id": 12, "text": "x"}',
        b'{"id": 7.0, "text": "x"}',
        b'{"id": 7.5, "text": "x"}',
        b'{"id": true, "text": "x"}',
        b'{"id": "", "text": "x"}',
        '\ufeff{"id": "b", "text": "after a BOM"}'.encode(),
        b'{"id": "t", "text": "raw\ttab"}',
        b"[" * 5000 + b"]" * 5000,
        b"null",
        b'{"text": NaN}',
    ]
    rows = [{"text": b"bytes ok"}, {"text": b"\xff"}, {"id": 3, "text": "row"}, {"text": " "}, {"text": 5}]
    for position, payload in enumerate([*lines, *rows]):
        outcome = PARSER.parse("in.jsonl", position, payload)
        expected = None if isinstance(outcome, RejectedDocument) else outcome.id
        assert PARSER.document_id("in.jsonl", position, payload) == expected, payload[:60]
