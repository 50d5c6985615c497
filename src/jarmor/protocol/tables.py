"""Strict reading of configuration tables into typed dataclasses (``[settings]``, ``[policy.tiers.NAME]``).

A typo must never weaken the configuration silently: an unknown key is an error naming it and the nearest
valid one, and every value must have its field's declared type (a TOML string where a number is expected is
refused, not converted) and lie in its range (numbers are never negative; fields in ``minimums`` have a
larger floor, fields in ``maximums`` a ceiling). The checks read the dataclass's own annotations, so a field added later is checked too.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class TableError(ValueError):
    """A configuration table has an unknown key or a value of the wrong type or range."""


def nearest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` when a known name is close to ``name``, else an empty string."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_keys(section: str, table: Mapping[str, Any], known: Collection[str]) -> None:
    for key in sorted(set(table) - set(known)):
        raise TableError(f"{section}: unknown key {key[:64]!r}{nearest(key, known)}")


def _describe(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return " or ".join(repr(v) for v in get_args(kind))
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _conforms(value: Any, kind: Any) -> bool:
    origin = get_origin(kind)
    if kind is Any:
        return True
    if origin is Literal:  # one of the listed values, of the same type (True is not 1)
        return any(type(value) is type(v) and value == v for v in get_args(kind))
    if origin in (Union, types.UnionType):
        return any(_conforms(value, k) for k in get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str)
    if origin in (frozenset, tuple, list, set) or kind in (frozenset, tuple):
        item = get_args(kind)[0] if get_args(kind) else Any
        return isinstance(value, list | tuple) and all(_conforms(v, item) for v in value)
    if origin in (dict, Mapping, typing.Mapping):
        k, v = get_args(kind) or (Any, Any)
        return isinstance(value, dict) and all(_conforms(a, k) and _conforms(b, v) for a, b in value.items())
    return isinstance(value, kind) if isinstance(kind, type) else False


def check_table(
    section: str,
    table: Mapping[str, Any],
    cls: type,
    *,
    exclude: Collection[str] = (),
    minimums: Mapping[str, float] | None = None,
    maximums: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``table`` checked against the fields of dataclass ``cls`` (minus ``exclude``); returns the values
    converted to the field types (TOML arrays to ``frozenset`` / ``tuple``)."""
    hints = get_type_hints(cls)
    declared = {f.name: f for f in fields(cls) if f.name not in exclude}
    check_keys(section, table, declared)
    out: dict[str, Any] = {}
    for key, value in table.items():
        kind = hints[key]
        if isinstance(kind, type) and is_dataclass(kind):
            # a nested table (``authentication = {acr = "aal2"}``), checked against its own dataclass
            if not isinstance(value, dict):
                raise TableError(f"{section}: {key} must be a table")
            out[key] = kind(**check_table(f"{section}.{key}", value, kind))
            continue
        if not _conforms(value, kind):
            raise TableError(f"{section}: {key} must be {_describe(kind)}")
        choices = declared[key].metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise TableError(f"{section}: {key} {str(value)[:64]!r} is not one of {', '.join(map(str, choices))}"
                             + nearest(str(value), choices))
        if isinstance(value, int | float) and not isinstance(value, bool):
            floor = (minimums or {}).get(key, 0)
            ceiling = (maximums or {}).get(key)
            if ceiling is not None and not floor <= value <= ceiling:
                raise TableError(f"{section}: {key} must be between {floor:g} and {ceiling:g}")
            if value < floor:
                raise TableError(f"{section}: {key} must be at least {floor:g}")
        origin = get_origin(kind) or kind
        if origin is frozenset:
            value = frozenset(value)
        elif origin is tuple:
            value = tuple(value)
        out[key] = value
    return out
