"""Readers: every format and compression, folders and globs, splits, unreadable files."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from apache_beam.testing.util import assert_that, equal_to

from corpusforge.transforms.io.read import (
    ReadDocuments,
    detect_format,
    discover_inputs,
    is_blank,
    iter_lines,
    iter_stream_lines,
)

RECORDS = [{"id": f"r{i}", "text": f"document number {i} " + "word " * (i % 7)} for i in range(40)]


def jsonl_bytes(records=RECORDS) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def read_ids(pipeline, files, split_mb=64, skip=False):
    with pipeline as p:
        records, unreadable = p | ReadDocuments(files, split_mb, skip_unreadable=skip)
        ids = records | beam.Map(lambda r: json.loads(r[2])["id"] if isinstance(r[2], bytes) else r[2]["id"])
        yield ids, unreadable


@pytest.mark.parametrize(
    "name,compress",
    [
        ("a.jsonl", lambda b: b),
        ("a.json", lambda b: b),
        ("a.jsonl.gz", gzip.compress),
        ("a.jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
    ],
)
def test_jsonl_formats(tmp_path, test_pipeline, name, compress):
    (tmp_path / name).write_bytes(compress(jsonl_bytes()))
    files, missing = discover_inputs([str(tmp_path / name)])
    assert not missing and len(files) == 1
    for ids, _ in read_ids(test_pipeline, files):
        assert_that(ids, equal_to([r["id"] for r in RECORDS]))


def test_parquet_by_row_group(tmp_path, test_pipeline):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), path, row_group_size=7)
    files, _ = discover_inputs([str(path)])
    assert files[0].format == "parquet"
    with test_pipeline as p:
        records, _ = p | ReadDocuments(files)
        assert_that(
            records | beam.Map(lambda r: (r[1], r[2]["id"])),
            equal_to([(i, r["id"]) for i, r in enumerate(RECORDS)]),
        )


def test_folder_and_glob(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "x.jsonl").write_bytes(jsonl_bytes())
    (tmp_path / "sub" / "y.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes()))
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "notes.md").write_text("not data")
    files, _ = discover_inputs([str(tmp_path)])
    assert sorted(f.path.rsplit("/", 1)[1] for f in files) == ["x.jsonl", "y.jsonl.gz"]
    files, _ = discover_inputs([str(tmp_path / "*.jsonl")])
    assert [f.path.rsplit("/", 1)[1] for f in files] == ["x.jsonl"]


def test_missing_input_is_reported_not_raised():
    files, missing = discover_inputs(["/nonexistent/file.jsonl"])
    assert files == [] and missing[0].path == "/nonexistent/file.jsonl"


def test_detect_format():
    assert detect_format("x/data.jsonl.zst") == ("jsonl", "zstd")
    assert detect_format("x/data.parquet") == ("parquet", "none")
    assert detect_format("x/data.txt.gz", "jsonl") == ("jsonl", "gzip")


@pytest.mark.parametrize("split", [1, 7, 50, 113, 10_000])
def test_byte_range_splits_read_every_line_exactly_once(split):
    data = jsonl_bytes()
    seen = []
    for start in range(0, len(data), split):
        seen.extend(iter_lines(io.BytesIO(data), start, min(len(data), start + split)))
    expected = list(iter_lines(io.BytesIO(data)))
    assert seen == expected
    assert [json.loads(line)["id"] for _, line in seen] == [r["id"] for r in RECORDS]


def test_split_reading_in_a_pipeline_keeps_offsets(tmp_path, test_pipeline, monkeypatch):
    (tmp_path / "a.jsonl").write_bytes(jsonl_bytes())
    files, _ = discover_inputs([str(tmp_path / "a.jsonl")])
    from corpusforge.transforms.io import read

    read_docs = read.ReadDocuments(files, 1)
    read_docs.plan.split_bytes = 100  # force many small splits
    with test_pipeline as p:
        records, _ = p | read_docs
        expected = [(off, json.loads(line)["id"]) for off, line in iter_lines(io.BytesIO(jsonl_bytes()))]
        assert_that(records | beam.Map(lambda r: (r[1], json.loads(r[2])["id"])), equal_to(expected))


def test_truncated_gzip_fails_naming_the_file(tmp_path, test_pipeline):
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_bytes())[:-30])
    files, _ = discover_inputs([str(path)])
    with pytest.raises(Exception, match="cannot read input file .*broken.jsonl.gz"):
        with test_pipeline as p:
            p | ReadDocuments(files)


def test_truncated_gzip_is_listed_when_skipping(tmp_path, test_pipeline):
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_bytes())[:-30])
    bad_parquet = tmp_path / "corrupt.parquet"
    bad_parquet.write_bytes(b"PAR1 this is not a parquet file")
    files, _ = discover_inputs([str(path), str(bad_parquet)])
    with test_pipeline as p:
        _, unreadable = p | ReadDocuments(files, skip_unreadable=True)
        assert_that(
            unreadable | beam.Map(lambda u: u.path.rsplit("/", 1)[1]),
            equal_to(["broken.jsonl.gz", "corrupt.parquet"]),
        )


def test_a_partly_read_file_says_how_many_records_came_out_before_the_error(tmp_path, test_pipeline):
    path = tmp_path / "truncated.jsonl.gz"
    whole = b"".join(b'{"id": "r%d", "text": "record number %d"}\n' % (i, i) for i in range(2000))
    path.write_bytes(gzip.compress(whole)[:-30])  # the gzip trailer and a few records are lost
    files, _ = discover_inputs([str(path)])
    with test_pipeline as p:
        records, unreadable = p | ReadDocuments(files, skip_unreadable=True)
        count = records | beam.combiners.Count.Globally()
        assert_that(
            unreadable | beam.Map(lambda u: (u.records_read > 1900, u.records_read < 2000)),
            equal_to([(True, True)]),
            label="partial",
        )
        assert_that(
            (count, unreadable | beam.Map(lambda u: u.records_read))
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.Map(lambda xs: len(set(xs))),
            equal_to([1]),
            label="every record read is counted as read",
        )


def test_parquet_cell_with_bad_utf8_rejects_only_its_record(tmp_path, test_pipeline):
    from corpusforge.transforms.io.validate import RecordParser, Validate

    texts = pa.array([b"good one", b"bad \xff\xfe text", b"good two"], pa.binary()).view(pa.string())
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": texts}), path)
    files, _ = discover_inputs([str(path)])
    with test_pipeline as p:
        records, _ = p | ReadDocuments(files)
        kept, rejected = records | Validate(RecordParser())
        assert_that(kept | "K" >> beam.Map(lambda d: d.id), equal_to(["a", "c"]), label="kept")
        assert_that(
            rejected | "R" >> beam.Map(lambda r: (r.doc.id, r.rejection.reason)),
            equal_to([("b", "invalid:bad_utf8")]),
            label="rejected",
        )


def test_output_folder_inside_an_input_folder_is_not_read_and_files_are_read_once(tmp_path, monkeypatch):
    (tmp_path / "a.jsonl").write_bytes(jsonl_bytes())
    (tmp_path / "out" / "documents").mkdir(parents=True)
    (tmp_path / "out" / "stats.json").write_text("{}")
    (tmp_path / "out" / "documents" / "part-0.parquet").write_bytes(b"")
    files, _ = discover_inputs([str(tmp_path)], exclude=str(tmp_path / "out"))
    assert [f.path.rsplit("/", 1)[1] for f in files] == ["a.jsonl"]
    monkeypatch.chdir(tmp_path)
    files, _ = discover_inputs(["a.jsonl", "./a.jsonl", str(tmp_path / "a.jsonl")])
    assert len(files) == 1


# blank and whitespace-only lines, CRLF, a lone "\r", "\n\n" runs, non-ASCII, no final newline
TRICKY = b'{"a": 1}\n\n  \n\r\n{"b": "\xc3\xa9"}\r\n\t\n\n\n{"c": 3}\r\r\nlast line, no newline'


def _as_readline_would(stream) -> Iterator[tuple[int, bytes, bool]]:
    return ((off, line.rstrip(b"\r\n"), line.isspace()) for off, line in iter_lines(stream))


def _in_blocks(stream, chunk: int) -> Iterator[tuple[int, bytes, bool]]:
    return ((off, line.rstrip(b"\r\n"), is_blank(line)) for off, line in iter_stream_lines(stream, chunk))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("payload", [TRICKY, TRICKY + b"\n", b"", b"\n", b"x", jsonl_bytes()])
def test_lines_in_blocks_are_the_lines_readline_gives(payload, chunk):
    expected = list(_as_readline_would(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(payload)))))
    got = list(_in_blocks(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(payload))), chunk))
    assert got == expected
    zstd = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(zstandard.ZstdCompressor().compress(payload))
    )
    assert list(_in_blocks(io.BufferedReader(zstd, buffer_size=1 << 20), chunk)) == expected


def test_a_truncated_gzip_fails_in_blocks_after_the_lines_readline_gives():
    whole = b"".join(b'{"id": "t%d", "text": "record number %d"}\n' % (i, i) for i in range(20000))
    cut = gzip.compress(whole)[:-30]

    def lines_until_failure(read) -> tuple[list, type]:
        got = []
        try:
            for item in read(gzip.GzipFile(fileobj=io.BytesIO(cut))):
                got.append(item)
        except Exception as exc:  # noqa: BLE001 - the type is compared
            return got, type(exc)
        return got, type(None)

    expected, error = lines_until_failure(_as_readline_would)
    got, got_error = lines_until_failure(lambda s: _in_blocks(s, 1 << 20))
    assert error is EOFError and got_error is error
    assert got == expected and 19000 < len(got) < 20000
