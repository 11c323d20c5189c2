from __future__ import annotations

import pyarrow as pa
import pytest

from corpusforge.schemas import arrow
from corpusforge.schemas.config import PII_ENTITIES
from corpusforge.schemas.records import (
    DOCUMENT_FIELDS,
    Document,
    RejectedDocument,
    RejectReason,
    document_row,
    rejected_row,
)


def test_document_schema_is_derived_from_the_dataclass():
    schema = arrow.document_schema()
    assert tuple(schema.names) == DOCUMENT_FIELDS
    assert schema.field("id").type == pa.string() and not schema.field("id").nullable
    assert schema.field("lang_score").type == pa.float32()
    pii = schema.field("pii_counts").type
    assert pa.types.is_struct(pii) and [f.name for f in pii] == list(PII_ENTITIES)


def _types(t: pa.DataType):
    yield t
    if pa.types.is_struct(t):
        for f in t:
            yield from _types(f.type)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        yield from _types(t.value_type)


def test_no_output_has_a_map_column():
    # Hugging Face datasets cannot load a map column; each output folder must stay readable by it
    for schema in (
        arrow.document_schema(),
        arrow.rejected_schema(),
        arrow.sequence_schema(),
        arrow.sequence_schema(packed=True),
    ):
        assert not any(pa.types.is_map(t) for f in schema for t in _types(f.type)), schema


def test_a_dict_annotation_without_a_struct_type_is_refused():
    with pytest.raises(TypeError, match="map column"):
        arrow.arrow_type(dict[str, int])


def test_pii_counts_are_written_with_every_entity_type():
    row = document_row(Document(id="a", text="t", pii_counts={"US_SSN": 2}))
    assert row["pii_counts"] == {e: (2 if e == "US_SSN" else 0) for e in PII_ENTITIES}
    assert document_row(Document(id="a", text="t"))["pii_counts"] is None  # the stage did not run
    with pytest.raises(ValueError, match="NOT_A_TYPE"):
        document_row(Document(id="a", text="t", pii_counts={"NOT_A_TYPE": 1}))


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
    rej = RejectedDocument(doc, RejectReason("quality:x.y", "quality"))
    table = pa.Table.from_pylist([rejected_row(rej, include_text=False)], schema=arrow.rejected_schema())
    assert table.column("text").to_pylist() == [None]


def test_open_ended_counts_are_written_as_name_count_pairs():
    # bias categories come from an extensible lexicon: a list of structs, not a map column
    from corpusforge.schemas.records import BiasSignals

    doc = Document(
        id="a",
        text="t",
        bias=BiasSignals(words=9, female=1, male=0, mentions={"religion": 2}, toxic_mentions={}),
    )
    row = document_row(doc)
    assert (
        row["bias"]["mentions"] == [{"name": "religion", "count": 2}] and row["bias"]["toxic_mentions"] == []
    )
    table = pa.Table.from_pylist([row], schema=arrow.document_schema())
    assert table.column("bias").to_pylist()[0]["mentions"] == [{"name": "religion", "count": 2}]
