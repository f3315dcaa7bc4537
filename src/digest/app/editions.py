"""Wiring of the editions' workflows: build, proofs, notices, approve, edit, test sends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import replace

from digest import notices, workflow
from digest.app.context import Context
from digest.app.readers import Readers
from digest.app.schedule import Schedule
from digest.backends.base import Envelope
from digest.collect import ProgressCallback
from digest.config import ApprovalSettings
from digest.edits import Edit
from digest.exceptions import ConfigError, DigestError, PreflightFailed, StateError
from digest.models import DeliveryState, Edition, EditionState, Subscriber
from digest.pipeline import Plan
from digest.proofs import send_proofs
from digest.render.message import prepare_message
from digest.render.personalise import Personaliser
from digest.render.preflight import preflight
from digest.render.variants import ALL
from digest.store.desk import DeskState
from digest.store.ledger import Ledger
from digest.store.ops import NoticeLog, mark_build, proof_key
from digest.store.sources import SourceState
from digest.store.subscribers import SubscriberStore

S = EditionState


class Editions:
    """Building and deciding on editions, with this config's policy and collaborators
    (``app.editions``)."""

    def __init__(self, context: Context, readers: Readers, schedule: Schedule) -> None:
        self.context = context
        self.readers = readers
        self.schedule = schedule
        self._audience: tuple[object, workflow.Audience] | None = None

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
        self.readers.sync()
        now = self.context.now()
        key = slot or self.schedule.build_slot(now).key
        self.schedule.slot_for(key)  # a malformed --slot fails before anything is fetched
        latest = self.context.store.latest_for_slot(key)
        if latest is not None and latest.state in (S.SENDING, S.SENT, S.FAILED):
            # Checked again in the build's own transaction; this saves the fetching.
            raise StateError(
                f"slot {key} already has edition {latest.id} ({latest.state}); a slot is sent "
                "once, so build for another slot (--slot YYYY-MM-DDTHH:MM)"
            )
        started = time.monotonic()  # the real duration, whatever the clock says
        with self.context.pipeline() as pipeline:
            edition = pipeline.build(
                now=now,
                slot=key,
                selections=self.readers.selections(),
                order=order,
                auto_approve=self.context.settings.approval.auto_approve,
                progress=progress,
            )
        mark_build(self.context.store, time.monotonic() - started, now)
        problems = self.proofs(edition) if proofs else self._hold_proofs(edition)
        self._source_notices()  # problems mailing them go to ``notes``
        return replace(edition, warnings=(*edition.warnings, *problems))

    def plan(self, *, order: Sequence[str] = ()) -> Plan:
        """What would be built now; the state file is only read."""
        now = self.context.now()
        store = self.context.readonly_store()
        try:
            with self.context.pipeline(store) as pipeline:
                return pipeline.plan(now=now, slot=self.schedule.next_slot(now).key, order=order)
        finally:
            store.close()

    def proofs(self, edition: Edition, *, skip: str = "") -> list[str]:
        """Mail the proof of a pending edition to the editors but ``skip`` (an address: the
        editor asking for them, who is looking at it); one line per problem."""
        if (
            edition.state is not EditionState.PENDING_APPROVAL
            or not self.context.settings.approval.editors
        ):
            return []
        now = self.context.now()
        policy = self.policy()
        kept = tuple(e for e in policy.editors if e.email.lower() != skip.lower())
        settings = replace(self.context.settings, approval=replace(policy, editors=kept))
        problems = send_proofs(
            settings,
            edition,
            now=now,
            backend=self.context.mail_backend,
            deadline=self.schedule.deadline(edition),
        )
        NoticeLog(self.context.store).put(
            proof_key(edition),
            kind="proof",
            edition_id=edition.id,
            status="failed" if problems else "sent",
            now=now,
            note="; ".join(problems),
            recipients=", ".join(e.email for e in settings.approval.editors),
        )
        if problems:
            self.context.notify(notices.proof_failed(edition.id, edition.revision, problems))
        return problems

    def _hold_proofs(self, edition: Edition) -> list[str]:
        if (
            edition.state is EditionState.PENDING_APPROVAL
            and self.context.settings.approval.editors
        ):
            NoticeLog(self.context.store).put(
                proof_key(edition),
                kind="proof",
                edition_id=edition.id,
                status="held",
                recipients="",
                note="quiet hours",
                now=self.context.now(),
            )
        return []

    def proofs_held(self, edition: Edition) -> bool:
        found = NoticeLog(self.context.store).get(proof_key(edition))
        return found is not None and found.status == "held"

    def _source_notices(self) -> None:
        alert = self.context.settings.fetch.failure_alert
        for h in SourceState(self.context.store).health().values():
            if alert > 0 and h.consecutive_failures >= alert:
                self.context.notify(
                    notices.source_failing(
                        h.name, h.url, h.consecutive_failures, h.last_error, h.last_success
                    )
                )

    def policy(self, *, acting: str = "") -> ApprovalSettings:
        """approval settings with editors revoked by `digest editors revoke` left out, read
        from the store each time so a revocation holds at once in every process.

        DigestError when ``acting`` (who is about to approve, reject or edit) is revoked.
        """
        approval = self.context.settings.approval
        revoked = DeskState(self.context.store).revoked() if approval.editors else set()
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
        lateness expires at once (it would never be sent). An edition that fails preflight
        is not approved (PreflightFailed names each error), from the desk or the CLI alike."""
        edition = self.context.store.get_edition(edition_id)
        errors = self.preflight_errors(edition) if edition.state is S.PENDING_APPROVAL else []
        if errors:
            raise PreflightFailed(
                f"edition {edition_id} fails preflight, so it was not approved: "
                + "; ".join(errors)
                + f" (fix them, then approve again; `digest check {edition_id}` lists them)"
            )
        result = workflow.approve(
            self.context.store,
            edition_id,
            policy=self.policy(acting=by),
            by=by,
            via=via,
            now=self.context.now(),
            revision=revision,
        )
        if not result.approved:
            return result
        return replace(result, edition=self.expire_late(edition_id))

    def preflight_errors(self, edition: Edition) -> list[str]:
        """The error-level preflight findings of ``edition`` (what `digest check N` fails
        on): the desk refuses an approval while there are any."""
        pub = self.context.settings.publication
        found = preflight(
            edition.rendered,
            stories=edition.stories,
            postal_address=pub.postal_address,
            html_budget=self.context.settings.email.html_budget,
        )
        return [f.message for f in found if f.level == "error"]

    def reject(
        self, edition_id: int, *, by: str, reason: str, via: str, revision: int | None = None
    ) -> Edition:
        return workflow.reject(
            self.context.store,
            edition_id,
            policy=self.policy(acting=by),
            by=by,
            reason=reason,
            via=via,
            now=self.context.now(),
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
        proofs: bool = True,
    ) -> Edition:
        """A new revision (variants for today's selections rendered with it), re-proofed
        unless ``proofs`` is false (the desk: the editor asks for them when done)."""
        edition = workflow.revise(
            self.context.store,
            edition_id,
            policy=self.policy(acting=by),
            renderer=self.context.renderer,
            selections=self.readers.selections(),
            by=by,
            via=via,
            now=self.context.now(),
            edits=edits,
            remove=remove,
            pin=pin,
            position=position,
            revision=revision,
        )
        problems = self.proofs(edition) if proofs else []
        return replace(edition, warnings=(*edition.warnings, *problems))

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
            self.context.store,
            edition_id,
            policy=self.policy(acting=by),
            by=by,
            to=to,
            now=self.context.now(),
            envelope=lambda edition, address: self.test_envelope(edition, variant, address),
            backend=self.context.backend,
            revision=revision,
            variant=variant,
        )

    def test_envelope(self, edition: Edition, variant: str, to: str) -> Envelope:
        """One variant's message as a subscriber gets it, subject prefixed [TEST], for ``to``.

        Its unsubscribe link is the inert preview one: a test reader cannot unsubscribe.
        """
        shown = {ALL: edition.rendered} | {
            v.key: v.rendered for v in self.context.store.variants(edition)
        }
        if variant not in shown:
            raise DigestError(f"edition {edition.id} has no variant {variant}")
        rendered = replace(shown[variant], subject=f"[TEST] {shown[variant].subject}")
        email = self.context.settings.email
        prepared = prepare_message(
            rendered,
            self.context.settings.publication,
            unsubscribe_mailto="",
            extra_headers=dict(email.headers),
            dkim=self.context.dkim,
        )
        personaliser = Personaliser(prepared, self.context.settings.publication, None)
        return personaliser.envelope(Subscriber(email=to), now=self.context.now())

    def audience(self, edition: Edition) -> workflow.Audience:
        """How many subscribers the edition goes to, and per variant: counted from the
        ledger once the list is frozen, else by streaming the subscriber list.

        The streamed count is kept until the edition's content, the subscriber file or the
        suppression list changes (a review page is opened often; the list is read once).
        """
        if Ledger(self.context.store).frozen(edition.id):
            counts = self.context.store.delivery_counts(edition.id)
            skipped = counts.get(DeliveryState.SKIPPED.value, 0)
            total = sum(counts.values()) - skipped
            return workflow.Audience(total, {}, skipped, frozen=True)
        desk = DeskState(self.context.store)
        # What a send would find: the subscriber file synced first (cheap when unchanged);
        # a broken file leaves the last synced list, which `digest check` names.
        with contextlib.suppress(ConfigError):
            self.readers.sync()
        listed = SubscriberStore(self.context.store).version()
        key = (edition.id, edition.content_hash, listed, desk.suppression_count())
        if self._audience is None or self._audience[0] != key:
            counted = workflow.audience(
                edition,
                self.context.store.variants(edition),
                self.readers.receiving(),
                suppressed=desk.suppressed_among,
                keep_lead=self.context.settings.ranking.lead_in_every_variant,
            )
            self._audience = (key, counted)
        return self._audience[1]

    def enforce_deadline(self, edition_id: int) -> Edition:
        """Settle a pending edition at its deadline; an expiry is mailed to the editors."""
        edition = self.context.store.get_edition(edition_id)
        after = workflow.enforce_deadline(
            self.context.store,
            edition_id,
            policy=self.policy(),  # revoked editors' approvals do not count
            deadline=self.schedule.deadline(edition),
            now=self.context.now(),
        )
        if edition.state is not after.state and after.state is EditionState.EXPIRED:
            self.context.notify(
                notices.expired(
                    after, "not approved by its approval deadline (approval.at_deadline: skip)"
                )
            )
        return after

    def expire_late(self, edition_id: int) -> Edition:
        """Expire an approved edition whose every wave passed its maximum lateness."""
        edition = self.context.store.get_edition(edition_id)
        until = self.schedule.slot_for(edition.slot).last_wave + self.schedule.lateness
        after = workflow.expire_late(
            self.context.store, edition_id, until=until, now=self.context.now()
        )
        if edition.state is not after.state:
            self.context.notify(
                notices.expired(
                    after,
                    "approved, but not sent before its slot passed schedule.max_lateness_minutes",
                )
            )
        return after
