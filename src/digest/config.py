"""Load digest.yaml into validated, frozen settings; every error names file:line and key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.yamlsrc import Located, load_yaml

DEFAULT_CONFIG = "digest.yaml"

# Each section: key -> (type, default). ``...`` marks a required key. The README's
# configuration reference is checked against this table by tests/test_docs.py.
_Spec = dict[str, tuple[type | tuple[type, ...], Any]]

SCHEMA: dict[str, _Spec] = {
    "publication": {
        "name": (str, ...),
        "sender": (str, ...),
        "base_url": (str, ...),
        "postal_address": (str, ""),
        "reply_to": (str, ""),
        "domain": (str, ""),
        "list_id": (str, ""),
        "language": (str, "en"),
        "timezone": (str, "UTC"),
    },
    "source": {
        "name": (str, ...),
        "url": (str, ...),
        "kind": (str, "feed"),
        "weight": ((int, float), 1.0),
        "section": (str, ""),
        "max_items": (int, 20),
        "allow_private": (bool, False),
        "options": (dict, {}),
    },
    "ranking": {
        "max_stories": (int, 12),
        "half_life_hours": ((int, float), 12.0),
        "max_age_hours": ((int, float), 72.0),
    },
    "email": {
        "subject": (str, "{{ publication.name }}: {{ lead.title }}"),
        "preheader": (str, "{{ lead.teaser }}"),
        "teaser_length": (int, 300),
        "unsubscribe_mailto": (str, ""),
        "headers": (dict, {}),
    },
    "backend": {
        "name": (str, "outbox"),
        "options": (dict, {}),
    },
    "fetch": {
        "timeout": ((int, float), 10.0),
        "max_bytes": (int, 5_000_000),
        "retries": (int, 2),
        "concurrency": (int, 8),
    },
    "schedule": {
        "time": (str, "07:00"),
        "timezone": (str, ""),
        "lead_minutes": (int, 60),
    },
    "approval": {
        "auto_approve": (bool, False),
    },
    "top": {
        "publication": (dict, ...),
        "subscribers": (str, "subscribers.yaml"),
        "sources": (list, ...),
        "ranking": (dict, {}),
        "email": (dict, {}),
        "backend": (dict, {}),
        "fetch": (dict, {}),
        "schedule": (dict, {}),
        "approval": (dict, {}),
        "templates_dir": (str, ""),
        "state_path": (str, ".digest/digest.db"),
        "preview_dir": (str, ".digest/preview"),
        "secret_env": (str, "DIGEST_SECRET"),
    },
}


@dataclass(frozen=True, slots=True)
class PublicationSettings:
    name: str
    sender: str
    base_url: str
    postal_address: str = ""
    reply_to: str = ""
    domain: str = ""
    list_id: str = ""
    language: str = "en"
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class SourceSettings:
    name: str
    url: str
    kind: str = "feed"
    weight: float = 1.0
    section: str = ""
    max_items: int = 20
    allow_private: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankingSettings:
    max_stories: int = 12
    half_life_hours: float = 12.0
    max_age_hours: float = 72.0


@dataclass(frozen=True, slots=True)
class EmailSettings:
    subject: str = "{{ publication.name }}: {{ lead.title }}"
    preheader: str = "{{ lead.teaser }}"
    teaser_length: int = 300
    unsubscribe_mailto: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendSettings:
    name: str = "outbox"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout: float = 10.0
    max_bytes: int = 5_000_000
    retries: int = 2
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    time: time
    timezone: str
    lead_minutes: int = 60


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    auto_approve: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration. Relative paths are resolved against the file."""

    path: Path
    publication: PublicationSettings
    sources: tuple[SourceSettings, ...]
    subscribers_path: Path
    ranking: RankingSettings
    email: EmailSettings
    backend: BackendSettings
    fetch: FetchConfig
    schedule: ScheduleSettings
    approval: ApprovalSettings
    templates_dir: Path | None
    state_path: Path
    preview_dir: Path
    secret_env: str


