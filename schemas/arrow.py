"""pyarrow schemas derived from the dataclasses in :mod:`corpusforge.schemas.records`.

Never write a pyarrow schema by hand: add the field to the dataclass and it flows here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache

import pyarrow as pa

from corpusforge.schemas import records

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    bytes: pa.binary(),
}


def arrow_type(hint: typing.Any) -> tuple[pa.DataType, bool]:
    """Map a type hint to (arrow type, nullable)."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(hint)
        for item in extra:
            if isinstance(item, pa.DataType):
                return item, False
        return arrow_type(base)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unions other than Optional are not representable: {hint}")
        inner, _ = arrow_type(args[0])
        return inner, True
    if origin is list:
        (item,) = typing.get_args(hint)
        return pa.list_(arrow_type(item)[0]), False
    if origin is dict:
        key, value = typing.get_args(hint)
        return pa.map_(arrow_type(key)[0], arrow_type(value)[0]), False
    if dataclasses.is_dataclass(hint):
        return pa.struct(_fields_of(hint)), False
    if hint in _SCALARS:
        return _SCALARS[hint], False
    raise TypeError(f"no arrow type for {hint!r}")


def _fields_of(cls: type) -> list[pa.Field]:
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        typ, nullable = arrow_type(hints[f.name])
        out.append(pa.field(f.name, typ, nullable=nullable))
    return out


@cache
def schema_of(cls: type) -> pa.Schema:
    return pa.schema(_fields_of(cls))


def document_schema() -> pa.Schema:
    return schema_of(records.Document)


def rejected_schema() -> pa.Schema:
    """Every document column (all nullable: a record may be rejected before it has an id or text,
    and rejected text can be switched off), then the rejection columns."""
    doc_fields = [f.with_nullable(True) for f in schema_of(records.Document)]
    return pa.schema(doc_fields + list(schema_of(records.Rejection)))


def sequence_schema() -> pa.Schema:
    return schema_of(records.SequenceRow)
