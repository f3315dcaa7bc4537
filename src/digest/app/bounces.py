"""Wiring: what comes back after a send (``app.bounces``): the return path's mailboxes read
by every tick through one intake, and the editors warned when an edition's complaints or
hard bounces pass the thresholds (bounces.complaint_alert, bounces.hard_bounce_alert)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial

from digest import notices
from digest.app.context import Context
from digest.app.readers import Readers
from digest.config.settings import ImapSettings
from digest.deliverability.hooks import HookEvent
from digest.deliverability.imap import Mailbox
from digest.exceptions import BounceError
from digest.store.figures import Figures, edition_figures
from digest.subscribers.bounces import Outcome, poll_imap, poll_maildir, take_webhook

Poll = Callable[[], list[Outcome]]


class Bounces:
    """The bounce mailboxes and the alarms (``app.bounces``)."""

    def __init__(self, context: Context, readers: Readers) -> None:
        self.context = context
        self.readers = readers

    def mailboxes(self) -> list[tuple[str, Poll]]:
        """(config key, a function that reads it) for each mailbox configured; each one
        fails on its own (a BounceError naming the mailbox), the others go on."""
        settings = self.context.settings.bounces
        out: list[tuple[str, Poll]] = []
        if settings.maildir is not None:
            folder = settings.maildir
            out.append(
                ("bounces.maildir", lambda: self._poll(partial(poll_maildir, folder=folder)))
            )
        if settings.imap is not None:
            imap = settings.imap
            out.append(("bounces.imap", lambda: self._poll_imap(imap)))
        return out

    def _poll(self, run: Callable[..., list[Outcome]]) -> list[Outcome]:
        settings = self.context.settings.bounces
        return run(
            store=self.context.store,
            now=self.context.now(),
            soft_limit=settings.soft_limit,
            soft_window_days=settings.soft_window_days,
            find=self.readers.delivery_finder(),
        )

    def _poll_imap(self, imap: ImapSettings) -> list[Outcome]:
        password = os.environ.get(imap.password_env, "")
        if not password:
            raise BounceError(
                f"bounces.imap: the environment variable {imap.password_env} "
                "(bounces.imap.password_env) is not set; export the mailbox's password there"
            )
        mailbox = Mailbox(
            host=imap.host,
            port=imap.port,
            user=imap.user,
            password=password,
            security=imap.security,
            ca_file=imap.ca_file,
        )
        with mailbox:
            run = partial(
                poll_imap, mailbox=mailbox, folder=imap.folder, done_folder=imap.done_folder
            )
            return self._poll(run)

    def take_webhook(
        self, provider: str, events: list[HookEvent], *, request_id: str = ""
    ) -> list[str]:
        """Apply a verified provider webhook's events (bounces, complaints) to the list,
        through the same policy as the mailboxes."""
        settings = self.context.settings.bounces
        return take_webhook(
            self.context.store,
            provider,
            events,
            now=self.context.now(),
            request_id=request_id,
            soft_limit=settings.soft_limit,
            soft_window_days=settings.soft_window_days,
            find=self.readers.delivery_finder(),
        )

    def figures(self, edition_ids: Iterable[int]) -> dict[int, Figures]:
        return edition_figures(self.context.store, sorted(set(edition_ids)))

    def alert(self, outcomes: Iterable[Outcome]) -> list[int]:
        """Mail the editors once per edition whose complaints or hard bounces pass the
        thresholds, for the editions ``outcomes`` came back from; those editions (a notice
        that cannot be mailed is a line in ``notes``)."""
        settings = self.context.settings.bounces
        touched = {o.sent.edition_id for o in outcomes if o.sent is not None}
        over_limit: list[int] = []
        for edition_id, figures in self.figures(touched).items():
            over = (
                figures.rate(figures.complaints) > settings.complaint_alert
                or figures.rate(figures.hard) > settings.hard_bounce_alert
            )
            if over:
                edition = self.context.store.get_edition(edition_id)
                notice = notices.returns_alert(
                    edition_id,
                    edition.slot,
                    figures,
                    complaint_alert=settings.complaint_alert,
                    hard_bounce_alert=settings.hard_bounce_alert,
                )
                self.context.notify(notice)
                over_limit.append(edition_id)
        return over_limit
