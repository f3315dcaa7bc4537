"""Wiring of the send: an edition to its readers through this config's backend
(``app.sending``), with the editors told when it finishes or stops."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from digest import notices
from digest.app.context import Context, Progress
from digest.app.readers import Readers
from digest.delivery import control
from digest.delivery.engine import send_edition, work_edition
from digest.delivery.report import SendReport
from digest.exceptions import DigestError, LockedError
from digest.models import Edition, EditionState
from digest.store.figures import Figures, edition_figures

S = EditionState


class Sending:
    """Sending and resuming editions (``app.sending``)."""

    def __init__(self, context: Context, readers: Readers) -> None:
        self.context = context
        self.readers = readers

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
        before = self.context.store.get_edition(edition_id)
        try:
            if not dry_run:
                self.readers.sync()
            with self.readers.footers() as about:
                report = send_edition(
                    self.context.store,
                    edition_id,
                    subscribers=self.readers.receiving(),
                    backend=self.context.backend,
                    make=self.readers.composer(about=about),
                    clock=self.context.clock,
                    actor=actor,
                    dry_run=dry_run,
                    options=self.context.settings.send,
                    progress=progress,
                    stop=stop,
                    not_before=not_before,
                    until=until,
                    stale_before=stale_before,
                    on_sending=on_sending,
                    journal=self.journal(),
                )
        except LockedError:
            raise  # another process is sending it: nothing stopped
        except DigestError as exc:
            if not dry_run:
                self._stopped(edition_id, str(exc))
            raise
        if dry_run:
            return report
        if report.state in (S.SENT, S.FAILED):
            self.ended(edition_id)
        elif report.interrupted:
            why = "interrupted (SIGTERM or Ctrl-C) before every reader got it"
            self.context.notify(notices.stopped(edition_id, before.slot, why))
        elif report.stopped:  # a dead or tarpitting server (delivery.breaker)
            self.context.notify(notices.stopped(edition_id, before.slot, report.stopped))
        return report

    def _still_sending(self, edition_id: int) -> bool:
        try:
            return self.context.store.get_edition(edition_id).state is S.SENDING
        except DigestError:
            return False  # the database is away: the error being raised says so already

    def ended(self, edition_id: int) -> None:
        """The ``sent`` notice of an edition that has ended, with the whole edition's figures
        (every worker's deliveries) and its real start and end; mailed once, by whichever
        process sees it ended first (a send, a worker, or the next tick)."""
        store = self.context.store
        edition = store.get_edition(edition_id)
        if edition.state not in (S.SENT, S.FAILED):
            return
        trail = store.audit_trail(edition_id)
        started = next((a.at for a in trail if a.to_state == S.SENDING), None)
        ended = next((a.at for a in reversed(trail) if a.to_state == edition.state), None)
        totals = store.delivery_counts(edition_id)
        notice = notices.sent(
            edition_id,
            edition.slot,
            str(edition.state),
            totals,
            started=started,
            ended=ended,
            returned=self._returned(edition_id),
        )
        self.context.notify(notice)

    def _returned(self, edition_id: int) -> dict[int, Figures]:
        """The bounce and complaint figures of ``edition_id`` and of the edition sent before
        it, for the sent notice (the earlier one's have had time to come back)."""
        store = self.context.store
        earlier = [
            e.id
            for e in store.list_editions(limit=20)
            if e.id < edition_id and e.state is EditionState.SENT
        ]
        return edition_figures(store, [edition_id, *earlier[:1]])

    def work(
        self,
        edition_id: int,
        *,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
        wait_for_retries: bool = False,
    ) -> SendReport:
        """One worker pass over an edition that is sending (`digest worker`, the helpers of
        `send --workers`); the worker that ends it tells the editors, and so does one that
        stops before the end (a dead server, a failing backend), once per cause."""
        try:
            with self.readers.footers() as about:
                report = work_edition(
                    self.context.store,
                    edition_id,
                    backend=self.context.backend,
                    make=self.readers.composer(about=about),
                    clock=self.context.clock,
                    options=self.context.settings.send,
                    stop=stop,
                    progress=progress,
                    wait_for_retries=wait_for_retries,
                    journal=self.journal(),
                )
        except LockedError:
            raise
        except DigestError as exc:
            self._stopped(edition_id, str(exc))
            raise
        if report.state in (S.SENT, S.FAILED):
            self.ended(edition_id)
        elif report.stopped and not report.interrupted:
            self._stopped(edition_id, report.stopped)
        return report

    def _stopped(self, edition_id: int, why: str) -> None:
        if self._still_sending(edition_id):
            slot = self.context.store.get_edition(edition_id).slot
            self.context.notify(notices.stopped(edition_id, slot, why))

    def journal(self) -> Path:
        """The send journal's folder: beside the SQLite state file (with PostgreSQL, the
        folder state_path names is still this host's), shared by this host's workers."""
        context = self.context
        return (context.state_path or context.settings.state_path).parent / "journal"

    # An editor's control of a send (`digest pause|resume|cancel`, the desk's buttons).

    def pause(self, edition_id: int, *, by: str, via: str) -> Edition:
        return control.pause(self.context.store, edition_id, by=by, via=via, now=self.context.now())

    def resume(self, edition_id: int, *, by: str, via: str) -> Edition:
        """Lift the pause; the caller sends the rest (`send`, or any running worker)."""
        return control.resume(
            self.context.store, edition_id, by=by, via=via, now=self.context.now()
        )

    def cancel(self, edition_id: int, *, by: str, via: str) -> Edition:
        return control.cancel(
            self.context.store, edition_id, by=by, via=via, now=self.context.now()
        )

    def progress(self, edition_id: int) -> control.Progress:
        return control.progress(self.context.store, edition_id, now=self.context.now())
