"""Validation: raw records in, documents or rejections with a reason out. A bad record never crashes.

Reasons (stage ``validate``): ``invalid:bad_utf8`` (undecodable bytes, or a lone surrogate escape
that could never be written as UTF-8), ``invalid:bad_json``, ``invalid:no_text`` (not an object,
text missing or not a string), ``invalid:empty`` (empty or whitespace only), ``invalid:too_long``
(more than ``input.max_chars`` characters) and ``invalid:duplicate_id`` (an id seen before: the first
occurrence by input path and position is kept).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from corpusforge.schemas.records import Document, RejectedDocument, RejectReason
from corpusforge.transforms.base import KEPT_TAG, REJECTED_TAG, StageCounters
from corpusforge.transforms.io.observe import observe_length

_LENIENT_JSON = json.JSONDecoder(strict=False)  # json.loads(line, strict=False), decoder kept

STAGE = "validate"
REASON_PREFIX = "invalid"
# Longest raw text kept for audit in a record that could not be parsed.
AUDIT_CHARS = 10_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def derive_id(path: str, position: int) -> str:
    """A stable id for a record without one: file name, position, and a short hash of the full path
    (two files may share a name in different folders)."""
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
    return f"{posixpath.basename(path)}:{position}:{digest}"


def _rejection(detail: str, info: str | None = None, duplicate_of: str | None = None) -> RejectReason:
    return RejectReason(
        reason=f"{REASON_PREFIX}:{detail}", stage=STAGE, detail=info, duplicate_of=duplicate_of
    )


def duplicate_rejection(record_id: str, first_path: str | None, first_offset: int | None) -> RejectReason:
    """The rejection of a document whose id was seen first at ``first_path``/``first_offset``."""
    return _rejection("duplicate_id", f"first seen in {first_path} at {first_offset}", duplicate_of=record_id)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


@dataclass(frozen=True)
class _TextFlaw:
    """Why a record's text field cannot be written: the rejection's reason, its detail, and the raw
    text the rejected record is reported with (None when there is none to show)."""

    kind: str
    detail: str
    audit: str | None


class RecordParser:
    """Turn one raw record into a Document or a RejectedDocument; pure, no Beam."""

    def __init__(
        self,
        text_field: str = "text",
        id_field: str = "id",
        source_field: str | None = "source",
        url_field: str | None = "url",
        max_chars: int = 1_000_000,
    ) -> None:
        self.text_field = text_field
        self.id_field = id_field
        self.source_field = source_field
        self.url_field = url_field
        self.max_chars = max_chars
        self.own_fields = {f for f in (text_field, id_field, source_field, url_field) if f}

    def shell(self, path: str, position: int, raw: str | None, record_id: str | None = None) -> Document:
        """The document a rejection is reported on when the record could not become one."""
        text = raw[:AUDIT_CHARS] if raw is not None else None
        return Document(
            id=record_id or derive_id(path, position), text=text, input_path=path, input_offset=position
        )  # type: ignore[arg-type]

    def parse(self, path: str, position: int, payload: bytes | dict) -> Document | RejectedDocument:
        loaded = self._load(path, position, payload)
        if isinstance(loaded, RejectedDocument):
            return loaded
        return self.from_object(path, position, *loaded)

    def document_id(self, path: str, position: int, payload: bytes | dict) -> str | None:
        """The id of the document ``parse`` makes of this record, or ``None`` when it rejects it.

        The duplicate-id scan needs only this: the same decisions, in the same order, without
        building the document (its metadata JSON and fields cost as much again as the JSON parse).
        ``tests/transforms/io/test_validate.py`` holds it to ``parse`` on every kind of bad record.
        """
        loaded = self._load(path, position, payload)
        if isinstance(loaded, RejectedDocument) or not isinstance(loaded[0], dict):
            return None
        obj, line = loaded
        text = self._text_or_flaw(obj, line)
        if isinstance(text, _TextFlaw) or self._size_flaw(text) is not None:
            return None
        return self._record_id(obj, path, position)

    def _text_or_flaw(self, obj: dict, line: str | None) -> str | _TextFlaw:
        """The record's text, or why it has none that can be written: the checks ``from_object`` and
        ``document_id`` share, in the order ``from_object`` reports them."""
        text = obj.get(self.text_field)
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                return _TextFlaw("bad_utf8", str(exc), bytes(text).decode("utf-8", errors="replace"))
        if not isinstance(text, str):
            why = (
                f"field {self.text_field!r} is missing"
                if text is None
                else f"field {self.text_field!r} is a {type(text).__name__}"
            )
            return _TextFlaw("no_text", why, line)
        if line is None and _has_lone_surrogate(obj):  # Parquet strings cannot hold them, but be safe
            return _TextFlaw("bad_utf8", "lone surrogate", None)
        return text

    def _size_flaw(self, text: str) -> str | None:
        """``empty`` or ``too_long`` when the text is either, else None."""
        if not text or text.isspace():  # as not text.strip(), without copying the text
            return "empty"
        if len(text) > self.max_chars:
            return "too_long"
        return None

    def _load(
        self, path: str, position: int, payload: bytes | dict
    ) -> tuple[Any, str | None] | RejectedDocument:
        """``(decoded JSON value, line)`` of a record (``line`` None for a Parquet row), or the
        rejection of a line that is not UTF-8 or not JSON."""
        if isinstance(payload, dict):
            return payload, None
        try:
            line = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raw = payload.decode("utf-8", errors="replace")
            return RejectedDocument(self.shell(path, position, raw), _rejection("bad_utf8", str(exc)))
        if line.startswith("\ufeff"):  # a byte-order mark at the start of a file saved on Windows
            line = line[1:]
        try:
            # strict=False: raw tabs and other control characters inside strings are invalid JSON but
            # common in real dumps; normalization removes them rather than the record being lost
            # one decoder for every line: json.loads builds a JSONDecoder per call when given an
            # argument (~11 us a record); a line starting with a byte-order mark still goes through
            # json.loads, which rejects it with its own message
            obj = (
                _LENIENT_JSON.decode(line)
                if not line.startswith("\ufeff")
                else json.loads(line, strict=False)
            )
        except (ValueError, RecursionError) as exc:
            return RejectedDocument(self.shell(path, position, line), _rejection("bad_json", str(exc)[:200]))
        # JSON escapes can encode lone surrogates, which are valid JSON but not writable as UTF-8.
        if "\\u" in line and ("\\ud" in line.lower()) and _has_lone_surrogate(obj):
            raw = line.encode("utf-8", errors="replace").decode("utf-8")
            record_id = self._record_id(obj, path, position) if isinstance(obj, dict) else None
            return RejectedDocument(
                self.shell(path, position, raw, record_id), _rejection("bad_utf8", "lone surrogate escape")
            )
        return obj, line

    def _record_id(self, obj: dict, path: str, position: int) -> str:
        value = obj.get(self.id_field)
        if isinstance(value, bool) or value is None:
            return derive_id(path, position)
        if isinstance(value, int | str) and str(value) != "":
            return str(value)
        if isinstance(value, float) and value.is_integer():  # pandas stores int ids with nulls as floats
            return str(int(value))
        return derive_id(path, position)

    def from_object(
        self, path: str, position: int, obj: Any, line: str | None
    ) -> Document | RejectedDocument:
        if not isinstance(obj, dict):
            return RejectedDocument(
                self.shell(path, position, line),
                _rejection("no_text", f"record is a {type(obj).__name__}, not an object"),
            )
        record_id = self._record_id(obj, path, position)
        text = self._text_or_flaw(obj, line)
        if isinstance(text, _TextFlaw):
            shell = self.shell(path, position, text.audit, record_id)
            return RejectedDocument(shell, _rejection(text.kind, text.detail))
        rest = {k: v for k, v in obj.items() if k not in self.own_fields}
        doc = Document(
            id=record_id,
            text=text,
            source=_as_str(obj.get(self.source_field)) if self.source_field else None,
            url=_as_str(obj.get(self.url_field)) if self.url_field else None,
            metadata=metadata_json(rest) if rest else None,
            input_path=path,
            input_offset=position,
        )
        size_flaw = self._size_flaw(text)
        if size_flaw == "empty":
            return RejectedDocument(doc, _rejection("empty"))
        if size_flaw == "too_long":
            shell = Document(**{**doc.__dict__, "text": text[:AUDIT_CHARS]})
            return RejectedDocument(
                shell, _rejection("too_long", f"{len(text)} characters > input.max_chars={self.max_chars}")
            )
        return doc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)  # dates, decimals and other Parquet types


def metadata_json(fields: dict[str, Any]) -> str:
    """The fields corpusforge does not interpret, as strict JSON (NaN and infinities become null,
    bytes base64), so that any JSON parser reads the metadata column back."""
    try:
        return json.dumps(fields, ensure_ascii=False, default=_json_default, allow_nan=False)
    except ValueError:
        return json.dumps(_json_safe(fields), ensure_ascii=False, default=_json_default, allow_nan=False)


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def parse_counted(
    parser: RecordParser, counters: StageCounters, path: str, position: int, payload: Any
) -> Document | RejectedDocument:
    """One record parsed and counted as validate counts it (in, the rejection, or the document's
    characters and length before any stage, for the report); duplicate ids are decided elsewhere."""
    counters.inc("in")
    outcome = parser.parse(path, position, payload)
    if isinstance(outcome, RejectedDocument):
        counters.rejected(outcome.rejection)
    else:
        counters.inc("chars_in", len(outcome.text))
        observe_length(counters, outcome)
    return outcome


class _ParseFn(beam.DoFn):
    def __init__(self, parser: RecordParser) -> None:
        self.parser = parser

    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, record: tuple[str, int, Any]) -> Iterator[Any]:
        outcome = parse_counted(self.parser, self.counters, *record)
        yield pvalue.TaggedOutput(REJECTED_TAG, outcome) if isinstance(outcome, RejectedDocument) else outcome


def first_occurrence_wins(docs: Iterable[Document]) -> tuple[Document, list[Document]]:
    """The document kept among those sharing an id: the first by (input path, position)."""
    ordered = sorted(docs, key=lambda d: (d.input_path or "", d.input_offset or 0))
    return ordered[0], ordered[1:]


class _ResolveIdsFn(beam.DoFn):
    def setup(self) -> None:
        self.counters = StageCounters(STAGE)

    def process(self, element: tuple[str, Iterable[Document]]) -> Iterator[Any]:
        _, group = element
        docs = list(group)
        kept, others = (docs[0], []) if len(docs) == 1 else first_occurrence_wins(docs)
        self.counters.kept(kept)
        yield kept
        for doc in others:
            rejection = duplicate_rejection(kept.id, kept.input_path, kept.input_offset)
            self.counters.rejected(rejection)
            yield pvalue.TaggedOutput(REJECTED_TAG, RejectedDocument(doc, rejection))


class Validate(beam.PTransform):
    """Raw records in; ``(documents, rejected)`` out, each document with a unique id.

    This groups whole documents by id (a shuffle of every document): for records that exist only
    as a PCollection. The pipeline reads its input files and uses
    :class:`~corpusforge.transforms.io.unique_ids.ReadValidated` instead, which shuffles only ids.
    """

    def __init__(self, parser: RecordParser) -> None:
        super().__init__()
        self.parser = parser

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        parsed = records | "Parse" >> beam.ParDo(_ParseFn(self.parser)).with_outputs(
            REJECTED_TAG, main=KEPT_TAG
        )
        resolved = (
            parsed[KEPT_TAG]
            | "KeyById" >> beam.Map(lambda doc: (doc.id, doc))
            | "GroupById" >> beam.GroupByKey()
            | "ResolveIds" >> beam.ParDo(_ResolveIdsFn()).with_outputs(REJECTED_TAG, main=KEPT_TAG)
        )
        rejected = (parsed[REJECTED_TAG], resolved[REJECTED_TAG]) | "Rejected" >> beam.Flatten()
        return resolved[KEPT_TAG], rejected
