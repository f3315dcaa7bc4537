"""Wiring: a config file's collaborators (settings, store, renderer, pipeline, messages)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest import workflow
from digest.backends.base import Backend, load_backend
from digest.config import Settings, load_settings
from digest.delivery.report import SendReport
from digest.exceptions import ConfigError
from digest.http import Fetcher
from digest.images import ImageWork, images_for
from digest.models import Edition, EditionState, Subscriber, Variant
from digest.pipeline import Pipeline
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.environment import make_environment
from digest.render.frame import Frame
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Personaliser, envelope_factory
from digest.render.renderer import Renderer
from digest.sources.base import Source, load_sources
from digest.store import Store
from digest.store.sources import SourceState
from digest.subscribers import count_subscribers, iter_subscribers
from digest.tokens import UNSUBSCRIBE_SALT, Signer, secrets_from_env

Progress = Callable[[SendReport], None]
S = EditionState


def make_clock() -> Callable[[], datetime]:
    """The real clock, unless DIGEST_NOW (ISO 8601) freezes it for tests and rehearsals."""
    frozen = os.environ.get("DIGEST_NOW")
    if not frozen:
        return lambda: datetime.now(UTC)
    try:
        value = datetime.fromisoformat(frozen)
    except ValueError:
        raise ConfigError(f"DIGEST_NOW={frozen!r} is not an ISO 8601 time") from None
    at = value if value.tzinfo else value.replace(tzinfo=UTC)
    return lambda: at


@dataclass
class Base:
    """One config file's collaborators, created on first use (App adds the workflows)."""

    config_path: Path
    clock: Callable[[], datetime] = field(default_factory=make_clock)
    state_path: Path | None = None  # overrides settings.state_path (the demo's own state)
    state_url: str | None = None  # overrides settings.state_url (--state-url)
    _store: Store | None = field(default=None, init=False, repr=False)
    # Problems that must not stop the work (a notice that could not be mailed), for the
    # caller to print as warnings.
    notes: list[str] = field(default_factory=list, init=False, repr=False)
    _audience: tuple[object, workflow.Audience] | None = field(default=None, init=False,
                                                               repr=False)  # fmt: skip

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    # Subscribers: everything reads them through these few methods, streamed (a CSV file
    # is never held in memory), so the list's source can change behind them.

    def iter_subscribers(self) -> Iterator[Subscriber]:
        """Subscribers one at a time (a CSV file is streamed)."""
        return iter_subscribers(self.settings.subscribers_path)

    def count_subscribers(self) -> int:
        """Validate the whole list (duplicates included) and count it, streamed."""
        return count_subscribers(self.settings.subscribers_path)

    def find_subscriber(self, email: str | None = None) -> Subscriber | None:
        """The subscriber with this address (any case), or the first one; None if absent."""
        for sub in self.iter_subscribers():
            if email is None or sub.email.lower() == email.lower():
                return sub
        return None

    def selections(self) -> list[tuple[str, ...]]:
        """Every distinct topic selection among the subscribers (streamed)."""
        return list(dict.fromkeys(s.topics for s in self.iter_subscribers()))

    def now(self) -> datetime:
        return self.clock()

    def _url(self) -> str:
        if self.state_path is not None:
            return ""
        return self.settings.state_url if self.state_url is None else self.state_url

    def state_location(self) -> Path | str:
        """The state database: a database URL, or the SQLite file's path."""
        return self._url() or (self.state_path or self.settings.state_path)

    @property
    def store(self) -> Store:
        if self._store is None:
            url = self._url()
            self._store = (
                Store(url=url) if url else Store(self.state_path or self.settings.state_path)
            )
        return self._store

    def readonly_store(self) -> Store:
        """The state opened read-only (an empty one if there is no state file yet)."""
        url = self._url()
        if url:
            return Store.open_readonly(url=url)
        return Store.open_readonly(self.state_path or self.settings.state_path)

    def backend(self) -> Backend:
        """The configured backend; relative outbox paths are relative to the config file."""
        settings = self.settings
        options = dict(settings.backend.options)
        if settings.backend.name == "outbox" and "path" in options:
            options["path"] = str(settings.path.resolve().parent / Path(str(options["path"])))
        return load_backend(settings.backend.name, options)

    def signer(self, *, required: bool = True) -> Signer | None:
        try:
            keys = secrets_from_env(self.settings.secret_env)
        except ConfigError:
            if required:
                raise
            return None
        return Signer(keys, salt=UNSUBSCRIBE_SALT)

    @cached_property
    def dkim(self) -> DkimSigner | None:
        """The DKIM signer when email.dkim_key_path is set; the key is read and tried once."""
        email = self.settings.email
        if email.dkim_key_path is None:
            return None
        domain = email.dkim_domain or self.settings.publication.sender_domain
        return load_dkim(key_path=email.dkim_key_path, selector=email.dkim_selector, domain=domain)

    @cached_property
    def renderer(self) -> Renderer:
        s = self.settings
        return Renderer(
            make_environment(s.templates_dir),
            s.publication,
            subject=s.email.subject,
            preheader=s.email.preheader,
            utm=s.email.utm,
            keep_lead=s.ranking.lead_in_every_variant,
            frame=self.frame,
        )

    @cached_property
    def _images(self) -> tuple[Frame, ImageWork | None]:
        return images_for(self.settings)

    @property
    def frame(self) -> Frame:
        """What surrounds the stories in every email of this publication."""
        return self._images[0]

    def image_work(self) -> ImageWork | None:
        """How story images are owned (images.mode: own), or None to hotlink them."""
        return self._images[1]

    def sources(self) -> list[Source]:
        return load_sources(self.settings.sources, teaser_length=self.settings.email.teaser_length)

    @contextmanager
    def pipeline(self, store: Store | None = None) -> Iterator[Pipeline]:
        s = self.settings
        with Fetcher(settings=s.fetch) as fetcher:
            yield Pipeline(
                store or self.store,
                self.sources(),
                fetcher,
                self.renderer,
                s.ranking,
                concurrency=s.fetch.concurrency,
                failure_alert=s.fetch.failure_alert,
                deadline=s.fetch.deadline,
                images=self.image_work(),
                image_folder=s.images.dir,
            )

    def source_health(self, *, live: bool = False) -> list[dict[str, Any]]:
        """Each configured source's health, read without writing the state file.

        ``live`` reads through this App's open store (a long-running server), which sees
        commits still in the write-ahead log that a read-only snapshot would miss.
        """
        sources = [(s.name, s.url, s.kind) for s in self.settings.sources]
        alert = self.settings.fetch.failure_alert
        if live:
            return SourceState(self.store).report(sources, alert)
        store = self.readonly_store()
        try:
            return SourceState(store).report(sources, alert)
        finally:
            store.close()

    # sending ----------------------------------------------------------------------------

    def personaliser(self, edition: Edition, *, signer_required: bool = True) -> Personaliser:
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
        return Personaliser(prepared, pub, self.signer(required=signer_required))

    def composer(
        self, *, signer_required: bool = True
    ) -> Callable[[Edition, list[Variant]], EnvelopeFactory]:
        """Makes each subscriber's message from an edition and its approved variants."""

        def make(edition: Edition, variants: list[Variant]) -> EnvelopeFactory:
            return envelope_factory(
                edition,
                variants,
                lambda e: self.personaliser(e, signer_required=signer_required),
                keep_lead=self.settings.ranking.lead_in_every_variant,
            )

        return make

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