def load_settings(path: Path) -> Settings:
    """Read and validate the config file at ``path``."""
    doc = load_yaml(
        path, hint="; copy digest.example.yaml there, or pass --config / set DIGEST_CONFIG"
    )
    if not isinstance(doc.value, dict):
        raise doc.error((), "the config must be a mapping of sections (see digest.example.yaml)")
    top = _section(doc, (), doc.value, "top")
    base = path.resolve().parent
    pub = _section(doc, ("publication",), top["publication"], "publication")
    _check_tz(doc, ("publication", "timezone"), pub["timezone"])
    if not re.match(r"https?://", pub["base_url"]):
        raise doc.error(("publication", "base_url"), "publication.base_url must be an http(s) URL")
    sources = []
    names: set[str] = set()
    for i, raw in enumerate(top["sources"]):
        if not isinstance(raw, dict):
            raise doc.error(("sources", i), "each source must be a mapping with name and url")
        src = _section(doc, ("sources", i), raw, "source")
        if src["name"] in names:
            raise doc.error(("sources", i, "name"), f"duplicate source name {src['name']!r}")
        names.add(src["name"])
        src["weight"] = float(src["weight"])
        sources.append(SourceSettings(**src))
    if not sources:
        raise doc.error(("sources",), "sources is empty; add at least one feed")
    sched = _section(doc, ("schedule",), top["schedule"], "schedule")
    sched["time"] = _parse_time(doc, sched["time"])
    sched["timezone"] = sched["timezone"] or pub["timezone"]
    _check_tz(doc, ("schedule", "timezone"), sched["timezone"])
    ranking = _section(doc, ("ranking",), top["ranking"], "ranking")
    if ranking["max_stories"] < 1:
        raise doc.error(("ranking", "max_stories"), "ranking.max_stories must be at least 1")
    email = _section(doc, ("email",), top["email"], "email")
    for key, value in email["headers"].items():
        if not isinstance(value, str) or any(c in f"{key}{value}" for c in "\r\n"):
            raise doc.error(("email", "headers", key), f"header {key!r} must be one line of text")
    templates_dir = base / top["templates_dir"] if top["templates_dir"] else None
    return Settings(
        path=path,
        publication=PublicationSettings(**pub),
        sources=tuple(sources),
        subscribers_path=base / top["subscribers"],
        ranking=RankingSettings(**ranking),
        email=EmailSettings(**email),
        backend=BackendSettings(**_section(doc, ("backend",), top["backend"], "backend")),
        fetch=FetchConfig(**_section(doc, ("fetch",), top["fetch"], "fetch")),
        schedule=ScheduleSettings(**sched),
        approval=ApprovalSettings(**_section(doc, ("approval",), top["approval"], "approval")),
        templates_dir=templates_dir,
        state_path=base / top["state_path"],
        preview_dir=base / top["preview_dir"],
        secret_env=top["secret_env"],
    )


def _section(
    doc: Located, path: tuple[str | int, ...], data: Any, spec_name: str
) -> dict[str, Any]:
    spec = SCHEMA[spec_name]
    where = ".".join(str(p) for p in path) or "the top level"
    if not isinstance(data, dict):
        raise doc.error(path, f"{where} must be a mapping")
    for key in data:
        if key not in spec:
            close = difflib.get_close_matches(key, spec, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise doc.error(
                (*path, key),
                f"unknown key {key!r} in {where}{hint} (valid: {', '.join(sorted(spec))})",
            )
    out: dict[str, Any] = {}
    for key, (kind, default) in spec.items():
        if key not in data or data[key] is None:
            if default is ...:
                raise doc.error(path, f"missing required key {key!r} in {where}")
            out[key] = default.copy() if isinstance(default, dict) else default
            continue
        value = data[key]
        # bool is an int in Python; a "max_items: yes" typo must not pass as 1.
        bad = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if bad:
            names = kind.__name__ if isinstance(kind, type) else "number"
            # YAML 1.1 reads 07:00 as the number 420: tell the user to quote it.
            hint = " (put it in quotes)" if kind is str and isinstance(value, int | float) else ""
            raise doc.error((*path, key), f"{key} must be a {names}, not {value!r}{hint}")
        out[key] = value
    return out


def _check_tz(doc: Located, path: tuple[str | int, ...], name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.error(path, f"unknown time zone {name!r} (use an IANA name)") from None


def _parse_time(doc: Located, value: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not match:
        raise doc.error(("schedule", "time"), f"schedule.time must be HH:MM, not {value!r}")
    return time(int(match.group(1)), int(match.group(2)))
