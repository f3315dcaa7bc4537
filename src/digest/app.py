"""Wiring: turn a config file into the collaborators the pipeline, workflow and engine need."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from digest import notices, workflow
from digest.backends.base import Backend, load_backend
from digest.collect import ProgressCallback
from digest.config import Settings, load_settings
from digest.delivery.engine import SendReport, send_edition
from digest.exceptions import ConfigError, DigestError, LockedError, StateError
from digest.http import Fetcher
from digest.images import ImageWork, images_for
from digest.models import Edition, EditionState, Subscriber, Variant
from digest.notices import Notifier
from digest.pipeline import Pipeline, Plan
from digest.proofs import send_proofs
from digest.render.dkim import DkimSigner, load_dkim
from digest.render.environment import make_environment
from digest.render.frame import Frame
from digest.render.message import prepare_message
from digest.render.personalise import EnvelopeFactory, Personaliser, envelope_factory
from digest.render.renderer import Renderer
from digest.schedule.slots import Slot, make_slot, next_slot, parse_key, slots_between
from digest.sources.base import Source, load_sources
from digest.store import Store
from digest.store.ops import NoticeLog, proof_key
from digest.store.sources import SourceState
from digest.subscribers import iter_subscribers, load_subscribers
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
class App:
    """One config file's collaborators, created on first use."""

    config_path: Path
    clock: Callable[[], datetime] = field(default_factory=make_clock)
    state_path: Path | None = None  # overrides settings.state_path (the demo's own state)
    _store: Store | None = field(default=None, init=False, repr=False)
    # Problems that must not stop the work (a notice that could not be mailed), for the
    # caller to print as warnings.
    notes: list[str] = field(default_factory=list, init=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path)

    @cached_property
    def subscribers(self) -> list[Subscriber]:
        """The whole subscriber file, validated (duplicates included)."""
        return load_subscribers(self.settings.subscribers_path)

    def iter_subscribers(self) -> Iterator[Subscriber]:
        """Subscribers one at a time (a CSV file is streamed)."""
        return iter_subscribers(self.settings.subscribers_path)

    def selections(self) -> list[tuple[str, ...]]:
        """Every distinct topic selection among the subscribers (streamed)."""
        return list(dict.fromkeys(s.topics for s in self.iter_subscribers()))

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

    def source_health(self) -> list[dict[str, Any]]:
        """Each configured source's health, read without writing the state file."""
        store = self.readonly_store()
        try:
            sources = [(s.name, s.url, s.kind) for s in self.settings.sources]
            return SourceState(store).report(sources, self.settings.fetch.failure_alert)
        finally:
            store.close()

    # slots --------------------------------------------------------------------------------

    @property
    def lateness(self) -> timedelta:
        return timedelta(minutes=self.settings.schedule.max_lateness_minutes)

    @cached_property
    def wave_zones(self) -> tuple[str, ...]:
        """The zones of the send waves: each reader's (deliver_at: local), else none."""
        sched = self.settings.schedule
        if not sched.local_delivery:
            return ()
        return tuple(sorted({s.timezone or sched.timezone for s in self.iter_subscribers()}))

    def slot_for(self, key: str) -> Slot:
        """The slot ``key`` ("YYYY-MM-DDTHH:MM" in the schedule's zone) with its waves."""
        sched = self.settings.schedule
        try:
            day, at = parse_key(key)
        except ValueError:
            raise DigestError(
                f"slot {key!r} is not YYYY-MM-DDTHH:MM (e.g. 2026-11-25T07:00)"
            ) from None
        return make_slot(day, at, zone=sched.timezone, lead=timedelta(minutes=sched.lead_minutes),
                         wave_zones=self.wave_zones)  # fmt: skip

    def slots_between(self, start: datetime, end: datetime) -> list[Slot]:
        sched = self.settings.schedule
        return slots_between(
            start, end, zone=sched.timezone, times=sched.times, days=sched.days,
            lead=timedelta(minutes=sched.lead_minutes), wave_zones=self.wave_zones,
        )  # fmt: skip

    def next_slot(self, now: datetime, *, skip: Sequence[str] = ()) -> Slot:
        """The first slot whose send time has not passed (and not in ``skip``)."""
        sched = self.settings.schedule
        return next_slot(
            now, zone=sched.timezone, times=sched.times, days=sched.days,
            lead=timedelta(minutes=sched.lead_minutes), wave_zones=self.wave_zones, skip=skip,
        )  # fmt: skip

    def build_slot(self, now: datetime) -> Slot:
        """Where `digest build` goes by default: the next slot whose send time has not
        passed and that has no edition sending or sent already."""
        taken: list[str] = []
        while True:
            slot = self.next_slot(now, skip=taken)
            latest = self.store.latest_for_slot(slot.key)
            if latest is None or latest.state not in (S.SENDING, S.SENT, S.FAILED):
                return slot
            taken.append(slot.key)

        # editions ---------------------------------------------------------------------------

    def build(
        self,
        *,
        order: Sequence[str] = (),
        slot: str | None = None,
        proofs: bool = True,
        progress: ProgressCallback | None = None,
    ) -> Edition:
        """Build, store and submit an edition for ``slot`` (default: ``build_slot``), which
        supersedes the slot's pending or approved one; proofs are mailed unless ``proofs``
        is false (held: the scheduler mails them after quiet hours). Problems are warnings."""
        now = self.now()
        key = slot or self.build_slot(now).key
        self.slot_for(key)  # a malformed --slot fails before anything is fetched
        latest = self.store.latest_for_slot(key)
        if latest is not None and latest.state in (S.SENDING, S.SENT, S.FAILED):
            # Checked again in the build's own transaction; this saves the fetching.
            raise StateError(
                f"slot {key} already has edition {latest.id} ({latest.state}); a slot is sent "
                "once, so build for another slot (--slot YYYY-MM-DDTHH:MM)"
            )
        with self.pipeline() as pipeline:
            edition = pipeline.build(
                now=now,
                slot=key,
                selections=self.selections(),
                order=order,
                auto_approve=self.settings.approval.auto_approve,
                progress=progress,
            )
        problems = self.proofs(edition) if proofs else self._hold_proofs(edition)
        self._source_notices()  # problems mailing them go to ``notes``
        return replace(edition, warnings=(*edition.warnings, *problems))

    def plan(self, *, order: Sequence[str] = ()) -> Plan:
        """What would be built now; the state file is only read."""
        now = self.now()
        store = self.readonly_store()
        try:
            with self.pipeline(store) as pipeline:
                return pipeline.plan(now=now, slot=self.next_slot(now).key, order=order)
        finally:
            store.close()

    def proofs(self, edition: Edition) -> list[str]:
        """Mail the proof of a pending edition to the editors; one line per problem."""
        if edition.state is not EditionState.PENDING_APPROVAL or not self.settings.approval.editors:
            return []
        now = self.now()
        problems = send_proofs(self.settings, edition, now=now, backend=self.backend,
                               deadline=self.deadline(edition))  # fmt: skip
        NoticeLog(self.store).put(
            proof_key(edition), kind="proof", edition_id=edition.id,
            status="failed" if problems else "sent", now=now, note="; ".join(problems),
            recipients=", ".join(e.email for e in self.settings.approval.editors),
        )  # fmt: skip
        return problems

    def _hold_proofs(self, edition: Edition) -> list[str]:
        if edition.state is EditionState.PENDING_APPROVAL and self.settings.approval.editors:
            NoticeLog(self.store).put(proof_key(edition), kind="proof", edition_id=edition.id,
                                      status="held", recipients="", note="quiet hours",
                                      now=self.now())  # fmt: skip
        return []

    def proofs_held(self, edition: Edition) -> bool:
        found = NoticeLog(self.store).get(proof_key(edition))
        return found is not None and found.status == "held"

    # notices ----------------------------------------------------------------------------

    @cached_property
    def notifier(self) -> Notifier:
        s = self.settings
        return Notifier(s.notices, s.approval, s.publication, self.backend, NoticeLog(self.store))

    def notify(self, notice: notices.Notice) -> list[str]:
        """Mail a notice to the editors (once); problems are kept in ``notes`` too."""
        problems = self.notifier.send(notice, now=self.now())
        self.notes.extend(problems)
        return problems

    def _source_notices(self) -> None:
        alert = self.settings.fetch.failure_alert
        for h in SourceState(self.store).health().values():
            if alert > 0 and h.consecutive_failures >= alert:
                self.notify(notices.source_failing(h.name, h.url, h.consecutive_failures,
                                                   h.last_error, h.last_success))  # fmt: skip

    def approve(
        self, edition_id: int, *, by: str, via: str, revision: int | None = None
    ) -> workflow.ApprovalResult:
        """Record an approval; an edition approved after its slot passed its maximum
        lateness expires at once (it would never be sent)."""
        result = workflow.approve(
            self.store,
            edition_id,
            policy=self.settings.approval,
            by=by,
            via=via,
            now=self.now(),
            revision=revision,
        )
        if not result.approved:
            return result
        return replace(result, edition=self.expire_late(edition_id))

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
        """Settle a pending edition at its deadline; an expiry is mailed to the editors."""
        edition = self.store.get_edition(edition_id)
        after = workflow.enforce_deadline(
            self.store,
            edition_id,
            policy=self.settings.approval,
            deadline=self.deadline(edition),
            now=self.now(),
        )
        if edition.state is not after.state and after.state is EditionState.EXPIRED:
            self.notify(notices.expired(after, "not approved by its approval deadline "
                                        "(approval.at_deadline: skip)"))  # fmt: skip
        return after

    def expire_late(self, edition_id: int) -> Edition:
        """Expire an approved edition whose every wave passed its maximum lateness."""
        edition = self.store.get_edition(edition_id)
        until = self.slot_for(edition.slot).last_wave + self.lateness
        after = workflow.expire_late(self.store, edition_id, until=until, now=self.now())
        if edition.state is not after.state:
            self.notify(notices.expired(after, "approved, but not sent before its slot passed "
                                        "schedule.max_lateness_minutes"))  # fmt: skip
        return after

    def deadline(self, edition: Edition) -> datetime:
        """The approval deadline: before the earliest wave the edition must serve (UTC)."""
        return workflow.deadline(
            edition,
            policy=self.settings.approval,
            slot=self.slot_for(edition.slot),
            lateness=self.lateness,
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
        stale_before: datetime | None = None,
    ) -> SendReport:
        """Send (or resume) an edition with this config's backend and send settings; the
        editors get a notice when it finishes or stops."""
        before = self.store.get_edition(edition_id)
        try:
            report = send_edition(
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
                stale_before=stale_before,
            )
        except LockedError:
            raise  # another process is sending it: nothing stopped
        except DigestError as exc:
            if not dry_run and self.store.get_edition(edition_id).state is S.SENDING:
                self.notify(notices.stopped(edition_id, before.slot, str(exc), at=self.now()))
            raise
        if dry_run:
            return report
        if report.state in (S.SENT, S.FAILED) and before.state is not report.state:
            summary = report.summary()
            self.notify(notices.sent(edition_id, before.slot, summary, report.totals))
        elif report.interrupted:
            why = "interrupted (SIGTERM or Ctrl-C) before every reader got it"
            self.notify(notices.stopped(edition_id, before.slot, why, at=self.now()))
        return report

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
