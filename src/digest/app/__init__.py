"""Wiring: turn a config file into the collaborators the pipeline, workflow and engine need.

``App`` is built up in layers, one module each: base (settings, store, renderer, pipeline,
messages), schedule (slots and deadlines), editions (build, proofs, decisions), and the
send here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from digest import notices
from digest.app.base import Progress, make_clock
from digest.app.editions import Editions
from digest.delivery.engine import send_edition, work_edition
from digest.delivery.report import SendReport
from digest.exceptions import DigestError, LockedError
from digest.models import EditionState

S = EditionState

__all__ = ["App", "Progress", "make_clock"]


class App(Editions):
    """One config file's collaborators, created on first use."""

    def send(
        self,
        edition_id: int,
        *,
        actor: str = "cli",
        dry_run: bool = False,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        not_before: Callable[[str], datetime] | None = None,
        until: datetime | None = None,
        stale_before: datetime | None = None,
        on_sending: Callable[[], None] | None = None,
    ) -> SendReport:
        """Send (or resume) an edition with this config's backend and send settings; the
        editors get a notice when it finishes or stops.

        The subscriber file is synchronised first (a bad entry stops here, before any state
        change); the recipients are then the state database's readers, streamed.
        """
        before = self.store.get_edition(edition_id)
        try:
            if not dry_run:
                self.sync_subscribers()
            with self.footers() as about:
                report = send_edition(
                    self.store,
                    edition_id,
                    subscribers=self.iter_subscribers(),
                    backend=self.backend,
                    make=self.composer(about=about),
                    clock=self.clock,
                    actor=actor,
                    dry_run=dry_run,
                    options=self.settings.send,
                    progress=progress,
                    stop=stop,
                    not_before=not_before,
                    until=until,
                    stale_before=stale_before,
                    on_sending=on_sending,
                )
        except LockedError:
            raise  # another process is sending it: nothing stopped
        except DigestError as exc:
            if not dry_run and self.store.get_edition(edition_id).state is S.SENDING:
                self.notify(notices.stopped(edition_id, before.slot, str(exc), at=self.now()))
            raise
        if dry_run:
            return report
        if report.state in (S.SENT, S.FAILED) and before.state is not report.state:
            summary = report.summary()
            self.notify(notices.sent(edition_id, before.slot, summary, report.totals))
        elif report.interrupted:
            why = "interrupted (SIGTERM or Ctrl-C) before every reader got it"
            self.notify(notices.stopped(edition_id, before.slot, why, at=self.now()))
        return report

    def work(
        self,
        edition_id: int,
        *,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
        wait_for_retries: bool = False,
    ) -> SendReport:
        """One worker pass over an edition that is sending (`digest worker`)."""
        with self.footers() as about:
            return work_edition(
                self.store,
                edition_id,
                backend=self.backend,
                make=self.composer(about=about),
                clock=self.clock,
                options=self.settings.send,
                stop=stop,
                progress=progress,
                wait_for_retries=wait_for_retries,
            )
