"""Parquet writing: rows become Arrow tables column by column, with the values Beam's own
conversion gives, and the files read back as the rows that went in."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.schemas import arrow
from corpusforge.schemas.records import Document, document_row
from corpusforge.transforms.io.write import RowsToTables, WriteParquet
from tests.helpers import local_test_pipeline

SCHEMA = pa.schema(
    [pa.field("id", pa.string(), nullable=False), ("n", pa.int64()), ("tags", pa.list_(pa.string()))]
)


def _tables(fn: RowsToTables, rows: list[dict]) -> list[pa.Table]:
    fn.start_bundle()
    out = [t for r in rows for t in fn.process(r)]
    out += [w.value for w in fn.finish_bundle()]
    return out


def test_tables_hold_the_rows_in_order_with_missing_nullable_fields_null():
    rows = [{"id": f"r{i}", "n": i, "tags": ["a"] * (i % 3)} for i in range(1234)] + [{"id": "last"}]
    tables = _tables(RowsToTables(SCHEMA, batch_rows=100, table_bytes=4000), rows)
    assert len(tables) > 1  # cut by size, as row groups are
    assert pa.concat_tables(tables).to_pylist() == [{"n": None, "tags": None, **r} for r in rows]


def test_a_missing_required_field_raises_and_an_empty_bundle_yields_nothing():
    with pytest.raises(KeyError):
        _tables(RowsToTables(SCHEMA, batch_rows=1), [{"n": 1}])
    assert _tables(RowsToTables(SCHEMA), []) == []


def test_documents_written_read_back_as_their_rows(tmp_path):
    import apache_beam as beam

    docs = [Document(id=f"d{i}", text=f"text {i} é", lang="en", lang_score=0.5 + i / 100) for i in range(50)]
    rows = [document_row(d) for d in docs]
    with local_test_pipeline() as p:
        _ = p | beam.Create(rows) | WriteParquet(str(tmp_path / "documents"), arrow.document_schema(), 1)
    (path,) = (tmp_path / "documents").glob("part-*.parquet")
    back = pq.read_table(path).to_pylist()
    expected = pa.Table.from_pylist(rows, schema=arrow.document_schema()).to_pylist()
    assert sorted(back, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])
