"""Load digest.yaml into validated, frozen settings; every error names file:line and key."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.addresses import valid_address
from digest.config.email import check_email, check_images, check_publication
from digest.config.settings import (
    NOTICE_EVENTS,
    ApprovalSettings,
    ArchiveSettings,
    BackendSettings,
    BounceSettings,
    EditorSettings,
    EmailSettings,
    ImagesSettings,
    ImapSettings,
    NoticeSettings,
    RetentionSettings,
    ScheduleSettings,
    SendSettings,
    Settings,
    SignupSettings,
    SourceSettings,
    WarmupSettings,
    WebhookSettings,
    parse_rate,
)
from digest.config.yamlsrc import Located, load_yaml
from digest.http import FetchSettings
from digest.models import Publication
from digest.rank.settings import RankingSettings, check_ranking
from digest.schema import keys
from digest.slots import parse_days
from digest.store.events import EVENTS

Path_ = tuple[str | int, ...]
# A web origin as browsers send it in the Origin header: scheme, host, optional port.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


def load_settings(path: Path) -> Settings:
    """Read and validate the config file at ``path``."""
    doc = load_yaml(
        path, hint="; copy digest.example.yaml there, or pass --config / set DIGEST_CONFIG"
    )
    if not isinstance(doc.value, dict):
        raise doc.error((), "the config must be a mapping of sections (see digest.example.yaml)")
    top = read_section(doc, (), doc.value, Settings)
    base = path.resolve().parent
    pub = read_section(doc, ("publication",), top["publication"], Publication)
    _check_tz(doc, ("publication", "timezone"), pub.get("timezone", "UTC"))
    check_publication(doc, {**_defaults(Publication), **pub})
    publication = build(Publication, pub)
    sched = _schedule(
        doc, read_section(doc, ("schedule",), top.get("schedule", {}), ScheduleSettings)
    )
    sched["timezone"] = sched.get("timezone") or publication.timezone
    _check_tz(doc, ("schedule", "timezone"), sched["timezone"])
    schedule = build(ScheduleSettings, sched)
    ranking = read_section(doc, ("ranking",), top.get("ranking", {}), RankingSettings)
    email = read_section(doc, ("email",), top.get("email", {}), EmailSettings)
    for key, value in email.get("headers", {}).items():
        if not isinstance(value, str) or any(c in f"{key}{value}" for c in "\r\n"):
            raise doc.error(("email", "headers", key), f"header {key!r} must be one line of text")
    email = {**_defaults(EmailSettings), **email}
    check_email(doc, email, base)
    images = {
        **_defaults(ImagesSettings),
        **read_section(doc, ("images",), top.get("images", {}), ImagesSettings),
    }
    check_images(doc, images, base)
    values: dict[str, Any] = {
        "path": path,
        "publication": publication,
        "sources": _sources(doc, top["sources"]),
        "ranking": check_ranking(ranking, doc.error),
        "email": build(EmailSettings, email),
        "backend": build(
            BackendSettings,
            read_section(doc, ("backend",), top.get("backend", {}), BackendSettings),
        ),
        "send": _send(doc, top.get("send", {})),
        "fetch": _fetch(doc, top.get("fetch", {})),
        "schedule": schedule,
        "approval": _approval(doc, top.get("approval", {}), schedule.lead_minutes),
        "images": build(ImagesSettings, images),
        "notices": _notices(doc, top.get("notices", {})),
        "secret_env": top.get("secret_env", "DIGEST_SECRET"),
        "retention": _retention(doc, top.get("retention", {})),
        "bounces": _bounces(doc, top.get("bounces", {}), base),
        "webhooks": _webhooks(doc, top.get("webhooks", [])),
        "state_url": _state_url(doc, top.get("state_url", "")),
        **_readers(doc, top),
    }
    for key in ("subscribers_path", "state_path", "preview_dir"):
        if key in top:
            values[key] = base / top[key]
        else:
            values[key] = base / _defaults(Settings)[key]
    values["templates_dir"] = base / top["templates_dir"] if top.get("templates_dir") else None
    return Settings(**values)


def read_section(doc: Located, path: Path_, data: Any, cls: type) -> dict[str, Any]:
    """The keys of ``cls`` given in ``data``, type-checked; unknown or missing keys are
    errors naming file:line. Keys not given are left out (the dataclass default applies)."""
    spec = {k.name: k for k in keys(cls)}
    where = ".".join(str(p) for p in path) or "the top level"
    if not isinstance(data, dict):
        raise doc.error(path, f"{where} must be a mapping")
    for key in data:
        if key not in spec:
            close = difflib.get_close_matches(str(key), spec, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise doc.error(
                (*path, key),
                f"unknown key {key!r} in {where}{hint} (valid: {', '.join(sorted(spec))})",
            )
    out: dict[str, Any] = {}
    for key in spec.values():
        if key.name not in data or data[key.name] is None:
            if key.required:
                raise doc.error(path, f"missing required key {key.name!r} in {where}")
            continue
        value = data[key.name]
        # bool is an int in Python; a "max_items: yes" typo must not pass as 1.
        bad = not isinstance(value, key.accepts) or (
            isinstance(value, bool) and bool not in key.accepts
        )
        if bad:
            names = (
                "number" if float in key.accepts else " or ".join(k.__name__ for k in key.accepts)
            )
            # YAML 1.1 reads 7:30 as the number 450: tell the user to quote it.
            quote = str in key.accepts and isinstance(value, int | float)
            hint = " (put it in quotes)" if quote else ""
            raise doc.error((*path, key.name), f"{key.name} must be a {names}, not {value!r}{hint}")
        out[key.attr] = value
    return out


def build(cls: type[Any], values: dict[str, Any]) -> Any:
    """``cls(**values)`` with YAML lists made tuples or frozensets and ints made floats, as
    the field types say; anything else must already have its final type."""
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        origin = typing.get_origin(hints[name]) or hints[name]
        if isinstance(value, list) and origin in (tuple, frozenset):
            value = origin(value)
        elif origin is float and isinstance(value, int):
            value = float(value)
        out[name] = value
    return cls(**out)


def _defaults(cls: type) -> dict[str, Any]:
    return {
        f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def _sources(doc: Located, raw: Any) -> tuple[SourceSettings, ...]:
    if not isinstance(raw, list):
        raise doc.error(("sources",), "sources must be a list of sources (- name: ... url: ...)")
    sources = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise doc.error(("sources", i), "each source must be a mapping with name and url")
        src = read_section(doc, ("sources", i), entry, SourceSettings)
        if src["name"] in names:
            raise doc.error(("sources", i, "name"), f"duplicate source name {src['name']!r}")
        names.add(src["name"])
        for key in ("include", "exclude"):
            if not all(isinstance(p, str) and p for p in src.get(key, [])):
                raise doc.error(("sources", i, key), f"{key} must be a list of keyword patterns")
        sources.append(build(SourceSettings, src))
    if not sources:
        raise doc.error(("sources",), "sources is empty; add at least one feed")
    return tuple(sources)


def _fetch(doc: Located, data: Any) -> FetchSettings:
    values = read_section(doc, ("fetch",), data, FetchSettings)
    for key, value in values.items():
        if value < 0 or (value == 0 and key in ("timeout", "max_bytes", "concurrency", "per_host")):
            raise doc.error(("fetch", key), f"fetch.{key} must be positive")
    return build(FetchSettings, values)  # type: ignore[no-any-return]


def _approval(doc: Located, data: Any, lead_minutes: int) -> ApprovalSettings:
    approval = {
        **_defaults(ApprovalSettings),
        **read_section(doc, ("approval",), data, ApprovalSettings),
    }
    editors: list[EditorSettings] = []
    for i, raw in enumerate(approval["editors"]):
        where = ("approval", "editors", i)
        if not isinstance(raw, dict):
            raise doc.error(where, "each editor must be a mapping with name and email")
        unknown = sorted(set(raw) - {"name", "email", "password_hash_env"})
        if unknown or not all(isinstance(raw.get(k), str) and raw[k] for k in ("name", "email")):
            raise doc.error(
                where,
                "each editor needs name and email, and may have "
                f"password_hash_env (got {sorted(raw)})",
            )
        variable = raw.get("password_hash_env", "")
        if not isinstance(variable, str) or not re.fullmatch(
            r"([A-Za-z_][A-Za-z0-9_]*)?", variable
        ):
            raise doc.error(
                (*where, "password_hash_env"),
                "password_hash_env is the name of an environment variable",
            )
        editor = EditorSettings(name=raw["name"], email=raw["email"], password_hash_env=variable)
        if not (editor.email.isascii() and valid_address(editor.email)):
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
    if approval["test_sends_per_hour"] < 0:
        raise doc.error(("approval", "test_sends_per_hour"), "it must be 0 or more")
    if approval["link_hours"] <= 0:
        raise doc.error(("approval", "link_hours"), "approval.link_hours must be positive")
    return build(ApprovalSettings, approval)  # type: ignore[no-any-return]


def _notices(doc: Located, data: Any) -> NoticeSettings:
    values = read_section(doc, ("notices",), data, NoticeSettings)
    for i, event in enumerate(values.get("events", [])):
        if event not in NOTICE_EVENTS:
            raise doc.error(
                ("notices", "events", i),
                f"unknown notice event {event!r}; use {', '.join(NOTICE_EVENTS)}",
            )
    for i, address in enumerate(values.get("to", [])):
        if not isinstance(address, str) or not re.fullmatch(
            r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address
        ):
            raise doc.error(("notices", "to", i), f"{address!r} is not an e-mail address")
    if "backend" in values:
        where = ("notices", "backend")
        values["backend"] = build(
            BackendSettings, read_section(doc, where, values["backend"], BackendSettings)
        )
    return build(NoticeSettings, values)  # type: ignore[no-any-return]


def _send(doc: Located, data: Any) -> SendSettings:
    values = {**_defaults(SendSettings), **read_section(doc, ("send",), data, SendSettings)}
    if values["in_doubt"] not in ("resend", "skip"):
        raise doc.error(("send", "in_doubt"), "send.in_doubt must be resend or skip")
    for key in ("connections", "window_seconds", "lock_ttl_seconds"):
        if values[key] <= 0:
            raise doc.error(("send", key), f"send.{key} must be positive")
    counts = ("rate_per_second", "window_messages", "retry_base_seconds", "db_retry_seconds")
    for key in (*counts, "host_failures"):
        if values[key] < 0:
            raise doc.error(("send", key), f"send.{key} must not be negative")
    for domain, rate in values["domain_limits"].items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise doc.error(
                ("send", "domain_limits", domain), f"send.domain_limits: {exc}"
            ) from None
    values["domain_limits"] = {str(k).lower(): v for k, v in values["domain_limits"].items()}
    values["warmup"] = _warmup(doc, values["warmup"])
    return build(SendSettings, values)  # type: ignore[no-any-return]


def _warmup(doc: Located, data: Any) -> WarmupSettings:
    if isinstance(data, WarmupSettings):
        return data  # not given: the default, no warm-up
    where = ("send", "warmup")
    values = {**_defaults(WarmupSettings), **read_section(doc, where, data, WarmupSettings)}
    if values["start_date"]:
        try:
            date.fromisoformat(values["start_date"])
        except ValueError:
            raise doc.error(
                (*where, "start_date"),
                f"send.warmup.start_date must be a date like 2026-12-01, not "
                f"{values['start_date']!r}",
            ) from None
    if values["first_day"] < 1 or values["growth"] < 1:
        raise doc.error(where, "send.warmup: first_day must be at least 1 and growth at least 1")
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in values["schedule"]
    ):
        raise doc.error((*where, "schedule"), "send.warmup.schedule must list positive integers")
    if values["target"] < 0:
        raise doc.error((*where, "target"), "send.warmup.target must not be negative")
    return build(WarmupSettings, values)  # type: ignore[no-any-return]


def _retention(doc: Located, data: Any) -> RetentionSettings:
    values = {
        **_defaults(RetentionSettings),
        **read_section(doc, ("retention",), data, RetentionSettings),
    }
    if values["deliveries_days"] < 1:
        raise doc.error(("retention", "deliveries_days"), "retention.deliveries_days must be >= 1")
    return build(RetentionSettings, values)  # type: ignore[no-any-return]


def _bounces(doc: Located, data: Any, base: Path) -> BounceSettings:
    values = {**_defaults(BounceSettings), **read_section(doc, ("bounces",), data, BounceSettings)}
    for key in ("soft_limit", "soft_window_days"):
        if values[key] < 1:
            raise doc.error(("bounces", key), f"bounces.{key} must be >= 1")
    if values["maildir"] is not None:
        if not str(values["maildir"]).strip():
            raise doc.error(("bounces", "maildir"), "bounces.maildir must name a folder")
        values["maildir"] = base / Path(values["maildir"]).expanduser()  # relative to the file
    for key in ("complaint_alert", "hard_bounce_alert"):
        if not 0 < values[key] <= 1:
            raise doc.error(
                ("bounces", key), f"bounces.{key} is a share of sent mail (0.001 is 0.1%)"
            )
    if values["imap"] is not None:
        values["imap"] = _imap(doc, values["imap"], base)
    return build(BounceSettings, values)  # type: ignore[no-any-return]


def _imap(doc: Located, data: Any, base: Path) -> ImapSettings:
    where = ("bounces", "imap")
    values = {**_defaults(ImapSettings), **read_section(doc, where, data, ImapSettings)}
    if values["security"] not in ("tls", "starttls"):
        raise doc.error(
            (*where, "security"),
            "bounces.imap.security must be tls or starttls: the password never travels unencrypted",
        )
    for key in ("host", "user", "password_env", "folder", "done_folder"):
        if not str(values[key]).strip():
            raise doc.error((*where, key), f"bounces.imap.{key} must not be empty")
    if values["folder"] == values["done_folder"]:
        raise doc.error((*where, "done_folder"), "bounces.imap.done_folder must differ from folder")
    if not 0 < values["port"] < 65536:
        raise doc.error((*where, "port"), "bounces.imap.port must be a TCP port (993 or 143)")
    if values["ca_file"] is not None:
        values["ca_file"] = base / Path(values["ca_file"]).expanduser()
    return build(ImapSettings, values)  # type: ignore[no-any-return]


def _webhooks(doc: Located, raw: Any) -> tuple[WebhookSettings, ...]:
    if not isinstance(raw, list):
        raise doc.error(("webhooks",), "webhooks must be a list (- url: ... secret_env: ...)")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise doc.error(
                ("webhooks", i), "each webhook must be a mapping with url and secret_env"
            )
        values = {
            **_defaults(WebhookSettings),
            **read_section(doc, ("webhooks", i), entry, WebhookSettings),
        }
        if not re.match(r"https?://[^/\s]", values["url"]):
            raise doc.error(("webhooks", i, "url"), "webhooks[].url must be an http(s) URL")
        if not values["secret_env"].strip():
            raise doc.error(
                ("webhooks", i, "secret_env"), "webhooks[].secret_env must name a variable"
            )
        for event in values["events"]:
            if event not in EVENTS:
                raise doc.error(
                    ("webhooks", i, "events"),
                    f"unknown webhook event {event!r}; use {', '.join(EVENTS)}",
                )
        out.append(build(WebhookSettings, values))
    return tuple(out)


def _state_url(doc: Located, url: str) -> str:
    if url and not re.match(r"(postgresql(\+psycopg)?|sqlite)://", url):
        raise doc.error(
            ("state_url",), "state_url must be a postgresql+psycopg:// (or sqlite:///) URL"
        )
    return url


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


def _schedule(doc: Located, given: dict[str, Any]) -> dict[str, Any]:
    values = {
        **_defaults(ScheduleSettings),
        "times": "07:00",
        "days": "*",
        "quiet_hours": "",
        **given,
    }
    raw = values["times"] if isinstance(values["times"], list) else [values["times"]]
    deliver = values["deliver_at"].strip()
    words = deliver.split()
    if words and words[-1] == "local" and len(words) <= 2:
        if len(words) == 2:
            raw = [words[0]]
    elif deliver:
        raise doc.error(("schedule", "deliver_at"), 'deliver_at must be "local" or "HH:MM local"')
    values["deliver_at"] = deliver
    times = tuple(sorted({_parse_time(doc, t) for t in raw}))
    if not times:
        raise doc.error(("schedule", "time"), "schedule.time needs at least one HH:MM")
    values["times"] = times
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
            _parse_time(doc, start, "quiet_hours"),
            _parse_time(doc, end, "quiet_hours"),
        )
    for key in ("max_lateness_minutes", "tick_seconds"):
        if values[key] < 1:
            raise doc.error(("schedule", key), f"schedule.{key} must be at least 1")
    return values


def _readers(doc: Located, top: dict[str, Any]) -> dict[str, Any]:
    """The readers' keys: ``subscribers_sync``, ``signup`` and ``archive``."""
    mode = top.get("subscribers_sync", "")
    if mode not in ("", "mirror", "add"):
        raise doc.error(("subscribers_sync",), "subscribers_sync must be mirror or add")
    signup = read_section(doc, ("signup",), top.get("signup", {}), SignupSettings)
    topics = signup.get("topics", [])
    if not all(isinstance(t, str) and t.strip() for t in topics):
        raise doc.error(("signup", "topics"), "signup.topics must be a list of section names")
    signup["topics"] = [t.strip() for t in topics]
    url = signup.get("redirect_url", "")
    if url and not re.match(r"https?://[^\s]+$", url):
        raise doc.error(("signup", "redirect_url"), "signup.redirect_url must be an http(s) URL")
    for key in ("per_client", "per_address", "per_form", "window_minutes"):
        if signup.get(key, 1) < 1:
            raise doc.error(("signup", key), f"signup.{key} must be a whole number of 1 or more")
    origins = signup.get("allowed_origins", [])
    for origin in origins:
        if not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
            raise doc.error(
                ("signup", "allowed_origins"),
                f"signup.allowed_origins: {origin!r} is not an origin; write it like "
                "https://www.example.org (scheme, host, optional port; no path)",
            )
    signup["allowed_origins"] = [o.lower() for o in origins]
    archive = read_section(doc, ("archive",), top.get("archive", {}), ArchiveSettings)
    return {
        "subscribers_sync": mode,
        "signup": build(SignupSettings, signup),
        "archive": build(ArchiveSettings, archive),
    }
