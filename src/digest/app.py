"""Wiring: turn a config file into the collaborators the pipeline needs (the I/O edge)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest.backends.base import Backend
from digest.config import Settings, load_settings
from digest.exceptions import ConfigError
from digest.models import Edition, Subscriber
from digest.pipeline import publication
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.message import prepare_message
from digest.send import EnvelopeFactory, Personaliser, Progress, SendReport, send_edition
from digest.store import Store
from digest.subscribers import iter_subscribers, load_subscribers
from digest.tokens import UNSUBSCRIBE_SALT, Signer, secrets_from_env


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
class App:
    """One config file's collaborators, created on first use."""

    config_path: Path
    clock: Callable[[], datetime] = field(default_factory=make_clock)
    _store: Store | None = field(default=None, init=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    @cached_property
    def subscribers(self) -> list[Subscriber]:
        return load_subscribers(self.settings.subscribers_path)

    def now(self) -> datetime:
        return self.clock()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.state_path)
        return self._store

    def backend(self) -> Backend:
        from digest.proofs import backend_for  # proofs imports the pipeline, as does send

        return backend_for(self.settings)

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
        domain = email.dkim_domain or publication(self.settings).sender_domain
        return load_dkim(key_path=email.dkim_key_path, selector=email.dkim_selector, domain=domain)

    def personaliser(self, edition: Edition, *, signer_required: bool = True) -> Personaliser:
        email = self.settings.email
        pub = publication(self.settings)
        # Prepared here (not by send.personaliser) so Feedback-ID and DKIM reach every message.
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

    def envelopes(
        self,
        edition: Edition,
        *,
        signer_required: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> EnvelopeFactory:
        """The send engine's per-subscriber hook: each subscriber's topic variant, or None.

        A stored edition's variants come from the state file (rendered at build time); an
        unstored one (id 0, a preview of what would be built) renders them on the fly.
        """
        from digest.pipeline import render
        from digest.variants import Variants, VariantStore, envelope_factory

        store = VariantStore(self.store) if edition.id else None
        if extra is None:
            built = store.ranking(edition.id) if store else None
            extra = built[1] if built else {}
        variants = Variants(
            edition,
            render=lambda stories: render(
                self.settings, stories, now=edition.created_at, extra=extra
            ),
            keep_lead=self.settings.ranking.lead_in_every_variant,
            store=store,
        )
        return envelope_factory(
            variants, lambda e: self.personaliser(e, signer_required=signer_required)
        )

    def send(
        self,
        edition_id: int,
        *,
        actor: str = "cli",
        dry_run: bool = False,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        not_before: Callable[[Subscriber], datetime] | None = None,
        until: datetime | None = None,
    ) -> SendReport:
        """Send (or resume) an edition with this config's backend and send settings."""
        return send_edition(
            self.store,
            edition_id,
            subscribers=iter_subscribers(self.settings.subscribers_path),
            backend=self.backend,
            make=self.envelopes,
            clock=self.clock,
            actor=actor,
            dry_run=dry_run,
            options=self.settings.send,
            progress=progress,
            stop=stop,
            not_before=not_before,
            until=until,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
