"""Notices to editors through the configured backend: an edition expired, sent or stopped,
a slot missed, a wave skipped, a proof that could not be mailed, a source failing, a broken
subscriber file, a halted schedule, bounces or complaints past their thresholds.

Each notice has a key and is claimed in the notices log before it is mailed, so two
schedulers (or a tick, a worker and a manual send) racing over the same event mail it once;
the key names the event, never the moment, so a notice that could not be mailed is not tried
again every tick. When the mail backend itself is what fails, the notice goes through
``notices.backend`` (a second backend) if there is one; otherwise, and whenever that fails
too, it becomes a warning line in the log. It never stops the work that caused it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.backends.base import Backend, Envelope
from digest.config.settings import ApprovalSettings, NoticeSettings
from digest.exceptions import BackendError, ConfigError
from digest.models import Edition, Publication
from digest.render.message import make_message_id, sender_address
from digest.store.figures import Figures
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
    fallback: Callable[[], Backend] | None = None  # notices.backend

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
        failed, problems = self._mail(self.backend, notice, to, now)
        if failed == len(to) and self.fallback is not None:
            # The mail backend is down (often the very thing the notice is about).
            failed, again = self._mail(self.fallback, notice, to, now)
            if failed < len(to):
                problems = [f"{problems[0]}; sent through notices.backend instead", *again]
            else:
                problems = [*problems, *(f"{p} (notices.backend)" for p in again)]
        self.log.record(
            notice.key,
            status="failed" if failed == len(to) else "sent",
            recipients=", ".join(to),
            note="; ".join(problems),
            now=now,
        )
        return problems

    def _mail(
        self, backend: Callable[[], Backend], notice: Notice, to: list[str], now: datetime
    ) -> tuple[int, list[str]]:
        """How many of ``to`` it did not reach, and one line per problem."""
        problems: list[str] = []
        try:
            with backend() as connection:
                for address in to:
                    try:
                        connection.send(self._envelope(notice, address, now))
                    except BackendError as exc:
                        problems.append(f"notice {notice.subject!r} to {address}: {exc}")
        except (BackendError, ConfigError) as exc:
            return len(to), [f"notice {notice.subject!r} not sent: {exc}"]
        return len(problems), problems

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


def sent(
    edition_id: int,
    slot: str,
    state: str,
    totals: dict[str, int],
    *,
    started: datetime | None = None,
    ended: datetime | None = None,
    returned: dict[int, Figures] | None = None,
) -> Notice:
    """The whole edition's figures (every worker's deliveries), whoever ended it;
    ``returned`` holds the bounce and complaint figures of this edition and of the one
    before it (whose bounces have had time to come back)."""
    lines = "\n".join(f"  {state}: {n}" for state, n in sorted(totals.items())) or "  none"
    ledger = ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing"
    when = ""
    if started is not None and ended is not None:
        took = _duration(ended - started)
        when = f"Started {started:%Y-%m-%d %H:%M} UTC, ended {ended:%H:%M} UTC ({took}).\n\n"
    back = "".join(
        f"\n  edition {i}: {returns_line(f)}" for i, f in sorted((returned or {}).items())
    )
    return Notice(
        "sent",
        f"sent:{edition_id}",
        f"Edition {edition_id} finished sending",
        f"Edition {edition_id} for slot {slot} finished sending.\n\n{when}"
        f"edition {edition_id} is {state}: {ledger}\n\n"
        f"Deliveries:\n{lines}\n"
        + (f"\nBounces and complaints so far:{back}\n" if back else "")
        + f"\n`digest status {edition_id}` shows the details.",
        edition_id,
    )


def returns_line(f: Figures) -> str:
    """ "2 hard bounces (1.0%), 0 soft (0.0%), 1 complaint (0.5%) of 200 sent"."""

    def share(n: int) -> str:
        return f"{f.rate(n):.1%}" if f.rate(n) >= 0.001 or not n else f"{f.rate(n):.2%}"

    return (
        f"{f.hard} hard bounce{'s' * (f.hard != 1)} ({share(f.hard)}), {f.soft} soft "
        f"({share(f.soft)}), {f.complaints} complaint{'s' * (f.complaints != 1)} "
        f"({share(f.complaints)}) of {f.sent} sent"
    )


def returns_alert(
    edition_id: int,
    slot: str,
    figures: Figures,
    *,
    complaint_alert: float,
    hard_bounce_alert: float,
) -> Notice:
    """An edition's complaints or hard bounces passed their thresholds: once per edition."""
    return Notice(
        "bounce_alert",
        f"bounce_alert:{edition_id}",
        f"Edition {edition_id}: complaints or bounces past the limit",
        f"Edition {edition_id} for slot {slot}: {returns_line(figures)}.\n\n"
        f"The limits are {complaint_alert:.1%} complaints and {hard_bounce_alert:.1%} hard "
        "bounces (bounces.complaint_alert, bounces.hard_bounce_alert). Mailbox providers "
        "such as Gmail and Yahoo expect complaints well under 0.3%: check where these "
        "addresses came from and whether they asked for the digest. Those readers are "
        f"suppressed already; `digest status {edition_id}` shows the figures.",
        edition_id,
    )


