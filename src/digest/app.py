"""Wiring: turn a config file into the collaborators the pipeline, workflow and engine need."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from digest import workflow
from digest.backends.base import Backend, load_backend
from digest.config import Settings, load_settings
from digest.delivery.engine import SendReport, send_edition
from digest.exceptions import ConfigError, DigestError
from digest.http import Fetcher
from digest.images import ImageLimits, ImageWork
from digest.models import Edition, EditionState, Subscriber, Variant
from digest.pipeline import Pipeline, Plan
from digest.proofs import send_proofs
from digest.render import placeholders
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.environment import make_environment
from digest.render.frame import Frame, Picture
from digest.render.images import LEAD, THUMB, Processed, logo
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Footer, Personaliser, envelope_factory
from digest.render.renderer import Renderer
from digest.schedule.slots import slot_key
from digest.sources.base import Source, load_sources
from digest.store import Store
from digest.store.sources import Health, SourceState
from digest.store.subscribers import SubscriberStore
from digest.subscribers.files import load_subscribers
from digest.subscribers.links import FooterMaker, archive_url
from digest.subscribers.signup import Readers
from digest.subscribers.sync import SyncReport, sync_file
from digest.tokens import (
    ARCHIVE_SALT,
    CONFIRM_SALT,
    PREFERENCES_SALT,
    UNSUBSCRIBE_SALT,
    LinkSigner,
    Signer,
    secrets_from_env,
)

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
    _store: Store | None = field(default=None, init=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    @cached_property
    def subscribers(self) -> list[Subscriber]:
        """The whole subscriber file, validated (duplicates included); `digest check`."""
        if self.settings.signup.enabled and not self.settings.subscribers_path.exists():
            return []
        return load_subscribers(self.settings.subscribers_path)

    def iter_subscribers(self) -> Iterator[Subscriber]:
        """Everyone the next edition goes to, from the state database (streamed by key)."""
        return SubscriberStore(self.store).receiving(now=self.now())

    def selections(self) -> list[tuple[str, ...]]:
        """Every distinct topic selection among those readers (one query)."""
        return SubscriberStore(self.store).selections(now=self.now())

    def timezones(self) -> set[str]:
        """The readers' time zones (for per-zone waves), the subscriber file synced first."""
        self.sync_subscribers()
        return SubscriberStore(self.store).timezones(now=self.now())

    def sync_subscribers(self, *, force: bool = False, dry_run: bool = False) -> SyncReport:
        """Bring the state database in line with the subscriber file (subscribers_sync)."""
        s = self.settings
        return sync_file(
            self.store, s.subscribers_path, mode=s.sync_mode, now=self.now(), force=force,
            dry_run=dry_run, missing_ok=s.signup.enabled,
        )  # fmt: skip

    def readers(self, environ: Mapping[str, str] | None = None) -> Readers:
        """The readers' side of the list (sign-up, confirmation, preferences) for the web."""
        keys = secrets_from_env(self.settings.secret_env, environ)
        return Readers(
            self.store, self.settings.publication, self.settings.topics,
            confirms=Signer(keys, salt=CONFIRM_SALT, clock=self.now),
            preferences=LinkSigner(keys, salt=PREFERENCES_SALT, clock=self.now),
            backend=self.backend, clock=self.clock,
        )  # fmt: skip

    def now(self) -> datetime:
        return self.clock()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.state_path or self.settings.state_path)
        return self._store

    def readonly_store(self) -> Store:
        """The state file opened read-only (an empty one if there is none yet)."""
        return Store.open_readonly(self.state_path or self.settings.state_path)

    def backend(self) -> Backend:
        """The configured backend; relative outbox paths are relative to the config file."""
        settings = self.settings
        options = dict(settings.backend.options)
        if settings.backend.name == "outbox" and "path" in options:
            options["path"] = str(settings.path.resolve().parent / Path(str(options["path"])))
        return load_backend(settings.backend.name, options)

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

    @property
    def image_base(self) -> str:
        """Where our images are served: images.base_url, else BASE/img (`digest serve`)."""
        s = self.settings
        return s.images.base_url or s.publication.base_url.rstrip("/") + "/img"

    @cached_property
    def logos(self) -> tuple[Processed | None, Processed | None]:
        """The logo and its dark variant, processed once from their files."""
        out: list[Processed | None] = []
        for path in (self.settings.email.logo, self.settings.email.logo_dark):
            if path is None:
                out.append(None)
                continue
            try:
                out.append(logo(path.read_bytes()))
            except OSError as exc:
                raise DigestError(f"{path}: cannot read the logo: {exc.strerror}") from exc
            except DigestError as exc:
                raise DigestError(f"{path}: the logo cannot be used: {exc}") from exc
        return out[0], out[1]

    @cached_property
    def frame(self) -> Frame:
        """What surrounds the stories in every email of this publication."""
        email, base = self.settings.email, self.image_base.rstrip("/")

        def picture(processed: Processed | None) -> Picture | None:
            if processed is None:
                return None
            url = f"{base}/{processed.key}"
            return Picture(url, processed.width, processed.height, self.settings.publication.name)

        light, dark = self.logos
        return Frame(
            layout=email.layout,
            editor_note=email.editor_note,
            hotlink=self.settings.images.mode == "hotlink",
            logo=picture(light),
            logo_dark=picture(dark),
            # Without a configured archive_url, "View in browser" opens the edition's page in
            # our archive, a URL filled in at send time; every reader has a preference page.
            archive_url=email.archive_url or placeholders.VIEW_URL,
            preferences=True,
            signup_url=email.signup_url,
            html_budget=email.html_budget,
        )

    def image_work(self) -> ImageWork | None:
        """How story images are owned (images.mode: own), or None to hotlink them."""
        s = self.settings
        if s.images.mode != "own":
            return None
        frame = self.frame
        return ImageWork(
            base_url=self.image_base,
            shapes=(LEAD, THUMB) if frame.shows_thumbnails() else (LEAD,),
            needs=frame.role,
            limits=ImageLimits(max_bytes=s.images.max_bytes, max_pixels=s.images.max_pixels),
            private=frozenset(src.name for src in s.sources if src.allow_private),
            logos=tuple(p for p in self.logos if p is not None),
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
                images=self.image_work(),
                image_folder=s.images.dir,
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
        self.sync_subscribers()
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
        """Send (or resume) an edition with this config's backend and send settings.

        The subscriber file is synchronised first (a bad entry stops here, before any state
        change); the recipients are then the state database's readers, streamed.
        """
        if not dry_run:
            self.sync_subscribers()
        with self.footers() as about:
            return send_edition(
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
            )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
