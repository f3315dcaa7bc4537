"""The daily schedule: build before the slot, send at it. The only module importing APScheduler."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.app import App
from digest.exceptions import DigestError
from digest.models import EditionState
from digest.pipeline import apply, build_edition, make_fetcher, slot_for
from digest.send import send_edition

Echo = Callable[[str], None]


def slot_times(app: App, now: datetime) -> tuple[datetime, datetime]:
    """(build_at, send_at) of the slot on ``now``'s local date, as aware datetimes."""
    sched = app.settings.schedule
    tz = ZoneInfo(sched.timezone)
    send_at = datetime.combine(now.astimezone(tz).date(), sched.time, tzinfo=tz)
    return send_at - timedelta(minutes=sched.lead_minutes), send_at


def build_job(app: App, echo: Echo) -> None:
    """Build the edition for the coming slot, unless one exists already."""
    now = app.now()
    # The build runs lead_minutes before the slot; the slot's date is the send time's date.
    send_at = now + timedelta(minutes=app.settings.schedule.lead_minutes)
    _build_slot(app, echo, slot_for(app.settings, send_at), now)


def _build_slot(app: App, echo: Echo, slot: str, now: datetime) -> None:
    existing = app.store.latest_for_slot(slot)
    if existing is not None and existing.state is not EditionState.REJECTED:
        echo(f"slot {slot}: edition {existing.id} exists ({existing.state}); not building again")
        return
    with make_fetcher(app.settings) as fetcher:
        edition = build_edition(app.settings, store=app.store, fetcher=fetcher, now=now)
    echo(f"slot {slot}: built edition {edition.id} ({edition.state})")


def send_job(app: App, echo: Echo) -> None:
    """Send the slot's edition if approved; expire it if nobody approved it in time."""
    now = app.now()
    _send_slot(app, echo, slot_for(app.settings, now), now)


def _send_slot(app: App, echo: Echo, slot: str, now: datetime) -> None:
    edition = app.store.latest_for_slot(slot)
    if edition is None:
        echo(f"slot {slot}: no edition was built; nothing to send")
        return
    if edition.state is EditionState.PENDING_APPROVAL:
        apply(app.store, edition, EditionState.EXPIRED, actor="digest", via="schedule", now=now,
              note="not approved by send time")  # fmt: skip
        echo(f"slot {slot}: edition {edition.id} was not approved in time; expired, not sent")
        return
    if edition.state not in (EditionState.APPROVED, EditionState.SENDING):
        echo(f"slot {slot}: edition {edition.id} is {edition.state}; nothing to send")
        return
    report = send_edition(
        app.store, edition.id, subscribers=app.subscribers, backend=app.backend(),
        make=app.envelopes, clock=app.now, actor="schedule",
    )  # fmt: skip
    echo(report.summary())


def tick(app: App, *, echo: Echo) -> None:
    """Do whatever today's slot needs now (build, send or expire), then return.

    Idempotent: cron may call it every few minutes; the store decides what is left to do.
    """
    now = app.now()
    build_at, send_at = slot_times(app, now)
    slot = slot_for(app.settings, send_at)
    if now < build_at:
        echo(f"slot {slot}: nothing due until {build_at.isoformat()}")
        return
    _build_slot(app, echo, slot, now)
    if now >= send_at:
        _send_slot(app, echo, slot, now)
    else:
        echo(f"slot {slot}: sending at {send_at.isoformat()}")


def _guarded(job: Callable[[App, Echo], None], app: App, echo: Echo) -> Callable[[], None]:
    def run() -> None:
        try:
            job(app, echo)
        except DigestError as exc:
            # A bad day (all sources down, SMTP refused) must not stop tomorrow's run.
            echo(f"error: {exc}")

    return run


def triggers(app: App) -> tuple[CronTrigger, CronTrigger]:
    """(build, send) triggers in the schedule's time zone."""
    sched = app.settings.schedule
    tz = ZoneInfo(sched.timezone)
    send_at = datetime.combine(datetime(2000, 1, 3).date(), sched.time)
    build_at = send_at - timedelta(minutes=sched.lead_minutes)
    return (
        CronTrigger(hour=build_at.hour, minute=build_at.minute, timezone=tz),
        CronTrigger(hour=send_at.hour, minute=send_at.minute, timezone=tz),
    )


def run_forever(app: App, *, echo: Echo) -> None:
    """Block, running the build and send jobs daily until SIGINT or SIGTERM."""
    app.settings  # noqa: B018 - fail on a bad config now, not at the first job
    scheduler = BlockingScheduler(timezone=ZoneInfo(app.settings.schedule.timezone))
    build_trigger, send_trigger = triggers(app)
    scheduler.add_job(_guarded(build_job, app, echo), build_trigger, id="build",
                      misfire_grace_time=3600, coalesce=True)  # fmt: skip
    scheduler.add_job(_guarded(send_job, app, echo), send_trigger, id="send",
                      misfire_grace_time=3600, coalesce=True)  # fmt: skip

    def stop(signum: int, _frame: FrameType | None) -> None:
        echo(f"received signal {signum}; stopping after the current job")
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = app.settings.schedule
    echo(f"scheduler started: send daily at {s.time:%H:%M} {s.timezone}, "
         f"build {s.lead_minutes} min before")  # fmt: skip
    scheduler.start()
