"""`digest run`: tick every `schedule.tick_seconds` from APScheduler 3.x (its only import).

The tick job lives in APScheduler's SQLAlchemy job store in the state database, so a
restart finds it; one scheduler per database, enforced by a lease.
"""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.app import App
from digest.delivery.lease import Lease
from digest.exceptions import DigestError
from digest.logline import LogLines
from digest.schedule.tick import STOP, Echo, tick


def scheduled_tick(config_path: str, log_format: str = "text") -> None:
    """The job APScheduler stores and runs: one tick on a fresh App (picklable by name)."""
    app = App(Path(config_path))
    log = LogLines(log_format, "tick", app.now, lambda line: print(line, flush=True))
    try:
        Lease(
            app.store, "scheduler", ttl=max(120.0, 3.0 * app.settings.schedule.tick_seconds)
        ).acquire()
        tick(app, echo=log)
    except DigestError as exc:
        # A bad day (all sources down, SMTP refused) must not stop tomorrow's run.
        log(f"error: {exc}")
    finally:
        app.close()


def run_forever(app: App, *, echo: Echo, log_format: str = "text") -> None:
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
        scheduled_tick,
        IntervalTrigger(seconds=settings.schedule.tick_seconds),
        args=[str(app.config_path.resolve()), log_format],
        id="digest-tick",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
        next_run_time=datetime.now(ZoneInfo(settings.schedule.timezone)),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        echo(f"received signal {signum}; finishing the current step, then stopping")
        STOP.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    times = ", ".join(f"{t:%H:%M}" for t in settings.schedule.times)
    echo(
        f"scheduler started: editions at {times} {settings.schedule.timezone}, "
        f"checking every {settings.schedule.tick_seconds} s"
    )
    try:
        scheduler.start()
    finally:
        lease.release()
