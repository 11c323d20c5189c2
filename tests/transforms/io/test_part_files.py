"""Several parts' Parquet files, written per bundle and finalized together: the names Beam's sinks
give, every row once, no file for an empty part unless it is required, nothing left in temp."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusforge.transforms.io.part_files import WriteParquetParts, shard_name
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
