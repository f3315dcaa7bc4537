"""Pure schedule arithmetic on absolute (UTC) instants made from zone-aware send slots.

A slot is keyed by the schedule's local date and time ("2026-11-25T07:00"). Each of its
waves is that wall time in one zone, turned into a UTC instant once (``wall_time``); every
deadline, lateness and "missed" judgement after that is plain arithmetic on instants, so
daylight-saving days need no special case anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Window = tuple[time, time] | None


@dataclass(frozen=True, slots=True)
class Wave:
    """The slot's send time in one zone, as a UTC instant."""

    zone: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    """One edition's send slot and its waves (one per zone; a single one without waves)."""

    key: str
    local_date: date
    at: time
    zone: str  # the schedule's zone, in which ``key`` is written
    waves: tuple[Wave, ...]  # sorted by instant
    build_at: datetime

    @property
    def first_wave(self) -> datetime:
        return self.waves[0].at

    @property
    def last_wave(self) -> datetime:
        return self.waves[-1].at

    def wave(self, zone: str) -> datetime:
        """When a reader in ``zone`` is due (the slot's own time when it has no such wave)."""
        for w in self.waves:
            if w.zone == zone:
                return w.at
        return wall_time(self.local_date, self.at, self.zone)

    def live_waves(self, now: datetime, lateness: timedelta) -> tuple[Wave, ...]:
        """Waves that may still be sent at ``now``: at most ``lateness`` after their time."""
        return tuple(w for w in self.waves if now <= w.at + lateness)

    def stale_waves(self, now: datetime, lateness: timedelta) -> tuple[Wave, ...]:
        return tuple(w for w in self.waves if now > w.at + lateness)


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


def slot_key(day: date, at: time) -> str:
    return f"{day.isoformat()}T{at:%H:%M}"


def parse_key(key: str) -> tuple[date, time]:
    """(local date, time) of a slot key; ValueError unless it is "YYYY-MM-DDTHH:MM"."""
    day, sep, hhmm = key.partition("T")
    if not sep or len(hhmm) != 5:
        raise ValueError(f"slot {key!r} is not YYYY-MM-DDTHH:MM")
    return date.fromisoformat(day), time.fromisoformat(hhmm)


def slot_day(key: str) -> date | None:
    """The local date of a slot key (the edition's date line), None if it is not a key."""
    try:
        return parse_key(key)[0]
    except ValueError:
        return None


def wall_time(day: date, at: time, zone: str) -> datetime:
    """``day`` at ``at`` in ``zone``, as UTC.

    The rule for daylight saving: a time that does not exist (spring forward, e.g. 02:30 in
    Berlin on 29 March 2026) runs shifted forward by the gap (03:30 local); a time that
    occurs twice (fall back) runs at its first occurrence. Either way, once per local date.
    """
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def make_slot(
    day: date, at: time, *, zone: str, lead: timedelta, wave_zones: Iterable[str] = ()
) -> Slot:
    """The slot of ``day`` at ``at`` (schedule zone ``zone``), with a wave per wave zone."""
    zones = sorted(set(wave_zones)) or [zone]
    waves = tuple(sorted((Wave(z, wall_time(day, at, z)) for z in zones), key=lambda w: w.at))
    return Slot(slot_key(day, at), day, at, zone, waves, waves[0].at - lead)


def slots_between(
    start: datetime,
    end: datetime,
    *,
    zone: str,
    times: Iterable[time],
    days: frozenset[int],
    lead: timedelta,
    wave_zones: Iterable[str] = (),
) -> list[Slot]:
    """Every slot whose local date lies between ``start``'s and ``end``'s (one day of margin
    each side, as waves reach up to a day either side of the schedule's date), by time."""
    tz = ZoneInfo(zone)
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    zones = tuple(wave_zones)
    out: list[Slot] = []
    day = first
    while day <= last:
        if day.weekday() in days:
            out.extend(make_slot(day, at, zone=zone, lead=lead, wave_zones=zones) for at in times)
        day += timedelta(days=1)
    return sorted(out, key=lambda s: (s.first_wave, s.key))


