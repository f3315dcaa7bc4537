"""Wiring of the editions' workflows: build, proofs, notices, approve, edit, test sends."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property

from digest import notices, workflow
from digest.app.schedule import Schedule
from digest.backends.base import Envelope
from digest.collect import ProgressCallback
from digest.config import ApprovalSettings
from digest.edits import Edit
from digest.exceptions import ConfigError, DigestError, StateError
from digest.models import DeliveryState, Edition, EditionState, Subscriber
from digest.notices import Notifier
from digest.pipeline import Plan
from digest.proofs import send_proofs
from digest.render.message import prepare_message
from digest.render.personalise import Personaliser
from digest.render.variants import ALL
from digest.store.desk import DeskState
from digest.store.ledger import Ledger
from digest.store.ops import NoticeLog, proof_key
from digest.store.sources import SourceState
from digest.store.subscribers import SubscriberStore

S = EditionState


class Editions(Schedule):
    """Building and deciding on editions, with this config's policy and collaborators."""

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
        is false (held: the scheduler mails them after quiet hours). Problems are warnings.
        The subscriber file is synced into the state database first."""
        self.sync_subscribers()
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
        settings = replace(self.settings, approval=self.policy())
        problems = send_proofs(
            settings, edition, now=now, backend=self.mail_backend, deadline=self.deadline(edition)
        )
        NoticeLog(self.store).put(
            proof_key(edition),
            kind="proof",
            edition_id=edition.id,
            status="failed" if problems else "sent",
            now=now,
            note="; ".join(problems),
            recipients=", ".join(e.email for e in settings.approval.editors),
        )
        return problems

    def _hold_proofs(self, edition: Edition) -> list[str]:
        if edition.state is EditionState.PENDING_APPROVAL and self.settings.approval.editors:
            NoticeLog(self.store).put(
                proof_key(edition),
                kind="proof",
                edition_id=edition.id,
                status="held",
                recipients="",
                note="quiet hours",
                now=self.now(),
            )
        return []

    def proofs_held(self, edition: Edition) -> bool:
        found = NoticeLog(self.store).get(proof_key(edition))
        return found is not None and found.status == "held"

    # notices ----------------------------------------------------------------------------

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

    def _source_notices(self) -> None:
        alert = self.settings.fetch.failure_alert
        for h in SourceState(self.store).health().values():
            if alert > 0 and h.consecutive_failures >= alert:
                self.notify(
                    notices.source_failing(
                        h.name, h.url, h.consecutive_failures, h.last_error, h.last_success
                    )
                )

    def policy(self, *, acting: str = "") -> ApprovalSettings:
        """approval settings with editors revoked by `digest editors revoke` left out, read
        from the store each time so a revocation holds at once in every process.

        DigestError when ``acting`` (who is about to approve, reject or edit) is revoked.
        """
        approval = self.settings.approval
        revoked = DeskState(self.store).revoked() if approval.editors else set()
        if not revoked:
            return approval
        who = workflow.find_editor(approval, acting) if acting else None
        if who is not None and who.email.lower() in revoked:
            raise DigestError(
                f"{who.name} is revoked (`digest editors list`); `digest editors reinstate "
                f"{who.name!r}` lets them act again"
            )
        kept = tuple(e for e in approval.editors if e.email.lower() not in revoked)
        return replace(approval, editors=kept)

    def approve(
        self, edition_id: int, *, by: str, via: str, revision: int | None = None
    ) -> workflow.ApprovalResult:
        """Record an approval; an edition approved after its slot passed its maximum
        lateness expires at once (it would never be sent)."""
        result = workflow.approve(
            self.store,
            edition_id,
            policy=self.policy(acting=by),
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
            policy=self.policy(acting=by),
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
        edits: Sequence[Edit] = (),
        remove: Sequence[str] = (),
        pin: str | None = None,
        position: int = 1,
        revision: int | None = None,
    ) -> Edition:
        """A new revision (variants for today's selections rendered with it), re-proofed."""
        edition = workflow.revise(
            self.store,
            edition_id,
            policy=self.policy(acting=by),
            renderer=self.renderer,
            selections=self.selections(),
            by=by,
            via=via,
            now=self.now(),
            edits=edits,
            remove=remove,
            pin=pin,
            position=position,
            revision=revision,
        )
        return replace(edition, warnings=(*edition.warnings, *self.proofs(edition)))

    def send_test(
        self,
        edition_id: int,
        *,
        by: str,
        to: str,
        revision: int | None = None,
        variant: str = ALL,
    ) -> Edition:
        """Mail the current revision (one variant) to ``to`` as a [TEST]; audited, no delivery."""
        return workflow.send_test(
            self.store,
            edition_id,
            policy=self.policy(acting=by),
            by=by,
            to=to,
            now=self.now(),
            envelope=lambda edition, address: self.test_envelope(edition, variant, address),
            backend=self.backend,
            revision=revision,
            variant=variant,
        )

    def test_envelope(self, edition: Edition, variant: str, to: str) -> Envelope:
        """One variant's message as a subscriber gets it, subject prefixed [TEST], for ``to``.

        Its unsubscribe link is the inert preview one: a test reader cannot unsubscribe.
        """
        shown = {ALL: edition.rendered} | {v.key: v.rendered for v in self.store.variants(edition)}
        if variant not in shown:
            raise DigestError(f"edition {edition.id} has no variant {variant}")
        rendered = replace(shown[variant], subject=f"[TEST] {shown[variant].subject}")
        email = self.settings.email
        prepared = prepare_message(
            rendered,
            self.settings.publication,
            unsubscribe_mailto="",
            extra_headers=dict(email.headers),
            dkim=self.dkim,
        )
        personaliser = Personaliser(prepared, self.settings.publication, None)
        return personaliser.envelope(Subscriber(email=to), now=self.now())

    def audience(self, edition: Edition) -> workflow.Audience:
        """How many subscribers the edition goes to, and per variant: counted from the
        ledger once the list is frozen, else by streaming the subscriber list.

        The streamed count is kept until the edition's content, the subscriber file or the
        suppression list changes (a review page is opened often; the list is read once).
        """
        if Ledger(self.store).frozen(edition.id):
            counts = self.store.delivery_counts(edition.id)
            skipped = counts.get(DeliveryState.SKIPPED.value, 0)
            total = sum(counts.values()) - skipped
            return workflow.Audience(total, {}, skipped, frozen=True)
        desk = DeskState(self.store)
        # What a send would find: the subscriber file synced first (cheap when unchanged);
        # a broken file leaves the last synced list, which `digest check` names.
        with contextlib.suppress(ConfigError):
            self.sync_subscribers()
        listed = SubscriberStore(self.store).version()
        key = (edition.id, edition.content_hash, listed, desk.suppression_count())
        if self._audience is None or self._audience[0] != key:
            counted = workflow.audience(
                edition,
                self.store.variants(edition),
                self.iter_subscribers(),
                suppressed=desk.suppressed_among,
                keep_lead=self.settings.ranking.lead_in_every_variant,
            )
            self._audience = (key, counted)
        return self._audience[1]

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
            self.notify(
                notices.expired(
                    after, "not approved by its approval deadline (approval.at_deadline: skip)"
                )
            )
        return after

    def expire_late(self, edition_id: int) -> Edition:
        """Expire an approved edition whose every wave passed its maximum lateness."""
        edition = self.store.get_edition(edition_id)
        until = self.slot_for(edition.slot).last_wave + self.lateness
        after = workflow.expire_late(self.store, edition_id, until=until, now=self.now())
        if edition.state is not after.state:
            self.notify(
                notices.expired(
                    after,
                    "approved, but not sent before its slot passed schedule.max_lateness_minutes",
                )
            )
        return after
