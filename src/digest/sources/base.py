"""The source contract, and the loader that finds source kinds by name."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from digest.exceptions import ConfigError
from digest.models import Story

ENTRY_POINT_GROUP = "digest.sources"


@dataclass(frozen=True, slots=True)
class Fetched:
    """The bytes of one HTTP response, as handed to a source for parsing."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    fetched_at: datetime
    status: int = 200


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


def source_class(kind: str) -> type[Source]:
    """The class registered as ``kind``; an unknown kind lists the valid ones."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if kind not in eps:
        raise ConfigError(f"unknown source kind {kind!r}; valid kinds: {', '.join(sorted(eps))}")
    cls = eps[kind].load()
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise ConfigError(f"source kind {kind!r} ({eps[kind].value}) is not a digest Source")
    return cls


def load_source(kind: str, **kwargs: Any) -> Source:
    """Build a source of the registered ``kind``; an unknown kind lists the valid ones."""
    return source_class(kind)(**kwargs)


def load_sources(configs: Iterable[SourceConfig], *, teaser_length: int = 300) -> list[Source]:
    """One source per config entry; each plug-in is looked up once, however many use it."""
    classes: dict[str, type[Source]] = {}
    out = []
    for c in configs:
        if c.kind not in classes:
            classes[c.kind] = source_class(c.kind)
        out.append(classes[c.kind](
            name=c.name, url=c.url, weight=c.weight, section=c.section, max_items=c.max_items,
            allow_private=c.allow_private, include=c.include, exclude=c.exclude,
            teaser_length=teaser_length, **dict(c.options),
        ))  # fmt: skip
    return out
