"""Several parts' Parquet files, written per bundle and finalized together: the names Beam's sinks
give, every row once, no file for an empty part unless it is required, nothing left in temp."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.transforms.io.part_files import PartTarget, WriteLines, WriteParquetParts, shard_name
from corpusforge.transforms.io.write import RowsToTables
from tests.helpers import local_test_pipeline

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), ("n", pa.int64())])


def _write(tmp_path, rows_by_part: dict[str, list[dict]], required=("first",)) -> list[str]:
    prefixes = {part: "part" if part == "first" else f"part-{part}" for part in rows_by_part}
    with local_test_pipeline() as p:
        tables = {
            part: p
            | f"Create{part}" >> beam.Create(rows, reshuffle=False)
            | f"Tables{part}" >> beam.ParDo(RowsToTables(SCHEMA))
            for part, rows in rows_by_part.items()
        }
        _ = tables | WriteParquetParts(
            str(tmp_path / "out"), SCHEMA, str(tmp_path / "temp"), prefixes, required=required
        )
    return sorted(path.name for path in (tmp_path / "out").iterdir())


def test_each_part_gets_beam_shard_names_and_every_row_once(tmp_path):
    rows = {
        "first": [{"id": f"v{i}", "n": i} for i in range(3)],
        "language": [{"id": f"l{i}", "n": i} for i in range(700)],
        "quality": [],
    }
    names = _write(tmp_path, rows)
    language = [n for n in names if n.startswith("part-language-")]
    assert language and all(n.endswith(f"-of-{len(language):05d}.parquet") for n in language)
    assert [n for n in names if n.startswith("part-0")] == ["part-00000-of-00001.parquet"]
    assert not [n for n in names if "quality" in n]  # an empty part that is not required: no file
    back = {
        prefix: sorted(
            r["id"]
            for n in names
            if n.startswith(prefix)
            for r in pq.read_table(tmp_path / "out" / n).to_pylist()
        )
        for prefix in ("part-0", "part-language-")
    }
    assert back == {"part-0": ["v0", "v1", "v2"], "part-language-": sorted(r["id"] for r in rows["language"])}
    assert not list((tmp_path / "temp").glob("*"))  # every temporary file was renamed


def test_a_required_part_without_rows_gets_one_empty_readable_file(tmp_path):
    names = _write(tmp_path, {"first": [], "dedup": []})
    assert names == ["part-00000-of-00001.parquet"]
    empty = pq.ParquetFile(tmp_path / "out" / names[0])
    assert empty.metadata.num_rows == 0 and empty.metadata.num_row_groups == 0  # as Beam's empty shard
    assert empty.schema_arrow == SCHEMA


def test_shard_names_and_a_temp_folder_inside_the_output_is_refused(tmp_path):
    assert shard_name("o/rejected", "part-pii", 2, 11) == "o/rejected/part-pii-00002-of-00011.parquet"
    with pytest.raises(ValueError, match="must not be inside"):
        WriteParquetParts("o/rejected", SCHEMA, "o/rejected/tmp", {"a": "part"})


OTHER = pa.schema([pa.field("doc", pa.string(), nullable=False)])


def test_parts_in_other_folders_and_written_lines_share_the_one_finalize(tmp_path):
    """documents/, dedup_index/, sequences/ and the unreadable list join the rejected records' finalize
    on the local runner: each part keeps its own folder, schema, names and suffix."""
    out = tmp_path / "out"
    others = {
        "docs": PartTarget(str(out / "documents"), "part", OTHER, required=True),
        "index": PartTarget(str(out / "dedup_index"), "part", OTHER, required=True),
        "lines": PartTarget(str(out / "_run"), "unreadable", None, written=True, suffix=".jsonl"),
        "none": PartTarget(str(out / "_run"), "never", None, written=True, suffix=".jsonl"),
    }
    with local_test_pipeline() as p:
        tables = {
            "first": p
            | "CreateFirst" >> beam.Create([{"id": "v", "n": 1}])
            | "T1" >> beam.ParDo(RowsToTables(SCHEMA)),
            "docs": p
            | "CreateDocs" >> beam.Create([{"doc": "d1"}, {"doc": "d2"}])
            | "T2" >> beam.ParDo(RowsToTables(OTHER)),
            "index": p
            | "CreateIndex" >> beam.Create([], reshuffle=False)
            | "T3" >> beam.ParDo(RowsToTables(OTHER)),
            "lines": p
            | "CreateLines" >> beam.Create(['{"path": "a"}', '{"path": "b"}'])
            | beam.ParDo(WriteLines(str(tmp_path / "temp"), "lines", ".jsonl")),
        }
        tables["none"] = tables["lines"]  # a collection of names shared by parts counts once
        _ = tables | WriteParquetParts(
            str(out / "rejected"), SCHEMA, str(tmp_path / "temp"), {"first": "part"}, ["first"], others=others
        )
    docs = sorted(
        r["doc"]
        for f in (out / "documents").glob("part-*-of-*.parquet")
        for r in pq.read_table(f).to_pylist()
    )
    assert docs == ["d1", "d2"]
    assert [f.name for f in (out / "dedup_index").iterdir()] == [
        "part-00000-of-00001.parquet"
    ]  # required: one empty file
    assert pq.ParquetFile(out / "dedup_index" / "part-00000-of-00001.parquet").schema_arrow == OTHER
    lines = sorted((out / "_run").glob("unreadable-*-of-*.jsonl"))
    assert lines and sorted(x for f in lines for x in f.read_text().splitlines()) == [
        '{"path": "a"}',
        '{"path": "b"}',
    ]
    assert not list((out / "_run").glob("never*"))
    assert not list((tmp_path / "temp").glob("*"))


def test_a_text_part_cannot_be_required_nor_written_from_tables():
    for target in (
        PartTarget("o/_run", "unreadable", None, written=True, required=True, suffix=".jsonl"),
        PartTarget("o/_run", "unreadable", None, suffix=".jsonl"),
    ):
        with pytest.raises(ValueError, match="only Parquet parts"):
            WriteParquetParts("o/rejected", SCHEMA, "o/tmp", {"a": "part"}, others={"u": target})
