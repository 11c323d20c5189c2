"""Staged writes: a file shows up under its name only complete; a failure leaves nothing behind."""

from __future__ import annotations

import apache_beam as beam
import pytest

from corpusforge.schemas.config import TokenizeConfig
from corpusforge.schemas.records import SequenceRow
from corpusforge.transforms.io.staged import StagedFiles, write_staged
from corpusforge.transforms.tokenize import megatron
from corpusforge.transforms.tokenize.outputs import WriteTrainerFormats
from tests.helpers import local_test_pipeline


def test_files_appear_only_when_the_block_completes_and_an_error_removes_them(tmp_path):
    with StagedFiles() as staged:
        with staged.create(str(tmp_path / "a.bin")) as f:
            f.write(b"abc")
        assert not (tmp_path / "a.bin").exists()  # written, but under a temporary name
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    with pytest.raises(RuntimeError), StagedFiles() as staged:
        with staged.create(str(tmp_path / "b.bin")) as f:
            f.write(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    write_staged(str(tmp_path / "a.bin"), b"new")  # replaces a finished file from an earlier attempt
    assert (tmp_path / "a.bin").read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_a_megatron_shard_that_fails_half_way_leaves_no_file_that_looks_finished(tmp_path, monkeypatch):
    """The .bin is complete when the index fails: nothing of the shard may keep its final name."""

    def broken_index(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(megatron, "index_bytes", broken_index)
    rows = [(16, SequenceRow([1, 2, 3], 3, f"d{i}", 0)) for i in range(10)]
    cfg = TokenizeConfig(buckets=[16], formats=["megatron"], shards=2, shuffle_seed=0)
    with pytest.raises(Exception, match="disk full"), local_test_pipeline() as p:
        _ = p | beam.Create(rows) | WriteTrainerFormats(cfg, str(tmp_path), 1000, cfg.shards)
    folder = tmp_path / "sequences_megatron"
    assert not folder.exists() or list(folder.iterdir()) == []
