"""What every collaborator of the App shares: one config file's settings, store, backend,
signers, renderer, pipeline and the editors' notices, each created on first use."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest import notices
from digest.backends.base import Backend, load_backend
from digest.config import Settings, load_settings
from digest.delivery.report import SendReport
from digest.exceptions import ConfigError
from digest.http import Fetcher
from digest.images import ImageWork, images_for
from digest.models import EditionState
from digest.notices import Notifier
from digest.pipeline import Pipeline
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.environment import make_environment
from digest.render.frame import Frame
from digest.render.renderer import Renderer
from digest.render.signed import SignedBackend
from digest.sources.base import Source, load_sources
from digest.store import Store
from digest.store.ops import NoticeLog
from digest.store.sources import SourceState
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
class Context:
    """One config file's shared collaborators, created on first use.

    The App's named collaborators (readers, schedule, editions, sending) each hold the same
    Context, so they see one store, one backend and one clock.
    """

    config_path: Path
    clock: Callable[[], datetime] = field(default_factory=make_clock)
    state_path: Path | None = None  # overrides settings.state_path (the demo's own state)
    state_url: str | None = None  # overrides settings.state_url (--state-url)
    _store: Store | None = field(default=None, init=False, repr=False)
    # Problems that must not stop the work (a notice that could not be mailed), for the
    # caller to print as warnings.
    notes: list[str] = field(default_factory=list, init=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

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

    def mail_backend(self) -> Backend:
        """The backend for one-off messages (confirmations, proofs, notices, sign-in
        links): each is DKIM-signed when a key is configured, like every edition."""
        backend = self.backend()
        return SignedBackend(inner=backend, signer=self.dkim) if self.dkim is not None else backend

    def signer(self, *, required: bool = True, salt: str = UNSUBSCRIBE_SALT) -> Signer | None:
        try:
            keys = secrets_from_env(self.settings.secret_env)
        except ConfigError:
            if required:
                raise
            return None
        return Signer(keys, salt=salt, clock=self.now)

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

    @cached_property
    def notifier(self) -> Notifier:
        s = self.settings
        return Notifier(
            s.notices, s.approval, s.publication, self.mail_backend, NoticeLog(self.store)
        )

    def notify(self, notice: notices.Notice) -> list[str]:
        """Mail a notice to the editors (once); problems are kept in ``notes`` too."""
        problems = self.notifier.send(notice, now=self.now())
        self.notes.extend(problems)
        return problems

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
