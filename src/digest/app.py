"""Wiring: turn a config file into the collaborators the pipeline, workflow and engine need."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest import workflow
from digest.backends.base import Backend, load_backend
from digest.config import Settings, load_settings
from digest.delivery.engine import send_edition, work_edition
from digest.delivery.report import SendReport
from digest.exceptions import ConfigError
from digest.http import Fetcher
from digest.models import Edition, EditionState, Subscriber, Variant
from digest.pipeline import Pipeline, Plan
from digest.proofs import send_proofs
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.environment import make_environment
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Personaliser, envelope_factory
from digest.render.renderer import Renderer
from digest.schedule.slots import slot_key
from digest.sources.base import Source, load_sources
from digest.store import Store
from digest.store.sources import Health, SourceState
from digest.subscribers import count_subscribers, iter_subscribers
from digest.tokens import UNSUBSCRIBE_SALT, Signer, secrets_from_env

Progress = Callable[[SendReport], None]


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
    state_path: Path | None = None  # overrides settings.state_path (the demo's own state)
    state_url: str | None = None  # overrides settings.state_url (--state-url)
    _store: Store | None = field(default=None, init=False, repr=False)

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
        )

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
            )

    def source_health(self) -> list[dict[str, Any]]:
        """Each configured source's health, read without writing the state file."""
        store = self.readonly_store()
        try:
            known = SourceState(store).health()
        finally:
            store.close()
        alert = self.settings.fetch.failure_alert
        rows = []
        for s in self.settings.sources:
            h = known.get(s.name) or Health(name=s.name, url=s.url)
            rows.append(
                {
                    **h.to_dict(),
                    "url": s.url,
                    "kind": s.kind,
                    "alert": alert > 0 and h.consecutive_failures >= alert,
                }
            )
        return rows

    def slot(self, now: datetime) -> str:
        """The send slot an edition built at ``now`` belongs to."""
        sched = self.settings.schedule
        return slot_key(now, zone=sched.timezone, at=sched.time)

    # editions ---------------------------------------------------------------------------

    def build(self, *, order: Sequence[str] = (), slot: str | None = None) -> Edition:
        """Build, store and submit an edition (proofs mailed); problems become warnings."""
        now = self.now()
        with self.pipeline() as pipeline:
            edition = pipeline.build(
                now=now,
                slot=slot or self.slot(now),
                selections=self.selections(),
                order=order,
                auto_approve=self.settings.approval.auto_approve,
            )
        return replace(edition, warnings=(*edition.warnings, *self.proofs(edition)))

    def plan(self, *, order: Sequence[str] = ()) -> Plan:
        """What would be built now; the state file is only read."""
        now = self.now()
        store = self.readonly_store()
        try:
            with self.pipeline(store) as pipeline:
                return pipeline.plan(now=now, slot=self.slot(now), order=order)
        finally:
            store.close()

    def proofs(self, edition: Edition) -> list[str]:
        """Mail the proof of a pending edition to the editors; one line per problem."""
        if edition.state is not EditionState.PENDING_APPROVAL:
            return []
        return send_proofs(self.settings, edition, now=self.now(), backend=self.backend)

    def approve(
        self, edition_id: int, *, by: str, via: str, revision: int | None = None
    ) -> workflow.ApprovalResult:
        return workflow.approve(
            self.store,
            edition_id,
            policy=self.settings.approval,
            by=by,
            via=via,
            now=self.now(),
            revision=revision,
        )

    def reject(
        self, edition_id: int, *, by: str, reason: str, via: str, revision: int | None = None
    ) -> Edition:
        return workflow.reject(
            self.store,
            edition_id,
            policy=self.settings.approval,
            by=by,
            reason=reason,
            via=via,
            now=self.now(),
            revision=revision,
        )

    def revise(
        self,
        edition_id: int,
        *,
        by: str,
        via: str,
        remove: Sequence[str] = (),
        pin: str | None = None,
        position: int = 1,
        revision: int | None = None,
    ) -> Edition:
        """A new revision (variants for today's selections rendered with it), re-proofed."""
        edition = workflow.revise(
            self.store,
            edition_id,
            policy=self.settings.approval,
            renderer=self.renderer,
            selections=self.selections(),
            by=by,
            via=via,
            now=self.now(),
            remove=remove,
            pin=pin,
            position=position,
            revision=revision,
        )
        return replace(edition, warnings=(*edition.warnings, *self.proofs(edition)))

    def enforce_deadline(self, edition_id: int) -> Edition:
        return workflow.enforce_deadline(
            self.store,
            edition_id,
            policy=self.settings.approval,
            timezone=self.settings.schedule.timezone,
            now=self.now(),
        )

    def deadline(self, edition: Edition) -> datetime:
        return workflow.deadline(
            edition, policy=self.settings.approval, timezone=self.settings.schedule.timezone
        )

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
        on_sending: Callable[[], None] | None = None,
    ) -> SendReport:
        """Send (or resume) an edition with this config's backend and send settings."""
        return send_edition(
            self.store,
            edition_id,
            subscribers=self.iter_subscribers(),
            backend=self.backend,
            make=self.composer(),
            clock=self.clock,
            actor=actor,
            dry_run=dry_run,
            options=self.settings.send,
            progress=progress,
            stop=stop,
            not_before=not_before,
            until=until,
            on_sending=on_sending,
        )

    def work(
        self,
        edition_id: int,
        *,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
        wait_for_retries: bool = False,
    ) -> SendReport:
        """One worker pass over an edition that is sending (`digest worker`)."""
        return work_edition(
            self.store,
            edition_id,
            backend=self.backend,
            make=self.composer(),
            clock=self.clock,
            options=self.settings.send,
            stop=stop,
            progress=progress,
            wait_for_retries=wait_for_retries,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
