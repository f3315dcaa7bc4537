"""Wiring of the schedule: the slots, waves, lateness and deadlines of this config."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from digest import workflow
from digest.app.context import Context
from digest.app.readers import Readers
from digest.delivery import control
from digest.exceptions import DigestError
from digest.models import Edition, EditionState
from digest.slots import (
    Slot,
    local_label,
    make_slot,
    next_slot,
    parse_key,
    slots_between,
    wall_time,
)
from digest.store.sendtime import SendTimes

S = EditionState


class Schedule:
    """The schedule's slots as this config (and its readers' zones) make them
    (``app.schedule``)."""

    def __init__(self, context: Context, readers: Readers) -> None:
        self.context = context
        self.readers = readers

    @property
    def lateness(self) -> timedelta:
        return timedelta(minutes=self.context.settings.schedule.max_lateness_minutes)

    @cached_property
    def wave_zones(self) -> tuple[str, ...]:
        """The zones of the send waves: each reader's (deliver_at: local), else none."""
        sched = self.context.settings.schedule
        if not sched.local_delivery:
            return ()
        return tuple(sorted({z or sched.timezone for z in self.readers.timezones()}))

    def slot_for(self, key: str) -> Slot:
        """The slot ``key`` ("YYYY-MM-DDTHH:MM" in the schedule's zone) with its waves."""
        sched = self.context.settings.schedule
        try:
            day, at = parse_key(key)
        except ValueError:
            raise DigestError(
                f"slot {key!r} is not YYYY-MM-DDTHH:MM (e.g. 2026-11-25T07:00)"
            ) from None
        return make_slot(
            day,
            at,
            zone=sched.timezone,
            lead=timedelta(minutes=sched.lead_minutes),
            wave_zones=self.wave_zones,
        )

    def slots_between(self, start: datetime, end: datetime) -> list[Slot]:
        sched = self.context.settings.schedule
        return slots_between(
            start,
            end,
            zone=sched.timezone,
            times=sched.times,
            days=sched.days,
            lead=timedelta(minutes=sched.lead_minutes),
            wave_zones=self.wave_zones,
        )

    def next_slot(self, now: datetime, *, skip: Sequence[str] = ()) -> Slot:
        """The first slot whose send time has not passed (and not in ``skip``)."""
        sched = self.context.settings.schedule
        return next_slot(
            now,
            zone=sched.timezone,
            times=sched.times,
            days=sched.days,
            lead=timedelta(minutes=sched.lead_minutes),
            wave_zones=self.wave_zones,
            skip=skip,
        )

    def build_slot(self, now: datetime) -> Slot:
        """Where `digest build` goes by default: the next slot whose send time has not
        passed and that has no edition sending or sent already."""
        taken: list[str] = []
        while True:
            slot = self.next_slot(now, skip=taken)
            latest = self.context.store.latest_for_slot(slot.key)
            if latest is None or latest.state not in (S.SENDING, S.SENT, S.FAILED):
                return slot
            taken.append(slot.key)

    def deadline(self, edition: Edition) -> datetime:
        """The approval deadline: before the earliest wave the edition must serve (UTC)."""
        return workflow.deadline(
            edition,
            policy=self.context.settings.approval,
            slot=self.slot_for(edition.slot),
            lateness=self.lateness,
        )

    # An editor's move of one edition's send time (`digest reschedule`, the desk's form).

    def delay(self, edition: Edition) -> timedelta:
        """How much later than its slot's time the edition goes (zero unless moved): every
        wave of the slot is delayed by it."""
        moved = SendTimes(self.context.store).get(edition.id)
        if moved is None:
            return timedelta(0)
        return moved - self._own_time(self.slot_for(edition.slot))

    def send_time(self, edition: Edition) -> datetime:
        """When the edition's first wave goes: the slot's, or later if an editor moved it."""
        return self.slot_for(edition.slot).first_wave + self.delay(edition)

    def window(self, edition: Edition) -> tuple[datetime, datetime]:
        """The send times the edition may be moved to: its slot's time to the lateness."""
        start = self._own_time(self.slot_for(edition.slot))
        return start, start + self.lateness

    def reschedule(self, edition_id: int, clock: str, *, by: str, via: str) -> Edition:
        """Move the edition's send time to ``clock`` (HH:MM in the schedule's zone) within
        its slot's lateness; DigestError naming the window otherwise. Audited."""
        edition = self.context.store.get_edition(edition_id)
        zone = self.context.settings.schedule.timezone
        found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", clock)
        if not found or int(found[1]) > 23 or int(found[2]) > 59:
            raise DigestError(f"{clock.strip()!r} is not a time: give HH:MM in {zone} (e.g. 07:30)")
        start, end = self.window(edition)
        at = time(int(found[1]), int(found[2]))
        local = start.astimezone(ZoneInfo(zone))
        moved = wall_time(local.date(), at, zone)
        if moved < start:  # past midnight: a slot at 23:30 may go at 00:15 the next day
            moved = wall_time(local.date() + timedelta(days=1), at, zone)
        label = local_label(moved, zone)
        if not start <= moved <= end:
            raise DigestError(
                f"{clock.strip()} is outside edition {edition_id}'s send window, "
                f"{local_label(start, zone, with_zone=False)} to {local_label(end, zone)} "
                f"(its slot's time up to schedule.max_lateness_minutes); nothing was changed"
            )
        if moved < self.context.now() and moved != start:
            raise DigestError(f"{label} has passed; give a later time (nothing was changed)")
        note = f"send time moved to {label} (slot time {local_label(start, zone)})"
        return control.move_send(
            self.context.store,
            edition_id,
            at=None if moved == start else moved,
            by=by,
            via=via,
            now=self.context.now(),
            note=note,
        )

    def _own_time(self, slot: Slot) -> datetime:
        """The slot's time in the schedule's own zone (what HH:MM is measured from)."""
        return wall_time(slot.local_date, slot.at, self.context.settings.schedule.timezone)
