"""`digest tick`: do what the schedule says is due now (build, proof, expire, send).

All decisions live here, driven by the store (editions keyed by slot, the ledger, lease
locks), never by timing, so a second scheduler, a cron job and a manual `digest send`
racing for one slot send it once. schedule.runner calls this from APScheduler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.app import App
from digest.approval import move
from digest.delivery.lease import Lease
from digest.exceptions import LockedError, ThinDay
from digest.models import EditionState, Subscriber
from digest.schedule.slots import Slot, in_quiet_hours, quiet_end, slots_around, wall_time
from digest.store.ledger import Ledger

Echo = Callable[[str], None]
S = EditionState

FIRST_TICK = "(first tick)"
# Set by SIGTERM/SIGINT in `digest run`: a send in progress finishes what is on the wire.
STOP = threading.Event()


def slots(app: App, now: datetime) -> list[Slot]:
    sched = app.settings.schedule
    zones = {z or sched.timezone for z in app.timezones()} if sched.local_delivery else set[str]()
    return slots_around(
        now, zone=sched.timezone, times=sched.times, days=sched.days,
        lead=timedelta(minutes=sched.lead_minutes), wave_zones=zones,
    )  # fmt: skip


def tick(app: App, *, echo: Echo) -> None:
    """Do whatever the schedule says is due now (build, proof, expire, send), then return.

    Idempotent: cron may call it every minute, `digest run` does. Slots that were over
    before the first tick ever (a fresh install) are left alone; later ones that nobody
    handled in time are recorded as missed.
    """
    now = app.now()
    store = app.store
    store.log_slot(FIRST_TICK, status="first tick", note="", now=now)
    first = store.slot_logged_at(FIRST_TICK) or now
    late = timedelta(minutes=app.settings.schedule.max_lateness_minutes)
    every = slots(app, now)
    due = [s for s in every if s.build_at <= now and s.last_wave + late >= first]
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        echo(line)

    for slot in due:
        try:
            with Lease(store, f"slot {slot.key}", ttl=app.settings.send.lock_ttl_seconds):
                _handle(app, slot, now, say)
        except LockedError:
            say(f"slot {slot.key}: another process is handling it")
    if not said:
        upcoming = [s for s in every if s.build_at > now]
        nxt = f"; next: slot {upcoming[0].key} builds at {upcoming[0].build_at.isoformat()}"
        echo("nothing due" + (nxt if upcoming else ""))


def _handle(app: App, slot: Slot, now: datetime, echo: Echo) -> None:
    store = app.store
    late = timedelta(minutes=app.settings.schedule.max_lateness_minutes)
    edition = store.latest_for_slot(slot.key)
    if edition is None or edition.state is S.REJECTED:
        if store.slot_status(slot.key):
            return
        if now > slot.first_wave + late:
            note = f"nothing built by {slot.first_wave.isoformat()} + maximum lateness"
            if store.log_slot(slot.key, status="missed", note=note, now=now):
                echo(f"slot {slot.key}: missed (digest was not running); expired, not sent late")
            return
        if edition is not None:
            return  # rejected: an editor builds again by hand if they want one
        try:
            edition = app.build(slot=slot.key)
        except ThinDay as exc:
            # Recorded once, so later ticks do not rebuild every minute until the slot.
            store.log_slot(slot.key, status="thin day", note=str(exc), now=now)
            echo(f"slot {slot.key}: no edition: {exc}")
            return
        echo(f"slot {slot.key}: built edition {edition.id} ({edition.state})")
    if edition.state is S.PENDING_APPROVAL:
        # The deadline may fall before the slot (approval.deadline_minutes); the policy
        # (skip: expire, send: auto-approve) is applied once it has passed.
        edition = app.enforce_deadline(edition.id)
        if edition.state is S.EXPIRED:
            echo(f"slot {slot.key}: edition {edition.id} is {edition.state}; nothing sent")
            return
    if now < slot.first_wave:
        return
    if edition.state is S.PENDING_APPROVAL:
        echo(f"slot {slot.key}: edition {edition.id} still awaits approval")
        return
    if edition.state is S.APPROVED and now > slot.last_wave + late:
        move(store, edition, S.EXPIRED, actor="digest", via="schedule", now=now,
             note="approved, but the slot passed its maximum lateness; not sent late")  # fmt: skip
        echo(f"slot {slot.key}: edition {edition.id} too late to send; expired")
        return
    if edition.state not in (S.APPROVED, S.SENDING):
        return
    _send(app, slot, edition.id, now, echo)


def _send(app: App, slot: Slot, edition_id: int, now: datetime, echo: Echo) -> None:
    sched = app.settings.schedule
    zone = sched.timezone
    if in_quiet_hours(now, sched.quiet_hours, zone):
        echo(f"slot {slot.key}: quiet hours; sending resumes at "
             f"{quiet_end(now, sched.quiet_hours, zone).isoformat()}")  # fmt: skip
        return

    def not_before(sub: Subscriber) -> datetime:
        at = (
            wall_time(slot.local_date, slot.at, sub.timezone or zone)
            if sched.local_delivery
            else slot.first_wave
        )
        return quiet_end(at, sched.quiet_hours, zone)

    edition = app.store.get_edition(edition_id)
    if edition.state is S.SENDING:
        late = timedelta(minutes=sched.max_lateness_minutes)
        skipped = Ledger(app.store).skip_stale(edition_id, due_before=now - late, now=now)
        if skipped:
            echo(f"slot {slot.key}: {skipped} deliveries missed their time; skipped, not sent late")
    report = app.send(
        edition_id, actor="schedule", stop=STOP, not_before=not_before,
        until=_quiet_start(now, sched.quiet_hours, zone),
    )  # fmt: skip
    echo(f"slot {slot.key}: {report.summary()}")


def _quiet_start(now: datetime, window: tuple[time, time] | None, zone: str) -> datetime | None:
    """When the next quiet window starts: a send running then stops taking new rows."""
    if window is None:
        return None
    start = window[0]
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    moment = datetime.combine(local.date(), start, tzinfo=tz)
    if moment <= local:
        moment += timedelta(days=1)
    return moment
