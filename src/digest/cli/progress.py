"""Progress for long sends: a rich bar on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from digest.app import App
from digest.delivery.report import SendReport

LOG_EVERY = 10.0


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """SIGTERM (systemd, kill) asks the engine to finish what is on the wire and stop."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def send_with_progress(app: App, edition_id: int, *, dry_run: bool = False) -> SendReport:
    with stop_on_sigterm() as stop:
        if dry_run:
            return app.sending.send(edition_id, dry_run=True)
        if sys.stdout.isatty():
            with Progress(
                TextColumn(f"edition {edition_id}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TimeRemainingColumn(),
            ) as bar:
                task = bar.add_task("send", total=None, rate=0.0)
                return app.sending.send(edition_id, progress=_bar(bar, task), stop=stop)
        return app.sending.send(edition_id, progress=_log_lines(), stop=stop)


def _done(report: SendReport) -> int:
    return report.sent + report.failed + report.skipped + report.unknown


def _bar(bar: Progress, task: object) -> Callable[[SendReport], None]:
    started = time.monotonic()

    def update(report: SendReport) -> None:
        done = _done(report)
        rate = done / max(time.monotonic() - started, 1e-6)
        bar.update(task, completed=done, total=report.total or None, rate=rate)  # type: ignore[arg-type]

    return update


def _log_lines() -> Callable[[SendReport], None]:
    started = time.monotonic()
    last = [started]

    def update(report: SendReport) -> None:
        now = time.monotonic()
        if now - last[0] >= LOG_EVERY:
            last[0] = now
            done = _done(report)
            rate = done / max(now - started, 1e-6)
            print(
                f"edition {report.edition_id}: {done} done ({report.sent} sent, "
                f"{report.failed} failed, {report.deferred} deferred) at {rate:.0f}/s",
                flush=True,
            )

    return update
