"""The ranking section of the config: its keys, and their validation (names, URLs, patterns)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from digest.exceptions import ConfigError
from digest.models import Story
from digest.normalize import canonical_url
from digest.schema import setting

THIN_DAY_POLICIES = ("send", "skip")
Fail = Callable[[tuple[str | int, ...], str], ConfigError]


@dataclass(frozen=True, slots=True)
class Rule:
    """A keyword, phrase or ``/regex/`` and the factor it multiplies a matching score by."""

    pattern: str
    regex: re.Pattern[str]
    factor: float = 1.0

    def matches(self, story: Story) -> bool:
        return bool(self.regex.search(f"{story.title}\n{story.teaser}"))


@dataclass(frozen=True, slots=True)
class Pin:
    """A URL that is always in the edition; ``position`` 1 is the lead, 0 is "by score"."""

    url: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class RankingSettings:
    """The ``ranking`` section; check_ranking casefolds names, canonicalises URLs, compiles."""

    max_stories: int = setting(12, "Stories per edition.")
    half_life_hours: float = setting(12.0, "A story's recency score halves this often.")
    max_age_hours: float = setting(72.0, "Freshness cut-off (pins excepted).")
    coverage_weight: float = setting(0.5, "Each other source carrying a story adds this.")
    section_weights: Mapping[str, float] = setting(doc="Section -> factor.", factory=dict)
    section_quotas: Mapping[str, int] = setting(doc="Section -> at most N stories.", factory=dict)
    section_order: tuple[str, ...] = setting((), "Sections in this order after the lead.")
    max_per_source: int = setting(0, "At most N stories per source (0: no limit).")
    diversity: float = setting(0.7, "Share of shared headline words that is a near-duplicate.")
    events: float = setting(0.14, "Similarity that makes stories one event (0: off).")
    event_window_hours: float = setting(48.0, "Stories further apart are never one event.")
    event_pool: int = setting(500, "Group events among this many best-scored stories (0: all).")
    boost: tuple[Rule, ...] = setting((), "Pattern -> factor >= 1.", accepts=(dict,))
    bury: tuple[Rule, ...] = setting((), "Pattern -> factor between 0 and 1.", accepts=(dict,))
    pins: tuple[Pin, ...] = setting((), "Stories always in.", accepts=(list,))
    block_urls: frozenset[str] = setting(frozenset(), "Stories never in, by URL.")
    block_sources: frozenset[str] = setting(frozenset(), "Sources never in, by name.")
    block_patterns: tuple[Rule, ...] = setting((), "Patterns never in.", accepts=(list,))
    min_stories: int = setting(1, "Fewer kept stories make a thin day.")
    thin_day_policy: str = setting("send", "send or skip on a thin day.")
    lead_in_every_variant: bool = setting(True, "The lead opens every topic variant.")


_DEFAULTS = RankingSettings()


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/…/`` is a regular expression; anything else a word or phrase on word boundaries.

    Both match case-insensitively. Raises ``re.error`` for a bad expression.
    """
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.compile(pattern[1:-1], re.IGNORECASE)
    words = r"\s+".join(re.escape(w) for w in pattern.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def check_ranking(ranking: dict[str, Any], error: Fail) -> RankingSettings:
    """Validate the ranking section (already type-checked by the config loader).

    ``error(path, message)`` makes the ConfigError naming file:line of ``path``. Keys not
    given take their defaults.
    """
    out = {f.name: getattr(_DEFAULTS, f.name) for f in dataclasses.fields(RankingSettings)}
    out.update(ranking)

    def fail(key: str | tuple[str | int, ...], message: str) -> ConfigError:
        path = ("ranking", *((key,) if isinstance(key, str) else key))
        return error(path, f"ranking.{path[1]}: {message}")

    positive = ("half_life_hours", "event_window_hours")
    for key in ("max_age_hours", "coverage_weight", "diversity", "events", *positive):
        out[key] = float(out[key])
        if out[key] < 0 or (key in positive and out[key] == 0):
            raise fail(key, "must be a positive number")
    if out["max_stories"] < 1:
        raise fail("max_stories", "must be at least 1")
    if out["diversity"] > 1:
        raise fail("diversity", "is a share of words between 0 (off) and 1")
    if out["events"] > 1:
        raise fail("events", "is a similarity between 0 (off) and 1 (identical)")
    if out["event_pool"] < 0:
        raise fail("event_pool", "must be 0 (every story) or more")
    if out["max_per_source"] < 0:
        raise fail("max_per_source", "must be 0 (no limit) or more")
    if not 0 <= out["min_stories"] <= out["max_stories"]:
        raise fail("min_stories", f"must be between 0 and max_stories ({out['max_stories']})")
    if out["thin_day_policy"] not in THIN_DAY_POLICIES:
        raise fail("thin_day_policy", f"must be skip or send, not {out['thin_day_policy']!r}")
    out["section_weights"] = _numbers("section_weights", out["section_weights"], fail)
    quotas = _numbers("section_quotas", out["section_quotas"], fail)
    for name, value in quotas.items():
        if value != int(value):
            raise fail(("section_quotas", name), f"{name}: the quota must be a whole number")
    out["section_quotas"] = {k: int(v) for k, v in quotas.items()}
    out["section_order"] = tuple(_strings(list(out["section_order"]), "section_order", fail))
    out["block_sources"] = frozenset(
        s.casefold() for s in _strings(list(out["block_sources"]), "block_sources", fail)
    )
    out["block_urls"] = frozenset(
        _url(u, ("block_urls", i), fail)
        for i, u in enumerate(_strings(list(out["block_urls"]), "block_urls", fail))
    )
    out["block_patterns"] = tuple(
        _rule(p, 0.0, ("block_patterns", i), fail)
        for i, p in enumerate(_strings(list(out["block_patterns"]), "block_patterns", fail))
    )
    rules: dict[str, tuple[Rule, ...]] = {}
    for key, low, high in (("boost", 1.0, math.inf), ("bury", 0.0, 1.0)):
        found = []
        given = out[key] if isinstance(out[key], dict) else {}  # the default is ()
        for pattern, factor in given.items():
            if isinstance(factor, bool) or not isinstance(factor, int | float):
                raise fail((key, pattern), f"{pattern!r}: the factor must be a number")
            if not low <= factor <= high:
                other = "bury" if key == "boost" else "boost"
                raise fail(
                    (key, pattern),
                    f"{pattern!r}: a {key} factor must be between {low:g} and {high:g} "
                    f"(use ranking.{other} for {factor:g})",
                )
            found.append(_rule(pattern, float(factor), (key, pattern), fail))
        rules[key] = tuple(found)
    out.update(rules)
    out["pins"] = _pins(list(out["pins"]), out["max_stories"], out["block_urls"], fail)
    return RankingSettings(**out)


def _numbers(key: str, data: dict[str, Any], fail: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise fail((key, name), f"{name}: must be a number of 0 or more, not {value!r}")
        out[name.casefold()] = float(value)
    return out


def _strings(data: list[Any], key: str, fail: Any) -> list[str]:
    for i, value in enumerate(data):
        if not isinstance(value, str) or not value.strip():
            raise fail((key, i), f"entry {i + 1} must be a non-empty string, not {value!r}")
    return [v.strip() for v in data]


def _url(value: str, where: tuple[str | int, ...], fail: Any) -> str:
    if not re.match(r"https?://", value, re.IGNORECASE):
        raise fail(where, f"{value!r} is not an http(s) URL")
    return canonical_url(value)


def _rule(pattern: str, factor: float, where: tuple[str | int, ...], fail: Any) -> Rule:
    try:
        return Rule(pattern, compile_pattern(pattern), factor)
    except re.error as exc:
        raise fail(where, f"{pattern!r} is not a valid regular expression: {exc}") from None


def _pins(data: list[Any], limit: int, blocked: frozenset[str], fail: Any) -> tuple[Pin, ...]:
    pins: list[Pin] = []
    for i, raw in enumerate(data):
        entry = {"url": raw} if isinstance(raw, str) else raw
        if not isinstance(entry, dict) or set(entry) - {"url", "position"} or "url" not in entry:
            raise fail(("pins", i), "each pin is a URL or a mapping with url and position")
        position = entry.get("position", 0)
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise fail(("pins", i, "position"), "position must be a whole number (1 is the lead)")
        if position > limit:
            raise fail(("pins", i, "position"), f"position {position} is past max_stories")
        url = _url(str(entry["url"]), ("pins", i), fail)
        if url in blocked:
            raise fail(("pins", i), f"{url} is both pinned and in ranking.block_urls")
        if any(p.url == url for p in pins):
            raise fail(("pins", i), f"{url} is pinned twice")
        if position and any(p.position == position for p in pins):
            raise fail(("pins", i, "position"), f"two pins at position {position}")
        pins.append(Pin(url, position))
    if len(pins) > limit:
        raise fail("pins", f"{len(pins)} pins but max_stories is {limit}")
    return tuple(pins)