def next_slot(
    now: datetime,
    *,
    zone: str,
    times: Iterable[time],
    days: frozenset[int],
    lead: timedelta,
    wave_zones: Iterable[str] = (),
    skip: Iterable[str] = (),
) -> Slot:
    """The first slot whose send time (its first wave) has not passed (it may be now), and
    not in ``skip``."""
    skipped = set(skip)
    at_times = tuple(times)
    for span in (9, 40, 400):  # a schedule of few days still has a slot within 400 days
        for slot in slots_between(
            now,
            now + timedelta(days=span),
            zone=zone,
            times=at_times,
            days=days,
            lead=lead,
            wave_zones=wave_zones,
        ):
            if slot.first_wave >= now and slot.key not in skipped:
                return slot
    raise ValueError("the schedule has no slot in the next 400 days")


def served_wave(slot: Slot, built_at: datetime, lateness: timedelta) -> datetime:
    """The earliest wave an edition built at ``built_at`` must serve: the first one still to
    come then; if every wave was already due (a build after downtime), the last moment the
    earliest still-sendable one may go out."""
    ahead = [w.at for w in slot.waves if w.at > built_at]
    if ahead:
        return min(ahead)
    live = [w.at for w in slot.waves if w.at + lateness >= built_at]
    return min(live) + lateness if live else built_at


def in_quiet_hours(moment: datetime, window: Window, zone: str) -> bool:
    """True when ``moment`` falls in the daily quiet window (which may cross midnight)."""
    if window is None:
        return False
    start, end = window
    local = moment.astimezone(ZoneInfo(zone)).time()
    return start <= local < end if start <= end else (local >= start or local < end)


def quiet_end(moment: datetime, window: Window, zone: str) -> datetime:
    """``moment``, or the end of the quiet window it falls in."""
    if not in_quiet_hours(moment, window, zone) or window is None:
        return moment
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    end = datetime.combine(local.date(), window[1], tzinfo=tz)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), window[1], tzinfo=tz)
    return end.astimezone(UTC)


def quiet_start(now: datetime, window: Window, zone: str) -> datetime | None:
    """When the next quiet window starts: a send running then stops taking new rows."""
    if window is None:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    moment = datetime.combine(local.date(), window[0], tzinfo=tz)
    if moment <= local:
        moment = datetime.combine(local.date() + timedelta(days=1), window[0], tzinfo=tz)
    return moment.astimezone(UTC)


def unsendable_waves(
    *,
    zone: str,
    times: Sequence[time],
    wave_zones: Iterable[str],
    window: Window,
    lateness: timedelta,
    start: date,
    days: int = 371,
) -> list[tuple[str, time, datetime]]:
    """(wave zone, slot time, first such wave) for each wave that quiet hours hold past its
    lateness on some day of the coming year: it would never be sent."""
    if window is None:
        return []
    zones = sorted(set(wave_zones)) or [zone]
    found: dict[tuple[str, time], datetime] = {}
    for offset in range(days):
        day = start + timedelta(days=offset)
        for at in times:
            for z in zones:
                if (z, at) in found:
                    continue
                wave = wall_time(day, at, z)
                if quiet_end(wave, window, zone) - wave > lateness:
                    found[(z, at)] = wave
    return [(z, at, wave) for (z, at), wave in sorted(found.items(), key=lambda kv: kv[1])]


def local_label(moment: datetime, zone: str, *, with_zone: bool = True) -> str:
    """``moment`` as a person reads it where ``zone`` is: "Wed 25 Nov 2026 07:00 CET",
    with the zone's name ("(Europe/Berlin)") unless ``with_zone`` is false."""
    local = moment.astimezone(ZoneInfo(zone))
    text = f"{local:%a %d %b %Y %H:%M} {local.tzname() or ''}".rstrip()
    return f"{text} ({zone})" if with_zone else text
