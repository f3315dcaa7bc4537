"""The schedule: `digest tick` does what is due; `digest run` ticks from APScheduler 3.x.

This is the only module that imports APScheduler. All decisions live in ``tick``, driven by
the store (editions keyed by slot, the ledger, lease locks), never by timing, so a second
scheduler, a cron job and a manual `digest send` racing for one slot send it once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.app import App
from digest.editions import enforce_deadline
from digest.exceptions import DigestError, LockedError
from digest.locks import Lease
from digest.models import EditionState, Subscriber
from digest.pipeline import apply, build_edition, make_fetcher
from digest.rank import ThinDay
from digest.slots import Slot, in_quiet_hours, quiet_end, slots_around, wall_time

Echo = Callable[[str], None]
S = EditionState

FIRST_TICK = "(first tick)"
# Set by SIGTERM/SIGINT in `digest run`: a send in progress finishes what is on the wire.
STOP = threading.Event()


def slots(app: App, now: datetime) -> list[Slot]:
    sched = app.settings.schedule
    zones = _zones(app) if sched.local_delivery else ()
    return slots_around(
        now, zone=sched.timezone, times=sched.times, days=sched.days,
        lead=timedelta(minutes=sched.lead_minutes), wave_zones=zones,
    )  # fmt: skip


def _zones(app: App) -> set[str]:
    default = app.settings.schedule.timezone
    return {s.timezone or default for s in app.subscribers}


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
            with make_fetcher(app.settings) as fetcher:
                edition = build_edition(
                    app.settings, store=store, fetcher=fetcher, now=now,
                    subscribers=app.subscribers, slot=slot.key,
                )  # fmt: skip
        except ThinDay as exc:
            # Recorded once, so later ticks do not rebuild every minute until the slot.
            store.log_slot(slot.key, status="thin day", note=str(exc), now=now)
            echo(f"slot {slot.key}: no edition: {exc}")
            return
        echo(f"slot {slot.key}: built edition {edition.id} ({edition.state})")
    if edition.state is S.PENDING_APPROVAL:
        # The deadline may fall before the slot (approval.deadline_minutes); the policy
        # (skip: expire, send: auto-approve) is applied once it has passed.
        edition = enforce_deadline(app.settings, store, edition.id, now=now)
        if edition.state is S.EXPIRED:
            echo(f"slot {slot.key}: edition {edition.id} is {edition.state}; nothing sent")
            return
    if now < slot.first_wave:
        return
    if edition.state is S.PENDING_APPROVAL:
        echo(f"slot {slot.key}: edition {edition.id} still awaits approval")
        return
    if edition.state is S.APPROVED and now > slot.last_wave + late:
        apply(store, edition, S.EXPIRED, actor="digest", via="schedule", now=now,
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

    from digest.ledger import Ledger

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


def scheduled_tick(config_path: str) -> None:
    """The job APScheduler stores and runs: one tick on a fresh App (picklable by name)."""
    app = App(Path(config_path))
    try:
        Lease(
            app.store, "scheduler", ttl=max(120.0, 3.0 * app.settings.schedule.tick_seconds)
        ).acquire()
        tick(app, echo=lambda line: print(line, flush=True))
    except DigestError as exc:
        # A bad day (all sources down, SMTP refused) must not stop tomorrow's run.
        print(f"error: {exc}", flush=True)
    finally:
        app.close()


def run_forever(app: App, *, echo: Echo) -> None:
    """Block, ticking every `schedule.tick_seconds`, until SIGINT or SIGTERM.

    The tick job lives in APScheduler's SQLAlchemy job store in the state database, so a
    restart finds it; one scheduler per database, enforced by a lease.
    """
    settings = app.settings
    lease = Lease(app.store, "scheduler", ttl=max(120.0, 3.0 * settings.schedule.tick_seconds))
    lease.acquire()
    scheduler = BlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=app.store.engine)},
        timezone=ZoneInfo(settings.schedule.timezone),
    )
    scheduler.add_job(
        scheduled_tick, IntervalTrigger(seconds=settings.schedule.tick_seconds),
        args=[str(app.config_path.resolve())], id="digest-tick", replace_existing=True,
        coalesce=True, max_instances=1, misfire_grace_time=None,
        next_run_time=datetime.now(ZoneInfo(settings.schedule.timezone)),
    )  # fmt: skip

    def stop(signum: int, _frame: FrameType | None) -> None:
        echo(f"received signal {signum}; finishing the current step, then stopping")
        STOP.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    times = ", ".join(f"{t:%H:%M}" for t in settings.schedule.times)
    echo(f"scheduler started: editions at {times} {settings.schedule.timezone}, "
         f"checking every {settings.schedule.tick_seconds} s")  # fmt: skip
    try:
        scheduler.start()
    finally:
        lease.release()
