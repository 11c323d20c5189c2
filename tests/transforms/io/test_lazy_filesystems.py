"""Filesystems imported on their first path (transforms/io/lazy_filesystems.py): a scheme whose module
was left out is served once a path of it is used, its set-up runs then, and a scheme whose libraries
are missing fails as Beam makes it fail. A fake scheme stands in for gs:// and s3:// (which this
test process imported with Beam, as every process that imports Beam as usual does)."""

from __future__ import annotations

import sys

import pytest
from apache_beam.io.filesystems import FileSystems

from corpusforge.pipelines.local import lean_import
from corpusforge.transforms.io import lazy_filesystems

FAKE_MODULE = """
from apache_beam.io.localfilesystem import LocalFileSystem

class FakeFileSystem(LocalFileSystem):
    @classmethod
    def scheme(cls):
        return "fakefs"
"""


@pytest.fixture
def fake_scheme(tmp_path, monkeypatch):
    """``fakefs://`` served by a module not imported yet, as a left-out filesystem is."""
    (tmp_path / "cf_fake_filesystem.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(lazy_filesystems.LAZY, "fakefs", "cf_fake_filesystem")
    monkeypatch.setitem(lazy_filesystems.LAZY, "nofs", "cf_not_installed_filesystem")
    monkeypatch.setattr(lazy_filesystems, "_TRIED", set())
    monkeypatch.setattr(lazy_filesystems, "_CALLBACKS", {})
    yield
    sys.modules.pop("cf_fake_filesystem", None)  # its class stays a FileSystem subclass: unique scheme


def test_a_left_out_filesystem_serves_its_first_path_and_runs_its_set_up_then(fake_scheme):
    lazy_filesystems.install()
    calls = []
    lazy_filesystems.on_load("fakefs", lambda: calls.append("set up"))
    assert "cf_fake_filesystem" not in sys.modules and calls == []
    assert type(FileSystems.get_filesystem("fakefs://bucket/key")).__name__ == "FakeFileSystem"
    assert calls == ["set up"]
    FileSystems.get_filesystem("fakefs://bucket/other")
    lazy_filesystems.on_load("fakefs", lambda: calls.append("later"))  # loaded: at once
    assert calls == ["set up", "later"]


def test_a_scheme_whose_libraries_are_missing_fails_as_beam_fails(fake_scheme):
    lazy_filesystems.install()
    with pytest.raises(ValueError, match="Unable to get filesystem from specified path"):
        FileSystems.get_filesystem("nofs://bucket/key")


def test_install_wraps_once_and_local_paths_are_served_as_before():
    lazy_filesystems.install()
    wrapped = FileSystems.get_filesystem
    lazy_filesystems.install()
    assert FileSystems.get_filesystem is wrapped
    assert type(FileSystems.get_filesystem("/tmp/x")).__name__ == "LocalFileSystem"


def test_the_lean_import_leaves_out_exactly_the_lazy_filesystems():
    assert lean_import.FILESYSTEMS == lazy_filesystems.MODULES
