"""Where a run's log lines go: corpusforge's to the terminal, everyone else's to a file.

Beam logs a great deal a user cannot act on ("No semi_persistent_directory found" and "Discarding
unparseable args" once per SDK worker, "apitools not found" at import without the gcp extra). The
terminal keeps the ``corpusforge.*`` loggers; every other record is held in memory until the run's
bookkeeping folder exists and then written to ``<output>/_run/beam.log`` (a local temporary file when
the output is on a remote filesystem), which the closing summary names.

This module imports nothing but the standard library, so that the CLI can install the handlers
before the first ``import apache_beam`` (Beam's import-time warning goes through the root logger and
would otherwise get Python's default stderr handler).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_NAME = "beam.log"
_OURS = "corpusforge"


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name == _OURS or record.name.startswith(_OURS + ".")


class _Pending(logging.Handler):
    """Holds the records of other libraries until :func:`log_to_file` knows where they go.

    Bounded, so that a program that imports corpusforge and never runs it cannot grow without end.
    """

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.limit = limit
        self.addFilter(lambda r: not _is_ours(r))

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < self.limit:
            self.records.append(record)


_PENDING = _Pending()
_FILE: list[logging.Handler] = []  # the current run's file handler (main() may run more than once)
_TERMINAL = logging.StreamHandler(sys.stderr)
_TERMINAL.setFormatter(logging.Formatter(FORMAT))
_TERMINAL.addFilter(_is_ours)


def install() -> None:
    """Route the root logger: ours to stderr, others pending a file. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # the stderr handler logging.warning() installs on its own (exactly a StreamHandler: test
        # frameworks' capturing subclasses stay), and an earlier run's file
        if type(handler) is logging.StreamHandler and handler is not _TERMINAL or handler in _FILE:
            root.removeHandler(handler)
    for handler in _FILE:
        handler.close()
    _FILE.clear()
    _PENDING.records.clear()
    for handler in (_TERMINAL, _PENDING):
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger(_OURS).setLevel(logging.INFO)
    # Beam's INFO lines (type-hint conversions, bundle plumbing) would bury the warnings in the file
    logging.getLogger("apache_beam").setLevel(logging.WARNING)


def current_path() -> str | None:
    """The file :func:`log_to_file` opened for this run, if any."""
    return _FILE[0].baseFilename if _FILE else None


def log_to_file(output: str) -> str:
    """Write the held records and all later ones of other libraries to the run's log file; returns
    its path. Call once the output folder has been prepared (an --overwrite removes ``_run/``)."""
    if "://" in output:
        fd, path = tempfile.mkstemp(prefix="corpusforge-", suffix=".log")
        os.close(fd)
    else:
        os.makedirs(f"{output}/_run", exist_ok=True)
        path = f"{output}/_run/{LOG_NAME}"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(lambda r: not _is_ours(r))
    for record in _PENDING.records:
        handler.handle(record)
    root = logging.getLogger()
    root.removeHandler(_PENDING)
    _PENDING.records.clear()
    root.addHandler(handler)
    _FILE.append(handler)
    return path


install()
