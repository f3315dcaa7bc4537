"""Notices to editors through the configured backend: expired, sent, stopped, source failing.

Each notice has a key and is claimed in the notices log before it is mailed, so two
schedulers (or a tick and a manual send) racing over the same event mail it once. A notice
that cannot be mailed never stops the work that caused it: it becomes a warning line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.backends.base import Backend, Envelope
from digest.config.settings import ApprovalSettings, NoticeSettings
from digest.exceptions import BackendError, ConfigError
from digest.models import Edition, Publication
from digest.render.message import make_message_id, sender_address
from digest.store.ops import NoticeLog

NOTICE_HEADER = "X-Digest-Notice"


@dataclass(frozen=True, slots=True)
class Notice:
    """One event worth an editor's attention."""

    event: str  # one of config.settings.NOTICE_EVENTS
    key: str  # the same event always has the same key
    subject: str
    body: str
    edition_id: int = 0


@dataclass(frozen=True, slots=True)
class Notifier:
    """Mails notices to ``notices.to`` (default: the editors), each one once."""

    settings: NoticeSettings
    approval: ApprovalSettings
    publication: Publication
    backend: Callable[[], Backend]
    log: NoticeLog

    def recipients(self) -> list[str]:
        return list(self.settings.to) or [e.email for e in self.approval.editors]

    def send(self, notice: Notice, *, now: datetime) -> list[str]:
        """Mail ``notice`` unless it is switched off, has no one to go to or went already;
        one line per problem."""
        to = self.recipients()
        if notice.event not in self.settings.events or not to:
            return []
        if not self.log.claim(notice.key, kind=notice.event, edition_id=notice.edition_id, now=now):
            return []
        problems: list[str] = []
        try:
            with self.backend() as connection:
                for address in to:
                    try:
                        connection.send(self._envelope(notice, address, now))
                    except BackendError as exc:
                        problems.append(f"notice {notice.subject!r} to {address}: {exc}")
        except (BackendError, ConfigError) as exc:
            problems.append(f"notice {notice.subject!r} not sent: {exc}")
        status = "failed" if len(problems) >= len(to) else "sent"
        self.log.record(
            notice.key, status=status, recipients=", ".join(to), note="; ".join(problems), now=now
        )
        return problems

    def _envelope(self, notice: Notice, address: str, now: datetime) -> Envelope:
        pub = self.publication
        message_id = make_message_id(pub.sender_domain)
        msg = EmailMessage()
        msg["From"] = pub.sender
        msg["To"] = address
        msg["Subject"] = f"[{pub.name}] {notice.subject}"
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        msg[NOTICE_HEADER] = notice.event
        msg.set_content(notice.body + _FOOTER, cte="quoted-printable")
        return Envelope(sender_address(pub), address, msg.as_bytes(policy=SMTP), message_id)


_FOOTER = "\n\n-- \nSent by digest to the editors (config: notices.events, notices.to).\n"


def expired(edition: Edition, reason: str) -> Notice:
    return Notice(
        "expired",
        f"expired:{edition.id}",
        f"Edition {edition.id} expired: nothing was sent",
        f"Edition {edition.id} for slot {edition.slot} ({edition.rendered.subject!r}) "
        f"expired and will never be sent.\n\nWhy: {reason}\n\n"
        f"Run `digest status {edition.id}` for its audit trail, or `digest build` for the "
        "next slot.",
        edition.id,
    )


def sent(edition_id: int, slot: str, summary: str, counts: dict[str, int]) -> Notice:
    lines = "\n".join(f"  {state}: {n}" for state, n in sorted(counts.items())) or "  none"
    return Notice(
        "sent",
        f"sent:{edition_id}",
        f"Edition {edition_id} finished sending",
        f"Edition {edition_id} for slot {slot} finished sending.\n\n{summary}\n\n"
        f"Deliveries:\n{lines}\n\n`digest status {edition_id}` shows the details.",
        edition_id,
    )


def stopped(edition_id: int, slot: str, why: str, *, at: datetime) -> Notice:
    return Notice(
        "stopped",
        f"stopped:{edition_id}:{at.isoformat()}",
        f"Sending edition {edition_id} stopped",
        f"Sending edition {edition_id} for slot {slot} stopped before every reader got it.\n\n"
        f"Why: {why}\n\nTo resume (nobody gets it twice): digest send {edition_id}",
        edition_id,
    )


def source_failing(
    name: str, url: str, failures: int, last_error: str, last_success: datetime | None
) -> Notice:
    since = f"{last_success:%Y-%m-%d %H:%M} UTC" if last_success else "never"
    # One notice per run of failures: the streak is named by its last success.
    return Notice(
        "source_failing",
        f"source:{name}:{since}",
        f"Source {name} failed {failures} runs in a row",
        f"The source {name} ({url}) failed {failures} runs in a row; last success: {since}.\n\n"
        f"Last error: {last_error or 'unknown'}\n\nFix its URL in the config or remove it; "
        "`digest sources` shows every source's health.",
    )


def subscribers_broken(problem: str) -> Notice:
    """The subscriber file cannot be read: the schedule goes on with the last good list."""
    digest_of = hashlib.sha256(problem.encode("utf-8")).hexdigest()[:16]
    return Notice(
        "subscribers_broken",
        f"subscribers:{digest_of}",  # once per problem, not once per tick
        "The subscriber file has a mistake: editions go to the last good list",
        f"{problem}\n\nUntil it is fixed, the schedule builds and sends as planned, to the "
        "readers of the last subscriber file that could be read. `digest check` names every "
        "mistake; the next tick after the fix syncs the file again.",
    )
