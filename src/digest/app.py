"""Wiring: turn a config file into the collaborators the pipeline needs (the I/O edge)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from digest.backends.base import Backend, load_backend
from digest.config import Settings, load_settings
from digest.exceptions import ConfigError
from digest.models import Edition, Subscriber
from digest.pipeline import publication
from digest.send import EnvelopeFactory, Personaliser, personaliser
from digest.store import Store
from digest.subscribers import load_subscribers
from digest.tokens import UNSUBSCRIBE_SALT, Signer, secrets_from_env


def system_clock() -> datetime:
    """The real clock, unless DIGEST_NOW (ISO 8601) freezes it for tests and rehearsals."""
    frozen = os.environ.get("DIGEST_NOW")
    if frozen:
        try:
            value = datetime.fromisoformat(frozen)
        except ValueError:
            raise ConfigError(f"DIGEST_NOW={frozen!r} is not an ISO 8601 time") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


@dataclass
class App:
    """One config file's collaborators, created on first use."""

    config_path: Path
    clock: Callable[[], datetime] = system_clock
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

    def state_exists(self) -> bool:
        return self.settings.state_path.exists()

    def backend(self) -> Backend:
        options = dict(self.settings.backend.options)
        if self.settings.backend.name == "outbox" and "path" in options:
            # Relative outbox paths are relative to the config file, like every other path.
            options["path"] = str(self.settings.path.resolve().parent / str(options["path"]))
        return load_backend(self.settings.backend.name, options)

    def signer(self, *, required: bool = True) -> Signer | None:
        try:
            keys = secrets_from_env(self.settings.secret_env)
        except ConfigError:
            if required:
                raise
            return None
        return Signer(keys, salt=UNSUBSCRIBE_SALT)

    def personaliser(self, edition: Edition, *, signer_required: bool = True) -> Personaliser:
        email = self.settings.email
        return personaliser(
            edition,
            publication(self.settings),
            self.signer(required=signer_required),
            unsubscribe_mailto=email.unsubscribe_mailto,
            headers=dict(email.headers),
        )

    def envelopes(self, edition: Edition) -> EnvelopeFactory:
        """The send engine's per-subscriber hook: one message for everyone (no variants yet)."""
        maker = self.personaliser(edition)
        return lambda subscriber, now: maker.envelope(subscriber, now=now)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
