"""Wiring of the schedule: the slots, waves, lateness and deadlines of this config."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property

from digest import workflow
from digest.app.context import Context
from digest.app.readers import Readers
from digest.exceptions import DigestError
from digest.models import Edition, EditionState
from digest.slots import Slot, make_slot, next_slot, parse_key, slots_between

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
