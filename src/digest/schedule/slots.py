"""Pure schedule arithmetic: which send slots exist, and when each is built and sent (UTC)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Slot:
    """One edition's send slot: keyed by the schedule's local date and time."""

    key: str
    local_date: date
    at: time
    first_wave: datetime
    last_wave: datetime
    build_at: datetime


def parse_days(spec: str) -> frozenset[int]:
    """Weekdays (0 = Monday) from cron-style names: "mon-fri", "mon,wed,fri", "*"."""
    text = spec.strip().lower()
    if text in ("", "*", "daily"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"unknown day in {spec!r}; use mon..sun, ranges and commas")
        a = DAY_NAMES.index(first)
        b = DAY_NAMES.index(last) if last else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def slot_key(now: datetime, *, zone: str, at: time) -> str:
    """The key of the slot an edition made at ``now`` is for: its local date and send time."""
    return f"{now.astimezone(ZoneInfo(zone)).date().isoformat()}T{at:%H:%M}"


def wall_time(day: date, at: time, zone: str) -> datetime:
    """``day`` at ``at`` in ``zone``, as UTC.

    The rule for daylight saving: a time that does not exist (spring forward, e.g. 02:30 in
    Berlin on 29 March 2026) runs shifted forward by the gap (03:30 local); a time that
    occurs twice (fall back) runs at its first occurrence. Either way, once per local date.
    """
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def slots_around(
    now: datetime,
    *,
    zone: str,
    times: Iterable[time],
    days: frozenset[int],
    lead: timedelta,
    wave_zones: Iterable[str] = (),
    span_days: int = 3,
) -> list[Slot]:
    """Every slot whose local date lies within ``span_days`` of ``now``'s, in time order.

    With ``wave_zones`` (delivery at the slot time in each reader's zone), the slot starts
    at the earliest zone's local time and ends at the latest's.
    """
    zones = sorted(set(wave_zones)) or [zone]
    today = now.astimezone(ZoneInfo(zone)).date()
    out = []
    for offset in range(-span_days, span_days + 1):
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        for at in times:
            waves = [wall_time(day, at, z) for z in zones]
            first, last = min(waves), max(waves)
            key = f"{day.isoformat()}T{at:%H:%M}"
            out.append(Slot(key, day, at, first, last, first - lead))
    return sorted(out, key=lambda s: (s.first_wave, s.key))


def in_quiet_hours(moment: datetime, window: tuple[time, time] | None, zone: str) -> bool:
    """True when ``moment`` falls in the daily quiet window (which may cross midnight)."""
    if window is None:
        return False
    start, end = window
    local = moment.astimezone(ZoneInfo(zone)).time()
    return start <= local < end if start <= end else (local >= start or local < end)


def quiet_end(moment: datetime, window: tuple[time, time] | None, zone: str) -> datetime:
    """``moment``, or the end of the quiet window it falls in."""
    if not in_quiet_hours(moment, window, zone) or window is None:
        return moment
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    end = datetime.combine(local.date(), window[1], tzinfo=tz)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), window[1], tzinfo=tz)
    return end.astimezone(UTC)
