from __future__ import annotations

import pyarrow as pa

from corpusforge.schemas import arrow
from corpusforge.schemas.records import (
    DOCUMENT_FIELDS,
    Document,
    Rejected,
    Rejection,
    document_row,
    rejected_row,
)


def test_document_schema_is_derived_from_the_dataclass():
    schema = arrow.document_schema()
    assert tuple(schema.names) == DOCUMENT_FIELDS
    assert schema.field("id").type == pa.string() and not schema.field("id").nullable
    assert schema.field("lang_score").type == pa.float32()
    assert schema.field("pii_counts").type == pa.map_(pa.string(), pa.int32())


def test_rejected_schema_is_document_plus_reason_and_nullable_text():
    schema = arrow.rejected_schema()
    assert schema.names[: len(DOCUMENT_FIELDS)] == list(DOCUMENT_FIELDS)
    assert {"reason", "stage", "detail", "duplicate_of"} <= set(schema.names)
    assert schema.field("text").nullable


def test_sequence_schema_uses_int32_ids():
    assert arrow.sequence_schema().field("input_ids").type == pa.list_(pa.int32())


def test_rows_fit_their_schemas():
    doc = Document(id="a", text="t", pii_counts={"EMAIL_ADDRESS": 2}, lang="en", lang_score=0.9)
    pa.Table.from_pylist([document_row(doc)], schema=arrow.document_schema())
    rej = Rejected(doc, Rejection("quality:x.y", "quality"))
    table = pa.Table.from_pylist([rejected_row(rej, include_text=False)], schema=arrow.rejected_schema())
    assert table.column("text").to_pylist() == [None]
