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

from digest.exceptions import ConfigError
from digest.rank import Pin, Rule
from digest.rankconfig import check_ranking
from digest.render.links import check_utm
from digest.slots import parse_days
from digest.yamlsrc import Located, load_yaml

DEFAULT_CONFIG = "digest.yaml"
TimeOfDay = time  # ScheduleSettings has a field named ``time``

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
        "include": (list, []),
        "exclude": (list, []),
        "options": (dict, {}),
    },
    "ranking": {
        "max_stories": (int, 12),
        "half_life_hours": ((int, float), 12.0),
        "max_age_hours": ((int, float), 72.0),
        "coverage_weight": ((int, float), 0.5),
        "section_weights": (dict, {}),
        "section_quotas": (dict, {}),
        "section_order": (list, []),
        "max_per_source": (int, 0),
        "diversity": ((int, float), 0.7),
        "boost": (dict, {}),
        "bury": (dict, {}),
        "pins": (list, []),
        "block_urls": (list, []),
        "block_sources": (list, []),
        "block_patterns": (list, []),
        "min_stories": (int, 1),
        "thin_day_policy": (str, "send"),
        "lead_in_every_variant": (bool, True),
    },
    "email": {
        "subject": (str, "{{ publication.name }}: {{ lead.title }}"),
        "preheader": (str, "{{ lead.teaser }}"),
        "teaser_length": (int, 300),
        "unsubscribe_mailto": (str, ""),
        "headers": (dict, {}),
        "utm": (dict, {}),
        "feedback_id": (str, ""),
        "dkim_key_path": (str, ""),
        "dkim_selector": (str, ""),
        "dkim_domain": (str, ""),
        "html_budget": (int, 102_000),
    },
    "backend": {
        "name": (str, "outbox"),
        "options": (dict, {}),
    },
    "fetch": {
        "timeout": ((int, float), 10.0),
        "deadline": ((int, float), 30.0),
        "max_bytes": (int, 5_000_000),
        "retries": (int, 2),
        "concurrency": (int, 32),
        "per_host": (int, 4),
        "failure_alert": (int, 3),
    },
    "schedule": {
        "time": ((str, list), "07:00"),
        "timezone": (str, ""),
        "days": (str, "*"),
        "lead_minutes": (int, 60),
        "max_lateness_minutes": (int, 120),
        "deliver_at": (str, ""),
        "quiet_hours": (str, ""),
        "tick_seconds": (int, 60),
    },
    "approval": {
        "auto_approve": (bool, False),
        "editors": (list, []),
        "approvals_needed": (int, 1),
        "deadline_minutes": (int, 0),
        "at_deadline": (str, "skip"),
        "link_hours": ((int, float), 24.0),
        "password_hash_env": (str, "DIGEST_EDITOR_PASSWORD_HASH"),
        "signin_token_env": (str, "DIGEST_EDITOR_TOKEN"),
    },
    "send": {
        "connections": (int, 4),
        "in_doubt": (str, "resend"),
        "rate_per_second": (int, 0),
        "window_messages": (int, 0),
        "window_seconds": ((int, float), 3600.0),
        "retry_base_seconds": ((int, float), 30.0),
        "retry_max_seconds": ((int, float), 900.0),
        "retry_in_run_seconds": ((int, float), 600.0),
        "retry_deadline_hours": ((int, float), 24.0),
        "lock_ttl_seconds": ((int, float), 60.0),
    },
    "top": {
        "publication": (dict, ...),
        "subscribers": (str, "subscribers.yaml"),
        "sources": (list, ...),
        "ranking": (dict, {}),
        "email": (dict, {}),
        "backend": (dict, {}),
        "send": (dict, {}),
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
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankingSettings:
    """Validated by rank.check_ranking: names casefolded, URLs canonical, patterns compiled."""

    max_stories: int = 12
    half_life_hours: float = 12.0
    max_age_hours: float = 72.0
    coverage_weight: float = 0.5
    section_weights: Mapping[str, float] = field(default_factory=dict)
    section_quotas: Mapping[str, int] = field(default_factory=dict)
    section_order: tuple[str, ...] = ()
    max_per_source: int = 0
    diversity: float = 0.7
    boost: tuple[Rule, ...] = ()
    bury: tuple[Rule, ...] = ()
    pins: tuple[Pin, ...] = ()
    block_urls: frozenset[str] = frozenset()
    block_sources: frozenset[str] = frozenset()
    block_patterns: tuple[Rule, ...] = ()
    min_stories: int = 1
    thin_day_policy: str = "send"
    lead_in_every_variant: bool = True


@dataclass(frozen=True, slots=True)
class EmailSettings:
    subject: str = "{{ publication.name }}: {{ lead.title }}"
    preheader: str = "{{ lead.teaser }}"
    teaser_length: int = 300
    unsubscribe_mailto: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    utm: Mapping[str, str] = field(default_factory=dict)
    feedback_id: str = ""
    dkim_key_path: Path | None = None
    dkim_selector: str = ""
    dkim_domain: str = ""
    html_budget: int = 102_000


@dataclass(frozen=True, slots=True)
class BackendSettings:
    name: str = "outbox"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendSettings:
    """How the engine sends (digest.send); limits of 0 mean unlimited."""

    connections: int = 4
    in_doubt: str = "resend"
    rate_per_second: int = 0
    window_messages: int = 0
    window_seconds: float = 3600.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 900.0
    retry_in_run_seconds: float = 600.0
    retry_deadline_hours: float = 24.0
    lock_ttl_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout: float = 10.0
    deadline: float = 30.0  # each source's whole exchange (connect..body, retries), seconds
    max_bytes: int = 5_000_000
    retries: int = 2
    concurrency: int = 32
    per_host: int = 4
    failure_alert: int = 3  # flag a source in the edition's warnings after this many failures


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    time: TimeOfDay  # the first of ``times``
    timezone: str
    lead_minutes: int = 60
    times: tuple[TimeOfDay, ...] = ()
    days: frozenset[int] = frozenset(range(7))
    max_lateness_minutes: int = 120
    local_delivery: bool = False  # deliver_at: "local": each reader at `time` in their zone
    quiet_hours: tuple[TimeOfDay, TimeOfDay] | None = None
    tick_seconds: int = 60


@dataclass(frozen=True, slots=True)
class EditorSettings:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class ApprovalSettings:
    auto_approve: bool = False
    editors: tuple[EditorSettings, ...] = ()
    approvals_needed: int = 1
    deadline_minutes: int = 0
    at_deadline: str = "skip"
    link_hours: float = 24.0
    # Names of environment variables, not secrets.
    password_hash_env: str = "DIGEST_EDITOR_PASSWORD_HASH"  # noqa: S105
    signin_token_env: str = "DIGEST_EDITOR_TOKEN"  # noqa: S105


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
    send: SendSettings
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
        for key in ("include", "exclude"):
            if not all(isinstance(p, str) and p for p in src[key]):
                raise doc.error(("sources", i, key), f"{key} must be a list of keyword patterns")
            src[key] = tuple(src[key])
        sources.append(SourceSettings(**src))
    if not sources:
        raise doc.error(("sources",), "sources is empty; add at least one feed")
    sched = _schedule(doc, _section(doc, ("schedule",), top["schedule"], "schedule"))
    sched["timezone"] = sched["timezone"] or pub["timezone"]
    _check_tz(doc, ("schedule", "timezone"), sched["timezone"])
    ranking = check_ranking(doc, _section(doc, ("ranking",), top["ranking"], "ranking"))
    email = _section(doc, ("email",), top["email"], "email")
    for key, value in email["headers"].items():
        if not isinstance(value, str) or any(c in f"{key}{value}" for c in "\r\n"):
            raise doc.error(("email", "headers", key), f"header {key!r} must be one line of text")
    _check_email_extras(doc, email, base)
    templates_dir = base / top["templates_dir"] if top["templates_dir"] else None
    return Settings(
        path=path,
        publication=PublicationSettings(**pub),
        sources=tuple(sources),
        subscribers_path=base / top["subscribers"],
        ranking=RankingSettings(**ranking),
        email=EmailSettings(**email),
        backend=BackendSettings(**_section(doc, ("backend",), top["backend"], "backend")),
        send=_send(doc, top["send"]),
        fetch=FetchConfig(**_section(doc, ("fetch",), top["fetch"], "fetch")),
        schedule=ScheduleSettings(**sched),
        approval=_approval(doc, top["approval"], sched["lead_minutes"]),
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
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = "number" if float in kinds else " or ".join(k.__name__ for k in kinds)
            # YAML 1.1 reads 7:30 as the number 450: tell the user to quote it.
            quote = str in kinds and isinstance(value, int | float)
            hint = " (put it in quotes)" if quote else ""
            raise doc.error((*path, key), f"{key} must be a {names}, not {value!r}{hint}")
        out[key] = value
    return out


def _approval(doc: Located, data: Any, lead_minutes: int) -> ApprovalSettings:
    approval = _section(doc, ("approval",), data, "approval")
    editors: list[EditorSettings] = []
    for i, raw in enumerate(approval["editors"]):
        where = ("approval", "editors", i)
        if not isinstance(raw, dict):
            raise doc.error(where, "each editor must be a mapping with name and email")
        # Not a SCHEMA section: the README documents editors as approval.editors.
        unknown = sorted(set(raw) - {"name", "email"})
        if unknown or not all(isinstance(raw.get(k), str) and raw[k] for k in ("name", "email")):
            raise doc.error(where, f"each editor needs exactly name and email (got {sorted(raw)})")
        editor = EditorSettings(name=raw["name"], email=raw["email"])
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", editor.email):
            raise doc.error((*where, "email"), f"{editor.email!r} is not an e-mail address")
        if editor.email.lower() in {e.email.lower() for e in editors}:
            raise doc.error((*where, "email"), f"editor {editor.email} is listed twice")
        editors.append(editor)
    approval["editors"] = tuple(editors)
    needed = approval["approvals_needed"]
    if needed < 1 or (editors and needed > len(editors)):
        raise doc.error(
            ("approval", "approvals_needed"),
            f"approval.approvals_needed must be between 1 and the number of editors "
            f"({len(editors)}), not {needed}",
        )
    if approval["at_deadline"] not in ("skip", "send"):
        raise doc.error(("approval", "at_deadline"), "approval.at_deadline must be skip or send")
    if not 0 <= approval["deadline_minutes"] < max(lead_minutes, 1):
        raise doc.error(
            ("approval", "deadline_minutes"),
            "approval.deadline_minutes must be at least 0 and less than schedule.lead_minutes "
            f"({lead_minutes}): the deadline falls between the build and the send time",
        )
    if approval["link_hours"] <= 0:
        raise doc.error(("approval", "link_hours"), "approval.link_hours must be positive")
    approval["link_hours"] = float(approval["link_hours"])
    return ApprovalSettings(**approval)


def _check_email_extras(doc: Located, email: dict[str, Any], base: Path) -> None:
    """UTM parameters, DKIM key settings and the HTML budget (the key file is read later)."""
    try:
        email["utm"] = check_utm(email["utm"])
    except ConfigError as exc:
        raise doc.error(("email", "utm"), str(exc)) from exc
    if email["dkim_key_path"]:
        if not email["dkim_selector"]:
            raise doc.error(("email", "dkim_key_path"), "DKIM needs email.dkim_selector too")
        email["dkim_key_path"] = base / email["dkim_key_path"]
    else:
        email["dkim_key_path"] = None
    if email["html_budget"] < 1:
        raise doc.error(("email", "html_budget"), "email.html_budget must be a positive number")


def _send(doc: Located, data: Any) -> SendSettings:
    values = _section(doc, ("send",), data, "send")
    if values["in_doubt"] not in ("resend", "skip"):
        raise doc.error(("send", "in_doubt"), "send.in_doubt must be resend or skip")
    for key in ("connections", "window_seconds", "lock_ttl_seconds"):
        if values[key] <= 0:
            raise doc.error(("send", key), f"send.{key} must be positive")
    for key in ("rate_per_second", "window_messages", "retry_base_seconds"):
        if values[key] < 0:
            raise doc.error(("send", key), f"send.{key} must not be negative")
    return SendSettings(**values)


def _check_tz(doc: Located, path: tuple[str | int, ...], name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.error(path, f"unknown time zone {name!r} (use an IANA name)") from None


def _parse_time(doc: Located, value: object, key: str = "time") -> time:
    text = value.strip() if isinstance(value, str) else ""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise doc.error(("schedule", key), f"schedule.{key} must be HH:MM, not {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _schedule(doc: Located, values: dict[str, Any]) -> dict[str, Any]:
    raw = values["time"] if isinstance(values["time"], list) else [values["time"]]
    deliver = values.pop("deliver_at").strip()
    words = deliver.split()
    if words and words[-1] == "local" and len(words) <= 2:
        if len(words) == 2:
            raw = [words[0]]
        values["local_delivery"] = True
    elif deliver:
        raise doc.error(("schedule", "deliver_at"), 'deliver_at must be "local" or "HH:MM local"')
    times = tuple(sorted({_parse_time(doc, t) for t in raw}))
    if not times:
        raise doc.error(("schedule", "time"), "schedule.time needs at least one HH:MM")
    values["time"], values["times"] = times[0], times
    try:
        values["days"] = parse_days(values["days"])
    except ValueError as exc:
        raise doc.error(("schedule", "days"), f"schedule.days: {exc}") from None
    quiet = values["quiet_hours"].strip()
    values["quiet_hours"] = None
    if quiet:
        start, sep, end = quiet.partition("-")
        if not sep:
            raise doc.error(("schedule", "quiet_hours"), 'quiet_hours must be "HH:MM-HH:MM"')
        values["quiet_hours"] = (
            _parse_time(doc, start, "quiet_hours"), _parse_time(doc, end, "quiet_hours"),
        )  # fmt: skip
    for key in ("max_lateness_minutes", "tick_seconds"):
        if values[key] < 1:
            raise doc.error(("schedule", key), f"schedule.{key} must be at least 1")
    return values
