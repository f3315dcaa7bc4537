"""Wiring of the schedule: the slots, waves, lateness and deadlines of this config."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property

from digest import workflow
from digest.app.readers import ReaderList
from digest.exceptions import DigestError
from digest.models import Edition, EditionState
from digest.slots import Slot, make_slot, next_slot, parse_key, slots_between

S = EditionState


class Schedule(ReaderList):
    """The schedule's slots as this config (and its readers' zones) make them."""

    @property
    def lateness(self) -> timedelta:
        return timedelta(minutes=self.settings.schedule.max_lateness_minutes)

    @cached_property
    def wave_zones(self) -> tuple[str, ...]:
        """The zones of the send waves: each reader's (deliver_at: local), else none."""
        sched = self.settings.schedule
        if not sched.local_delivery:
            return ()
        return tuple(sorted({z or sched.timezone for z in self.timezones()}))

    def slot_for(self, key: str) -> Slot:
        """The slot ``key`` ("YYYY-MM-DDTHH:MM" in the schedule's zone) with its waves."""
        sched = self.settings.schedule
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
        sched = self.settings.schedule
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
        sched = self.settings.schedule
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
            latest = self.store.latest_for_slot(slot.key)
            if latest is None or latest.state not in (S.SENDING, S.SENT, S.FAILED):
                return slot
            taken.append(slot.key)

    def deadline(self, edition: Edition) -> datetime:
        """The approval deadline: before the earliest wave the edition must serve (UTC)."""
        return workflow.deadline(
            edition,
            policy=self.settings.approval,
            slot=self.slot_for(edition.slot),
            lateness=self.lateness,
        )
