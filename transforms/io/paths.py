"""Folders on object stores: what "is a folder" and "exists" mean where a folder is only a prefix.

On ``s3://`` and ``gs://`` nothing marks ``s3://bucket/run/documents`` as a folder: it exists only as
the common prefix of the objects below it, so ``FileSystems.exists`` says False and a literal match
finds nothing. These helpers ask the store for one object under ``path/`` instead, so that an input
folder given without a trailing ``/`` is listed, and ``--overwrite`` sees (and removes) an earlier
run's shards. Beam's S3 listing reports a missing bucket as an empty result; :func:`check_writable`
writes (and removes) a small object so that a missing bucket or denied access fails before a run
deletes anything.
"""

from __future__ import annotations

from apache_beam.io.filesystems import FileSystems

WRITE_CHECK = "_corpusforge_write_check"


def is_remote(path: str) -> bool:
    """True for any Beam filesystem other than the local one (``scheme://...``)."""
    return "://" in path and not path.startswith("file://")


def has_children(path: str) -> bool:
    """Whether at least one object lies under ``path/`` (raises if the store refuses the listing)."""
    result = FileSystems.match([path.rstrip("/") + "/**"], limits=[1])[0]
    return bool(result.metadata_list)


def is_remote_folder(path: str) -> bool:
    """A remote path names a folder when it is no object itself but has objects below it."""
    return not FileSystems.exists(path.rstrip("/")) and has_children(path)


def entry_exists(path: str) -> bool:
    """An output entry (a file such as ``stats.json`` or a folder such as ``documents``) is there."""
    if FileSystems.exists(path):
        return True
    return is_remote(path) and has_children(path)


def deletable(path: str) -> str:
    """The spelling Beam deletes ``path`` by: object stores delete a whole prefix only with a ``/``."""
    if is_remote(path) and not FileSystems.exists(path):
        return path.rstrip("/") + "/"
    return path


def check_writable(folder: str) -> None:
    """Write and remove one small object in ``folder``: fails on a missing bucket or denied access."""
    probe = f"{folder.rstrip('/')}/{WRITE_CHECK}"
    handle = FileSystems.create(probe)
    try:
        handle.write(b"corpusforge checks that it may write here\n")  # S3 cannot store 0 bytes via Beam
    finally:
        handle.close()
    FileSystems.delete([probe])
