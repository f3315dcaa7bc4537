"""The welcome mail a reader gets once, when they confirm: when editions come (the
publication's schedule, told in the reader's own zone) and the links they will want.

Its words are two overridable templates (``welcome.html.j2``, ``welcome.txt.j2``) rendered
with the environment of the edition templates, so a ``templates_dir`` file of the same name
replaces them. Unlike the confirmation mail it may greet the reader by name: the address is
proven by now.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import jinja2

from digest.backends.base import Envelope
from digest.models import Publication
from digest.render.dates import date_label
from digest.render.message import mailbox, make_message_id, sender_address
from digest.slots import Slot, next_slot, slots_between

_DAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
# Zones offered to readers: the IANA names people live in (no Etc/GMT+5, no legacy aliases).
_REGIONS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


@functools.cache
def reader_zones() -> tuple[str, ...]:
    """The time zones a reader may choose, sorted: UTC and every regional IANA zone."""
    names = (z for z in zoneinfo.available_timezones() if z.startswith(_REGIONS))
    return ("UTC", *sorted(names))


@functools.cache
def _zone_set() -> frozenset[str]:
    return frozenset(reader_zones())


def known_zone(name: str) -> bool:
    """Whether ``name`` is one of ``reader_zones`` (the check of anything a browser sent)."""
    return name in _zone_set()


@dataclass(frozen=True, slots=True)
class Timetable:
    """The publication's schedule, as far as a reader cares (from schedule.*)."""

    times: tuple[time, ...]
    days: frozenset[int]
    zone: str  # the schedule's zone
    local: bool  # deliver_at: each reader gets it at the send time in their own zone
    lead: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class When:
    """When editions reach one reader: "every day at 07:00", the first one, the zone."""

    every: str
    first: str
    zone: str


def _days(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "every day"
    if days == frozenset(range(5)):
        return "every weekday"
    names = [_DAYS[d] for d in sorted(days)]
    return "on " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])


def _clock(times: list[str]) -> str:
    return times[0] if len(times) == 1 else ", ".join(times[:-1]) + " and " + times[-1]


def when(table: Timetable, zone: str, now: datetime) -> When:
    """When editions come to a reader in ``zone`` ("" : the schedule's), from ``now``."""
    zone = zone or table.zone
    tz = ZoneInfo(zone)
    waves = (zone,) if table.local else ()  # local delivery: one wave, the reader's own

    def slots(start: datetime, end: datetime) -> list[Slot]:
        return slots_between(
            start,
            end,
            zone=table.zone,
            times=table.times,
            days=table.days,
            lead=table.lead,
            wave_zones=waves,
        )

    first = next_slot(
        now, zone=table.zone, times=table.times, days=table.days, lead=table.lead, wave_zones=waves
    ).first_wave
    # A week of editions read on the reader's clock: a 07:00 send in Berlin reaches Los
    # Angeles at 22:00 the day before, so both its time and its weekday move.
    week = [
        s.first_wave.astimezone(tz)
        for s in slots(first, first + timedelta(days=7))
        if first <= s.first_wave < first + timedelta(days=7)
    ]
    days_at: dict[str, set[int]] = {}
    for moment in week:
        days_at.setdefault(f"{moment:%H:%M}", set()).add(moment.weekday())
    groups: dict[frozenset[int], list[str]] = {}
    for clock in sorted(days_at):
        groups.setdefault(frozenset(days_at[clock]), []).append(clock)
    every = "; ".join(f"{_days(days)} at {_clock(clocks)}" for days, clocks in groups.items())
    local = first.astimezone(tz)
    return When(every=every, first=f"{date_label(local.date())} at {local:%H:%M}", zone=zone)


@dataclass(frozen=True, slots=True)
class Links:
    """The signed links of one reader's welcome mail."""

    preferences: str
    archive: str
    unsubscribe: str


def welcome_envelope(
    env: jinja2.Environment,
    publication: Publication,
    *,
    email: str,
    name: str,
    topics: tuple[str, ...],
    timing: When,
    links: Links,
    now: datetime,
) -> Envelope:
    """The welcome message to ``email``, from the two welcome templates."""
    values = {
        "publication": publication,
        "email": email,
        "name": name,
        "topics": topics,
        "when": timing,
        "links": links,
    }
    message_id = make_message_id(publication.sender_domain)
    msg = EmailMessage()
    msg["From"] = publication.sender
    msg["To"] = mailbox(name, email)
    msg["Subject"] = f"Welcome to {publication.name}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    if publication.reply_to:
        msg["Reply-To"] = publication.reply_to
    # Unsubscribing from here works as from an edition (RFC 8058 one-click).
    msg["List-Unsubscribe"] = f"<{links.unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(env.get_template("welcome.txt.j2").render(values), cte="quoted-printable")
    msg.add_alternative(
        env.get_template("welcome.html.j2").render(values), subtype="html", cte="quoted-printable"
    )
    return Envelope(
        sender=sender_address(publication),
        recipient=email,
        data=msg.as_bytes(policy=SMTP),
        message_id=message_id,
    )