def _duration(span: timedelta) -> str:
    minutes = max(0, round(span.total_seconds() / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _cause(why: str) -> str:
    """The same cause, whatever counts and times it carries: notices about it go once."""
    return hashlib.sha256(re.sub(r"\d+", "#", why).encode("utf-8")).hexdigest()[:12]


def stopped(edition_id: int, slot: str, why: str) -> Notice:
    return Notice(
        "stopped",
        f"stopped:{edition_id}:{_cause(why)}",  # once per cause, not once per tick
        f"Sending edition {edition_id} stopped",
        f"Sending edition {edition_id} for slot {slot} stopped before every reader got it.\n\n"
        f"Why: {why}\n\nTo resume (nobody gets it twice): digest send {edition_id}",
        edition_id,
    )


def missed(slot: str, why: str) -> Notice:
    """A slot went by with no edition built (digest was not running, or failed each tick)."""
    return Notice(
        "missed",
        f"missed:{slot}",
        f"No edition for slot {slot}",
        f"Slot {slot} passed without an edition: {why}. Nothing is sent late.\n\n"
        "`digest status` shows the schedule; `digest tick` prints what it does each run.",
    )


def wave_skipped(edition_id: int, slot: str, zones: list[str], lateness_minutes: int) -> Notice:
    """Readers of a time-zone wave got nothing: the wave was later than the lateness."""
    names = ", ".join(zones)
    return Notice(
        "wave_skipped",
        f"wave_skipped:{edition_id}:{names}",
        f"Edition {edition_id}: waves skipped ({names})",
        f"Edition {edition_id} for slot {slot} could not reach the readers of {names} within "
        f"{lateness_minutes} min of their send time (schedule.max_lateness_minutes); they are "
        "skipped, not sent stale news late.\n\n"
        f"`digest status {edition_id}` shows who got it.",
        edition_id,
    )


def proof_failed(edition_id: int, revision: int, problems: list[str]) -> Notice:
    lines = "\n".join(f"  {p}" for p in problems)
    return Notice(
        "proof_failed",
        f"proof_failed:{edition_id}:r{revision}",
        f"Proofs of edition {edition_id} could not be mailed",
        f"The proofs of edition {edition_id} (revision {revision}) did not reach every editor:"
        f"\n{lines}\n\nThe desk shows the edition; `digest proof {edition_id}` mails them "
        "again once the mail backend works.",
        edition_id,
    )


def halted(problem: str) -> Notice:
    """A tick could not do its job at all; once per cause until it changes."""
    return Notice(
        "halted",
        # Keyed by the error's lead, not its details (which grow as a failure goes on).
        f"halted:{_cause(re.split(r'[(;]', problem, maxsplit=1)[0])}",
        "The schedule is halted: digest tick fails",
        f"Every `digest tick` stops with this error, so nothing is built, expired or sent:"
        f"\n\n  {problem}\n\nFix it, then `digest tick` (or `digest check`) says whether "
        "the schedule runs again.",
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
