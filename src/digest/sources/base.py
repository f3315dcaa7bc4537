"""The source contract, and the loader that finds source kinds by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar

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
      (weight, section, max_items, allow_private) plus the kind's own ``options``; an unknown
      option raises ConfigError naming the source.
    - ``parse()`` is pure: it gets the response and returns at most ``max_items`` stories,
      normalised (canonical URL, plain-text title and teaser, aware UTC time). It never does
      I/O; fetching belongs to the collector and the hardened client in digest.http.
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

    @abstractmethod
    def parse(self, fetched: Fetched) -> list[Story]:
        """Stories found in ``fetched``; see the class docstring."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.url}>"


def source_kinds() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_source(kind: str, **kwargs: Any) -> Source:
    """Build a source of the registered ``kind``; an unknown kind lists the valid ones."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if kind not in eps:
        raise ConfigError(f"unknown source kind {kind!r}; valid kinds: {', '.join(sorted(eps))}")
    cls = eps[kind].load()
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise ConfigError(f"source kind {kind!r} ({eps[kind].value}) is not a digest Source")
    source: Source = cls(**kwargs)
    return source
