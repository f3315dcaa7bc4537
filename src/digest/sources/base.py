"""The source contract, and the loader that finds source kinds by name."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol

from digest.charsets import Decoded
from digest.exceptions import ConfigError
from digest.models import Story

ENTRY_POINT_GROUP = "digest.sources"


@dataclass(frozen=True, slots=True)
class Fetched:
    """The bytes of one HTTP response, as handed to a source for parsing.

    A source appends to ``fallbacks`` what it had to guess (recorded in the source's
    health, e.g. "encoding guessed: cp1252") and to ``warnings`` what the editor should see
    in this run's warnings (e.g. characters that could not be decoded).
    """

    url: str
    body: bytes
    headers: Mapping[str, str]
    fetched_at: datetime
    status: int = 200
    fallbacks: list[str] = field(default_factory=list, compare=False)
    warnings: list[str] = field(default_factory=list, compare=False)

    def fallback(self, note: str) -> None:
        """Record ``note`` once."""
        if note not in self.fallbacks:
            self.fallbacks.append(note)

    def warn(self, note: str) -> None:
        """Warn ``note`` once."""
        if note not in self.warnings:
            self.warnings.append(note)

    def decoded(self, result: Decoded) -> str:
        """Record how the body's charset was found (a guess, lost bytes); its text."""
        if result.guessed:
            self.fallback(result.note())
        if result.lost:
            self.warn(
                f"{result.lost} byte(s) of {self.url} fit no character encoding and show"
                " as \ufffd; ask the publisher to serve UTF-8"
            )
        return result.text


class Source(ABC):
    """Turns the fetched bytes of one URL into normalised stories.

    Contract:
    - The constructor is keyword-only: ``name``, ``url`` and the common options
      (weight, section, max_items, allow_private, include, exclude) plus the kind's own
      ``options``; an unknown option raises ConfigError naming the source.
    - ``parse()`` is pure: it gets the response and returns at most ``max_items`` stories,
      normalised (canonical URL, plain-text title and teaser, aware UTC time), passed through
      ``select()`` (include/exclude patterns, then max_items). It never does I/O; fetching
      belongs to the collector and the hardened client in digest.http.
    - It raises SourceError (naming the source and what is wrong) when the body is not
      something this kind understands. It must never let hostile markup into a story.
    """

    kind: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        *,
        name: str,
        url: str,
        weight: float = 1.0,
        section: str = "",
        max_items: int = 20,
        allow_private: bool = False,
        teaser_length: int = 300,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            raise ConfigError(
                f"source {name!r} ({self.kind}): unknown option(s) {', '.join(unknown)}"
            )
        self.name = name
        self.url = url
        self.weight = weight
        self.section = section
        self.max_items = max_items
        self.allow_private = allow_private
        self.teaser_length = teaser_length
        self.extra: dict[str, Any] = dict(options)
        self.include = _patterns(name, "include", include)
        self.exclude = _patterns(name, "exclude", exclude)

    def select(self, stories: Iterable[Story]) -> list[Story]:
        """Stories matching an include pattern (if any) and no exclude one, at most max_items.

        Patterns are case-insensitive regular expressions searched in title, teaser and
        section, so a plain keyword works as it is.
        """
        kept: list[Story] = []
        for story in stories:
            text = f"{story.title}\n{story.teaser}\n{story.section}"
            if self.include and not any(p.search(text) for p in self.include):
                continue
            if any(p.search(text) for p in self.exclude):
                continue
            kept.append(story)
            if len(kept) >= self.max_items:
                break
        return kept

    @abstractmethod
    def parse(self, fetched: Fetched) -> list[Story]:
        """Stories found in ``fetched``; see the class docstring."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.url}>"


def _patterns(name: str, key: str, values: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    if isinstance(values, str):
        values = [values]
    out = []
    for value in values:
        try:
            out.append(re.compile(str(value), re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(
                f"source {name!r}: {key} pattern {value!r} is invalid ({exc})"
            ) from exc
    return tuple(out)


class SourceConfig(Protocol):
    """What one configured source says (config.SourceSettings has these fields)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def section(self) -> str: ...
    @property
    def max_items(self) -> int: ...
    @property
    def allow_private(self) -> bool: ...
    @property
    def include(self) -> Sequence[str]: ...
    @property
    def exclude(self) -> Sequence[str]: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


_registry: dict[str, EntryPoint] = {}
_classes: dict[str, type[Source]] = {}
_registry_lock = threading.Lock()


def source_class(kind: str) -> type[Source]:
    """The Source class registered as ``kind``; an unknown kind lists the valid ones.

    Entry points are scanned and each kind is imported once per process: scanning the
    installed distributions costs milliseconds, which a thousand sources would pay each.
    """
    with _registry_lock:
        if not _registry:
            _registry.update((ep.name, ep) for ep in entry_points(group=ENTRY_POINT_GROUP))
        cls = _classes.get(kind)
        if cls is not None:
            return cls
        if kind not in _registry:
            valid = ", ".join(sorted(_registry))
            raise ConfigError(f"unknown source kind {kind!r}; valid kinds: {valid}")
        loaded = _registry[kind].load()
        if not (isinstance(loaded, type) and issubclass(loaded, Source)):
            value = _registry[kind].value
            raise ConfigError(f"source kind {kind!r} ({value}) is not a digest Source")
        _classes[kind] = loaded
        return loaded


def load_source(kind: str, **kwargs: Any) -> Source:
    """Build a source of the registered ``kind``; an unknown kind lists the valid ones."""
    return source_class(kind)(**kwargs)


def load_sources(configs: Iterable[SourceConfig], *, teaser_length: int = 300) -> list[Source]:
    """One source per config entry; each plug-in is looked up once per process."""
    out = []
    for c in configs:
        out.append(
            source_class(c.kind)(
                name=c.name,
                url=c.url,
                weight=c.weight,
                section=c.section,
                max_items=c.max_items,
                allow_private=c.allow_private,
                include=c.include,
                exclude=c.exclude,
                teaser_length=teaser_length,
                **dict(c.options),
            )
        )
    return out
