"""How a record's fields become JSON and back, declared per field.

A record declares its fields in the order they appear in JSON; ``json_field(read=…)`` says how a field's JSON
becomes its typed value (``null`` stays None), ``json_field(v1=…)`` what a version-1 row that lacks the field
(written before the field existed) reads as. A field without ``v1`` is required.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, field, fields
from typing import Any, TypeVar

from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.errors import DataError

T = TypeVar("T")

_REQUIRED = object()


def json_field(read: Callable[[Any], Any] | None = None, v1: Any = _REQUIRED, default: Any = MISSING):
    return field(default=default, metadata={"read": read, "v1": v1})


def as_json(value):
    """A typed value as JSON: records by their ``to_json``, tuples as lists."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


def fields_to_json(record) -> dict:
    return {f.name: as_json(getattr(record, f.name)) for f in fields(record)}


def fields_from_json(cls: type[T], data: Mapping, where: str) -> T:
    values = {}
    for f in fields(cls):
        if f.name not in data:
            if f.metadata.get("v1", _REQUIRED) is _REQUIRED:
                raise DataError(f"{where}.{f.name} is missing")
            values[f.name] = f.metadata["v1"]
            continue
        value, read = data[f.name], f.metadata.get("read")
        values[f.name] = read(value) if read is not None and value is not None else value
    return cls(**values)


def tuple_of(read: Callable[[Any], T]) -> Callable[[Sequence], tuple[T, ...]]:
    return lambda values: tuple(read(v) for v in values)


def typed_list(key: str) -> Callable[[Any], tuple[TypedConstraint, ...]]:
    """The reader of ``meta.<key>``: a list of typed constraints as ``{"id", "kwargs"}`` objects."""
    def read(listed) -> tuple[TypedConstraint, ...]:
        if not isinstance(listed, list):
            raise ValueError(f"meta.{key} must be a list of {{id, kwargs}} objects")
        return tuple(TypedConstraint.from_json(c) for c in listed)
    return read
