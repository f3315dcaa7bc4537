"""Wiring: the readers (the list in the state database, the subscriber file synced into it)
and what each of their messages is made of (personaliser, footers)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from digest import notices
from digest.app.context import Context
from digest.deliverability.model import Delivery
from digest.exceptions import ConfigError
from digest.models import Edition, Subscriber, Variant
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Footer, Personaliser, envelope_factory
from digest.returnpath import PREFIX, ReturnPaths
from digest.store import Store
from digest.store.returns import Returns, Sent
from digest.store.subscribers import Receiving, SubscriberStore
from digest.subscribers.bounces import Finder, Outcome, poll_maildir
from digest.subscribers.files import count_subscribers, entries
from digest.subscribers.links import FooterMaker, archive_url
from digest.subscribers.signup import Readers as ReaderPages
from digest.subscribers.sync import SyncReport, sync_file
from digest.tokens import (
    ARCHIVE_SALT,
    CONFIRM_SALT,
    PREFERENCES_SALT,
    LinkSigner,
    Signer,
    secrets_from_env,
)


class Readers:
    """Who gets the edition, and each reader's own message (``app.readers``)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        # The scheduler's way (digest tick / run): a subscriber file with a mistake does not
        # stop the schedule; the last good list is used, the editors told once.
        self.lenient = False

    # The subscriber file: validated and synced, streamed (never held in memory whole).

    def _no_file(self) -> bool:
        return (
            self.context.settings.signup.enabled
            and not self.context.settings.subscribers_path.exists()
        )

    def in_file(self) -> Iterator[Subscriber]:
        """The subscriber file's entries, each validated, streamed (none when sign-up is on
        and there is no file)."""
        if self._no_file():
            return iter(())
        return (sub for _line, sub in entries(self.context.settings.subscribers_path))

    def count_file(self) -> int:
        """Validate the whole subscriber file (duplicates included) and count it, streamed."""
        return 0 if self._no_file() else count_subscribers(self.context.settings.subscribers_path)

    def sync(self, *, force: bool = False, dry_run: bool = False) -> SyncReport:
        """Bring the state database in line with the subscriber file (subscribers_sync)."""
        s = self.context.settings
        try:
            return sync_file(
                self.context.store,
                s.subscribers_path,
                mode=s.sync_mode,
                now=self.context.now(),
                force=force,
                dry_run=dry_run,
                missing_ok=s.signup.enabled,
            )
        except ConfigError as exc:
            if not self.lenient:
                raise
            problem = f"{exc} (the last good subscriber list is used until it is fixed)"
            if problem not in self.context.notes:
                self.context.notes.append(problem)
                self.context.notify(notices.subscribers_broken(str(exc)))
            return SyncReport(file=str(s.subscribers_path), mode=s.sync_mode, dry_run=dry_run)

    # The readers in the state database.

    def receiving(self) -> Receiving:
        """Everyone the next edition goes to, from the state database (streamed by key)."""
        return SubscriberStore(self.context.store).receiving(now=self.context.now())

    def selections(self) -> list[tuple[str, ...]]:
        """Every distinct topic selection among those readers (one query)."""
        return SubscriberStore(self.context.store).selections(now=self.context.now())

    def timezones(self) -> set[str]:
        """The readers' time zones (for per-zone waves): the state database's, or the
        subscriber file's while there is no state file yet (a preview creates none)."""
        where = self.context.state_location()
        if isinstance(where, Path) and not where.exists():
            return {s.timezone for s in self.in_file()}
        return SubscriberStore(self.context.store).timezones(now=self.context.now())

    def pages(self, environ: Mapping[str, str] | None = None) -> ReaderPages:
        """The readers' side of the list (sign-up, confirmation, preferences) for the web."""
        keys = secrets_from_env(self.context.settings.secret_env, environ)
        return ReaderPages(
            self.context.store,
            self.context.settings.publication,
            self.context.settings.topics,
            confirms=Signer(keys, salt=CONFIRM_SALT, clock=self.context.now),
            preferences=LinkSigner(keys, salt=PREFERENCES_SALT, clock=self.context.now),
            backend=self.context.mail_backend,
            clock=self.context.clock,
            check_deliverability=self.context.settings.signup.check_deliverability,
        )

    # Each reader's message.

    def personaliser(
        self,
        edition: Edition,
        *,
        signer_required: bool = True,
        about: Callable[[Subscriber], Footer] | None = None,
    ) -> Personaliser:
        email = self.context.settings.email
        pub = self.context.settings.publication
        prepared = prepare_message(
            edition.rendered,
            pub,
            unsubscribe_mailto=email.unsubscribe_mailto,
            extra_headers=dict(email.headers),
            feedback_id=email.feedback_id,
            dkim=self.context.dkim,
            preferences_url=email.preferences_url,
        )
        # The same "View in browser" link for every reader of the edition (with its key
        # when the archive is private); filled in at send time, as the id is known only then.
        private = (
            None if self.context.settings.archive.public else self.context.signer(salt=ARCHIVE_SALT)
        )
        view = archive_url(pub.base_url, edition.id, private) if edition.id else ""
        return Personaliser(
            prepared,
            pub,
            self.context.signer(required=signer_required),
            view_url=view,
            about=about,
            return_path=self.return_paths().address if email.return_path_domain else None,
        )

    def delivery_finder(self) -> Finder:
        """Finds the delivery a returned mail came from: by its return path's token
        (email.return_path_domain, when a signing key is set), else by the Message-ID it
        quotes."""
        returns = Returns(self.context.store)
        domain = self.context.settings.publication.sender_domain
        paths: ReturnPaths | None = None
        if self.context.settings.email.return_path_domain:
            with contextlib.suppress(ConfigError):
                paths = self.return_paths()

        def find(quoted: Delivery) -> Sent | None:
            if paths is not None and quoted.token:
                address = f"{PREFIX}+{quoted.token}@{paths.domain}"
                message_id = paths.message_id(address, domain=domain)
                if message_id is not None and (sent := returns.by_message_id(message_id)):
                    return sent
            return returns.by_message_id(quoted.message_id) if quoted.message_id else None

        return find

    def poll_bounces(self) -> list[Outcome]:
        """Read what the return path's Maildir (bounces.maildir) received since the last
        time, and apply the bounce policy; nothing when it is not set."""
        bounces = self.context.settings.bounces
        if bounces.maildir is None:
            return []
        return poll_maildir(
            self.context.store,
            bounces.maildir,
            now=self.context.now(),
            soft_limit=bounces.soft_limit,
            soft_window_days=bounces.soft_window_days,
            find=self.delivery_finder(),
        )

    def return_paths(self) -> ReturnPaths:
        """Makes and reads each message's return path (email.return_path_domain)."""
        keys = secrets_from_env(self.context.settings.secret_env)
        return ReturnPaths(self.context.settings.email.return_path_domain, keys)

    def composer(
        self,
        *,
        signer_required: bool = True,
        about: Callable[[Subscriber], Footer] | None = None,
    ) -> Callable[[Edition, list[Variant]], EnvelopeFactory]:
        """Makes each subscriber's message from an edition and its approved variants."""

        def make(edition: Edition, variants: list[Variant]) -> EnvelopeFactory:
            return envelope_factory(
                edition,
                variants,
                lambda e: self.personaliser(e, signer_required=signer_required, about=about),
                keep_lead=self.context.settings.ranking.lead_in_every_variant,
            )

        return make

    @contextmanager
    def footers(self, store: Store | None = None) -> Iterator[FooterMaker | None]:
        """Each reader's footer (preference link, why they get this), looked up by key;
        None without a signing key (previews then show placeholder links)."""
        try:
            keys = secrets_from_env(self.context.settings.secret_env)
        except ConfigError:
            yield None
            return
        signer = LinkSigner(keys, salt=PREFERENCES_SALT, clock=self.context.now)
        pub = self.context.settings.publication
        maker = FooterMaker(
            store or self.context.store, signer, base_url=pub.base_url, zone=pub.timezone
        )
        try:
            yield maker
        finally:
            maker.close()
