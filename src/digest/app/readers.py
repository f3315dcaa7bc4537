"""Wiring: the readers (the list in the state database, the subscriber file synced into it)
and what each of their messages is made of (personaliser, footers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from digest.app.base import Base
from digest.exceptions import ConfigError
from digest.models import Edition, Subscriber, Variant
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Footer, Personaliser, envelope_factory
from digest.store import Store
from digest.store.subscribers import Receiving, SubscriberStore
from digest.subscribers.files import count_subscribers, entries
from digest.subscribers.links import FooterMaker, archive_url
from digest.subscribers.signup import Readers
from digest.subscribers.sync import SyncReport, sync_file
from digest.tokens import (
    ARCHIVE_SALT,
    CONFIRM_SALT,
    PREFERENCES_SALT,
    LinkSigner,
    Signer,
    secrets_from_env,
)


class ReaderList(Base):
    """Who gets the edition, and each reader's own message."""

    # The subscriber file: validated and synced, streamed (never held in memory whole).

    def _no_file(self) -> bool:
        return self.settings.signup.enabled and not self.settings.subscribers_path.exists()

    def file_subscribers(self) -> Iterator[Subscriber]:
        """The subscriber file's entries, each validated, streamed (none when sign-up is on
        and there is no file)."""
        if self._no_file():
            return iter(())
        return (sub for _line, sub in entries(self.settings.subscribers_path))

    def count_subscribers(self) -> int:
        """Validate the whole subscriber file (duplicates included) and count it, streamed."""
        return 0 if self._no_file() else count_subscribers(self.settings.subscribers_path)

    def sync_subscribers(self, *, force: bool = False, dry_run: bool = False) -> SyncReport:
        """Bring the state database in line with the subscriber file (subscribers_sync)."""
        s = self.settings
        return sync_file(
            self.store,
            s.subscribers_path,
            mode=s.sync_mode,
            now=self.now(),
            force=force,
            dry_run=dry_run,
            missing_ok=s.signup.enabled,
        )

    # The readers in the state database.

    def iter_subscribers(self) -> Receiving:
        """Everyone the next edition goes to, from the state database (streamed by key)."""
        return SubscriberStore(self.store).receiving(now=self.now())

    def selections(self) -> list[tuple[str, ...]]:
        """Every distinct topic selection among those readers (one query)."""
        return SubscriberStore(self.store).selections(now=self.now())

    def timezones(self) -> set[str]:
        """The readers' time zones (for per-zone waves): the state database's, or the
        subscriber file's while there is no state file yet (a preview creates none)."""
        where = self.state_location()
        if isinstance(where, Path) and not where.exists():
            return {s.timezone for s in self.file_subscribers()}
        return SubscriberStore(self.store).timezones(now=self.now())

    def readers(self, environ: Mapping[str, str] | None = None) -> Readers:
        """The readers' side of the list (sign-up, confirmation, preferences) for the web."""
        keys = secrets_from_env(self.settings.secret_env, environ)
        return Readers(
            self.store,
            self.settings.publication,
            self.settings.topics,
            confirms=Signer(keys, salt=CONFIRM_SALT, clock=self.now),
            preferences=LinkSigner(keys, salt=PREFERENCES_SALT, clock=self.now),
            backend=self.backend,
            clock=self.clock,
            check_deliverability=self.settings.signup.check_deliverability,
        )

    # Each reader's message.

    def personaliser(
        self,
        edition: Edition,
        *,
        signer_required: bool = True,
        about: Callable[[Subscriber], Footer] | None = None,
    ) -> Personaliser:
        email = self.settings.email
        pub = self.settings.publication
        prepared = prepare_message(
            edition.rendered,
            pub,
            unsubscribe_mailto=email.unsubscribe_mailto,
            extra_headers=dict(email.headers),
            feedback_id=email.feedback_id,
            dkim=self.dkim,
            preferences_url=email.preferences_url,
        )
        # The same "View in browser" link for every reader of the edition (with its key
        # when the archive is private); filled in at send time, as the id is known only then.
        private = None if self.settings.archive.public else self.signer(salt=ARCHIVE_SALT)
        view = archive_url(pub.base_url, edition.id, private) if edition.id else ""
        return Personaliser(
            prepared, pub, self.signer(required=signer_required), view_url=view, about=about
        )

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
                keep_lead=self.settings.ranking.lead_in_every_variant,
            )

        return make

    @contextmanager
    def footers(self, store: Store | None = None) -> Iterator[FooterMaker | None]:
        """Each reader's footer (preference link, why they get this), looked up by key;
        None without a signing key (previews then show placeholder links)."""
        try:
            keys = secrets_from_env(self.settings.secret_env)
        except ConfigError:
            yield None
            return
        signer = LinkSigner(keys, salt=PREFERENCES_SALT, clock=self.now)
        pub = self.settings.publication
        maker = FooterMaker(store or self.store, signer, base_url=pub.base_url, zone=pub.timezone)
        try:
            yield maker
        finally:
            maker.close()
