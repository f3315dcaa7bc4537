"""Settings that load fine but would fail later: addresses, URLs, secrets, folders, times."""

from __future__ import annotations

import os
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from digest.addresses import valid_address
from digest.app import App
from digest.checks.base import Report, Where, key_name, line_of, names
from digest.exceptions import BackendError, ConfigError
from digest.passwords import check_password
from digest.render.message import make_message_id
from digest.render.variants import topic_names
from digest.slots import unsendable_waves
from digest.tokens import secrets_from_env

SECRET_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105
MIN_TOKEN = 16


def check_settings(app: App, where: Where, report: Report) -> None:
    """Addresses, URLs, secrets and their lengths, the password hash, writable folders,
    the backend's options and the DKIM key."""
    _addresses(app, where, report)
    _urls(app, where, report)
    _secrets(app, where, report)
    _folders(app, where, report)
    try:
        app.context.backend()
        report.ok(f"backend: {app.settings.backend.name} accepts its options")
    except BackendError as exc:
        report.error(where("backend"), f"{exc}")
    _smtp_variables(app, where, report)
    try:
        if app.context.dkim is not None:
            report.ok(
                f"dkim: signing as {app.context.dkim.dns_name} (publish the public key there)"
            )
    except ConfigError as exc:
        report.raised(exc, where("email", "dkim_key_path"))


def _address(value: str) -> str:
    return parseaddr(value)[1]


def _addresses(app: App, where: Where, report: Report) -> None:
    pub = app.settings.publication
    if not valid_address(_address(pub.sender)):
        report.error(
            where("publication", "sender"),
            f"publication.sender {pub.sender!r} has no valid address; write "
            '"The Name <address@your-domain>"',
        )
    if pub.reply_to and not valid_address(_address(pub.reply_to)):
        report.error(
            where("publication", "reply_to"),
            f"publication.reply_to {pub.reply_to!r} is not an e-mail address; fix or remove it",
        )
    try:
        make_message_id(pub.sender_domain)
    except ConfigError as exc:
        key = ("publication", "domain") if pub.domain else ("publication", "sender")
        report.error(where(*key), f"{exc}; set publication.domain to your mail domain")
    mailto = app.settings.email.unsubscribe_mailto
    if mailto and not (mailto.startswith("mailto:") and valid_address(mailto[7:].split("?")[0])):
        report.error(
            where("email", "unsubscribe_mailto"),
            f"email.unsubscribe_mailto {mailto!r} must be mailto: and an address, e.g. "
            '"mailto:unsubscribe@your-domain"',
        )
    for i, editor in enumerate(app.settings.approval.editors):
        if not valid_address(editor.email):
            report.error(
                where("approval", "editors", i, "email"),
                f"editor {editor.email!r} is not an address proofs can go to",
            )


