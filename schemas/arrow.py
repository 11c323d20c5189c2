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
        # no map columns: Hugging Face datasets cannot read them (DuckDB, pandas and pyarrow can);
        # annotate the dict with the struct it is written as, as records.PiiCounts does
        raise TypeError(
            f"{hint} would be a Parquet map column, which datasets cannot load: "
            "give it a struct type with Annotated[dict[...], pa.struct([...])]"
        )
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
    return pa.schema(doc_fields + list(schema_of(records.RejectReason)))


def index_schema() -> pa.Schema:
    """Schema of ``dedup_index/`` (:class:`IndexRow`)."""
    return schema_of(records.IndexRow)


def schema_variant(cls: type, overrides: dict[str, pa.DataType]) -> pa.Schema:
    """``schema_of(cls)`` with the types of some fields replaced, nullability and order kept.

    For a narrower physical type chosen at run time (uint16 token ids when the vocabulary fits)
    without writing a second schema by hand. Naming a field the dataclass lacks is an error.
    """
    base = schema_of(cls)
    unknown = set(overrides) - set(base.names)
    if unknown:
        raise KeyError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return pa.schema([f.with_type(overrides[f.name]) if f.name in overrides else f for f in base])


def token_id_type(vocab_size: int) -> pa.DataType:
    """uint16 when every id fits (halves the size of sequences/), else the declared int32."""
    return pa.uint16() if vocab_size <= 1 << 16 else pa.int32()


def sequence_schema(vocab_size: int | None = None, packed: bool = False) -> pa.Schema:
    """Schema of ``sequences/``: :class:`SequenceRow` (or :class:`PackedRow` when packing), with
    ``input_ids`` narrowed to uint16 when ``vocab_size`` fits."""
    cls = records.PackedRow if packed else records.SequenceRow
    if vocab_size is None:
        return schema_of(cls)
    return schema_variant(cls, {"input_ids": pa.list_(token_id_type(vocab_size))})
