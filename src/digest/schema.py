"""The one settings schema: every config key is a dataclass field with its type, default, doc.

A settings class anywhere in digest declares its keys with ``setting()``; the config loader
derives the unknown-key check, the type checks and the defaults from those fields, and the
docs test derives the list of keys the README must document. Nothing repeats a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED: Any = dataclasses.MISSING
"""The default of a key that must be given."""


def setting(
    default: Any = REQUIRED,
    doc: str = "",
    *,
    accepts: tuple[type, ...] | None = None,
    key: str | None = None,
    factory: Any = None,
) -> Any:
    """A config key: its default (or a ``factory`` for mutable ones), a one-line ``doc``, the
    YAML types it ``accepts`` (derived from the annotation when omitted) and its YAML
    ``key`` when that differs from the field's name."""
    meta = {"doc": doc, "accepts": accepts, "key": key}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def internal(default: Any = REQUIRED, *, factory: Any = None) -> Any:
    """A field set by digest, never read from the config file."""
    if factory is not None:
        return field(default_factory=factory, metadata={"internal": True})
    return field(default=default, metadata={"internal": True})


@dataclass(frozen=True, slots=True)
class Key:
    """One config key of a settings class."""

    name: str  # the YAML key
    attr: str  # the dataclass field
    accepts: tuple[type, ...]
    required: bool
    doc: str
    annotation: Any

    def default(self, cls: type) -> Any:
        f = next(f for f in dataclasses.fields(cls) if f.name == self.attr)
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return f.default


def keys(cls: type) -> Iterator[Key]:
    """The config keys of the settings dataclass ``cls``, in declaration order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        annotation = hints[f.name]
        accepts = f.metadata.get("accepts") or yaml_types(annotation)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        name = f.metadata.get("key") or f.name
        yield Key(name, f.name, accepts, required, f.metadata.get("doc", ""), annotation)


def sections(cls: type) -> Iterator[tuple[str, type, bool]]:
    """Nested settings classes of ``cls``: (key, class, is a list of them)."""
    for key in keys(cls):
        inner, many = _unwrap(key.annotation)
        if is_settings(inner):
            yield key.name, inner, many


def is_settings(cls: Any) -> bool:
    """A dataclass declared with ``setting()``/``internal()`` fields (not plain data)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return False
    return all("doc" in f.metadata or "internal" in f.metadata for f in dataclasses.fields(cls))


def documented_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key a user can write, dotted: ``publication.name``, ``sources[].url``, ...

    A key holding a list of sections is listed itself and so are its keys; a key holding one
    section is listed by its keys only.
    """
    out: list[str] = []
    nested = {name: (inner, many) for name, inner, many in sections(cls)}
    for key in keys(cls):
        if key.name not in nested or nested[key.name][1]:
            out.append(prefix + key.name)
        if key.name in nested:
            inner, many = nested[key.name]
            out += documented_keys(inner, f"{prefix}{key.name}{'[]' if many else ''}.")
    return out


def yaml_types(annotation: Any) -> tuple[type, ...]:
    """Which YAML values a field of this type accepts (a float field takes ints too)."""
    inner, many = _unwrap(annotation)
    if many:
        return (list,)
    origin = typing.get_origin(inner) or inner
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return (dict,)
    if dataclasses.is_dataclass(origin):
        return (dict,)
    if origin is float:
        return (int, float)
    if origin in (str, int, bool):
        return (origin,)
    raise TypeError(f"give accepts= for a setting of type {annotation!r}")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(element type, is a sequence) of tuple[X, ...], frozenset[X] and X | None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    if origin in (tuple, frozenset, list):
        inner = typing.get_args(annotation)
        return (inner[0] if inner else Any), True
    return annotation, False