def _urls(app: App, where: Where, report: Report) -> None:
    base = app.settings.publication.base_url
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        report.error(
            where("publication", "base_url"),
            f"publication.base_url {base!r} must be an https URL with a host (e.g. "
            "https://digest.your-domain): unsubscribe links need https, and review and "
            "unsubscribe links point there",
        )
    for i, source in enumerate(app.settings.sources):
        url = urlsplit(source.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            report.error(
                where("sources", i, "url"),
                f"source {source.name!r}: {source.url!r} is not an http(s) URL; give the "
                "feed's full address, e.g. https://example.org/feed.xml",
            )


def _secrets(app: App, where: Where, report: Report) -> None:
    s = app.settings
    try:
        keys = secrets_from_env(s.secret_env)
        report.ok(f"secret: {s.secret_env} is set ({len(keys)} key(s), long enough)")
    except ConfigError as exc:
        report.error(
            where("secret_env") if where.written("secret_env") else s.secret_env,
            f"{exc}; export {s.secret_env}=$({SECRET_HINT})",
        )
    # Editors sign in by a mailed link; a password is optional, per editor.
    for i, editor in enumerate(s.approval.editors):
        variable = editor.password_hash_env
        hashed = os.environ.get(variable, "") if variable else ""
        if variable and not hashed:
            report.warning(
                key_name("approval", "editors", i, "password_hash_env"),
                f"{variable} is not set, so {editor.name} signs in by mailed link only",
            )
        if hashed:
            try:
                check_password("probe", hashed, env_name=variable)
            except ConfigError:
                report.error(
                    variable,
                    f"{variable} is not a digest password hash (an unquoted or "
                    "double-quoted $ in the shell mangles it); run `digest "
                    f"hash-password` and set it in single quotes: "
                    f"export {variable}='scrypt$...'",
                )


def unwritable(path: Path, *, folder: bool) -> str | None:
    """Why ``path`` (a file, or a ``folder``) cannot be created or written, else None."""
    target = path
    if target.exists():
        if folder and not target.is_dir():
            return f"{target} is not a folder"
        if not folder and target.is_dir():
            return f"{target} is a folder, not a file"
        check = target if folder else target.parent
        if not os.access(check, os.W_OK | os.X_OK) or not os.access(target, os.W_OK):
            return f"{target} is not writable by this user"
        return None
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so {target} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable by this user, so {target} cannot be created"
    return None


def _folders(app: App, where: Where, report: Report) -> None:
    s = app.settings
    checks = [("state_path", s.state_path, False), ("preview_dir", s.preview_dir, True)]
    if s.backend.name == "outbox" and s.backend.options.get("path"):
        outbox = s.path.resolve().parent / str(s.backend.options["path"])
        checks.append(("backend.options.path", outbox, True))
    for key, path, folder in checks:
        why = unwritable(path, folder=folder)
        if why:
            report.error(
                where(*key.split(".")), f"{key}: {why}; point it at a folder this user can write"
            )
    if s.templates_dir is not None and not s.templates_dir.is_dir():
        report.error(
            where("templates_dir"),
            f"templates_dir {s.templates_dir} does not exist; create it or remove the setting",
        )


def _smtp_variables(app: App, where: Where, report: Report) -> None:
    options = app.settings.backend.options
    if app.settings.backend.name != "smtp":
        return
    for option in ("username_env", "password_env"):
        name = options.get(option)
        if isinstance(name, str) and not os.environ.get(name):
            report.error(
                where("backend", "options", option),
                f"backend.options.{option} names {name}, which is not set; set it in "
                "the environment of digest (never in the config)",
            )


def check_schedule(app: App, where: Where, report: Report) -> None:
    """Quiet hours that hold a wave past its lateness: that wave would never be sent."""
    sched = app.settings.schedule
    late = timedelta(minutes=sched.max_lateness_minutes)
    found = unsendable_waves(
        zone=sched.timezone,
        times=sched.times,
        wave_zones=app.schedule.wave_zones,
        window=sched.quiet_hours,
        lateness=late,
        start=app.now().date(),
    )
    for zone, at, first in found:
        start, end = sched.quiet_hours or (at, at)
        wave = f"the {at:%H:%M} wave in {zone}" if sched.local_delivery else f"{at:%H:%M}"
        report.warning(
            where("schedule", "quiet_hours"),
            f"{wave} falls in quiet_hours {start:%H:%M}-{end:%H:%M}, which end more "
            f"than max_lateness_minutes ({sched.max_lateness_minutes}) after it (first"
            f" on {first:%Y-%m-%d}): it would never be sent; shorten the quiet hours "
            "or raise schedule.max_lateness_minutes",
        )


def check_topics(app: App, where: Where, report: Report, *, fetched: set[str] | None) -> None:
    """Every subscriber topic must match a section, or that reader gets nothing every day.

    Sections are the configured ``sources[].section`` values and, when the sources were
    fetched, the sections their stories carry today. A topic that matches none is an error
    when every source has a fixed section, else a warning (feeds' categories vary).
    """
    sources = app.settings.sources
    configured = {s.section for s in sources if s.section}
    known = topic_names(configured | (fetched or set()))
    fixed = all(s.section for s in sources)
    seen: set[tuple[str, ...]] = set()
    for sub in app.readers.in_file():
        missing = sorted(topic_names(sub.topics) - known)
        if not missing or (sub.topics in seen and not fixed):
            continue
        seen.add(sub.topics)
        at = line_of(app.settings.subscribers_path, sub.email)
        message = (
            f"subscriber {sub.email}: topic(s) {', '.join(missing)} match no section "
            f"({names(configured | (fetched or set()))}), so they get nothing from "
            "those; fix the topics or set sources[].section"
        )
        if fixed:
            report.error(at, message)
        else:
            report.warning(at, message + " (sources without a fixed section may differ daily)")
