"""The sending engine: walk the delivery ledger, personalise prepared bytes, hand them on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure
from digest.models import DeliveryState, Edition, EditionState, Subscriber
from digest.pipeline import apply
from digest.render.edition import Publication
from digest.render.message import (
    PreparedMessage,
    Recipient,
    make_message_id,
    prepare_message,
    sender_address,
)
from digest.store import Store
from digest.tokens import Signer, unsubscribe_url

D = DeliveryState


@dataclass(slots=True)
class SendReport:
    """What one ``send`` run did; counts are for this run unless named ``total_``."""

    edition_id: int
    state: EditionState
    dry_run: bool = False
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    in_doubt: int = 0
    would_send: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: edition {self.edition_id} would go to {self.would_send} "
                f"subscriber(s), {self.skipped} skipped; nothing was sent or recorded"
            )
        return (
            f"edition {self.edition_id} is {self.state}: sent {self.sent}, failed {self.failed}, "
            f"deferred {self.deferred}, skipped {self.skipped}, in doubt {self.in_doubt} "
            f"(ledger: {', '.join(f'{k} {v}' for k, v in sorted(self.totals.items())) or 'empty'})"
        )


@dataclass(frozen=True, slots=True)
class Personaliser:
    """Turns one subscriber into wire bytes; built once per edition (variant)."""

    prepared: PreparedMessage
    publication: Publication
    signer: Signer | None

    def envelope(self, subscriber: Subscriber, *, now: datetime) -> Envelope:
        url = (
            unsubscribe_url(self.publication.base_url, self.signer, subscriber.email)
            if self.signer
            else f"{self.publication.base_url.rstrip('/')}/u/preview"
        )
        message_id = make_message_id(self.publication.sender_domain)
        data = self.prepared.personalise(
            Recipient(email=subscriber.email, name=subscriber.name, unsubscribe_url=url),
            date=now,
            message_id=message_id,
        )
        return Envelope(
            sender=sender_address(self.publication),
            recipient=subscriber.email,
            data=data,
            message_id=message_id,
        )


def personaliser(
    edition: Edition,
    publication: Publication,
    signer: Signer | None,
    *,
    unsubscribe_mailto: str = "",
    headers: dict[str, str] | None = None,
) -> Personaliser:
    prepared = prepare_message(
        edition.rendered,
        publication,
        unsubscribe_mailto=unsubscribe_mailto,
        extra_headers=headers or {},
    )
    return Personaliser(prepared, publication, signer)


# Given an edition, returns the function that turns one subscriber into wire bytes, or None
# when that subscriber gets nothing from this edition (an empty topic variant).
EnvelopeFactory = Callable[[Subscriber, datetime], Envelope | None]


def send_edition(
    store: Store,
    edition_id: int,
    *,
    subscribers: Sequence[Subscriber],
    backend: Backend,
    make: Callable[[Edition], EnvelopeFactory],
    clock: Callable[[], datetime],
    actor: str = "cli",
    dry_run: bool = False,
) -> SendReport:
    """Send an approved edition, or resume one that is sending; never send twice.

    Every row is committed as in_flight before its message goes on the wire and as sent only
    after the server accepted it, so a crash leaves at most the in-flight rows in doubt.
    """
    edition = store.get_edition(edition_id)
    by_email = {s.email.lower(): s for s in subscribers}
    suppressed = store.suppressed()
    report = SendReport(edition_id, edition.state, dry_run=dry_run)
    if edition.state is EditionState.SENT:
        report.totals = store.delivery_counts(edition_id)
        return report
    if dry_run:
        # Validate the transition and build one message, but write nothing anywhere.
        from digest.approval import transition

        transition(edition, EditionState.SENDING, actor=actor, via="dry-run", now=clock())
        already = set(store.deliveries_in(edition_id, [D.SENT, D.FAILED, D.SKIPPED]))
        todo = [s for s in subscribers if s.email not in already]
        report.skipped = sum(1 for s in todo if s.email.lower() in suppressed)
        report.would_send = len(todo) - report.skipped
        if todo:
            make(edition)(todo[0], clock())
        return report
    # Built before the state changes, so a missing secret or bad template changes nothing.
    maker = make(edition)
    edition = apply(store, edition, EditionState.SENDING, actor=actor, via="send", now=clock())
    store.mark_seen((s.url for s in edition.stories), edition_id=edition_id, now=clock())
    store.add_deliveries(edition_id, (s.email for s in subscribers), now=clock())
    report.in_doubt = len(list(store.deliveries_in(edition_id, [D.IN_FLIGHT])))
    todo_states = [D.PENDING, D.DEFERRED, D.IN_FLIGHT]
    with backend:
        for email in store.deliveries_in(edition_id, todo_states):
            subscriber = by_email.get(email.lower())
            now = clock()
            if subscriber is None or email.lower() in suppressed:
                why = "unsubscribed or suppressed" if subscriber else "no longer a subscriber"
                store.set_delivery(edition_id, email, D.SKIPPED, now=now, error=why)
                report.skipped += 1
                continue
            envelope = maker(subscriber, now)
            if envelope is None:
                store.set_delivery(edition_id, email, D.SKIPPED, now=now, error="nothing in topics")
                report.skipped += 1
                continue
            store.set_delivery(
                edition_id, email, D.IN_FLIGHT, now=now, message_id=envelope.message_id,
                attempt=True,
            )  # fmt: skip
            try:
                outcome, error = _deliver(backend, envelope)
            except BackendError as exc:
                # The backend as a whole failed (login refused, bad certificate) before this
                # message went out: put the row back and stop the run; a rerun resumes here.
                store.set_delivery(edition_id, email, D.PENDING, now=clock(), error=str(exc))
                raise
            store.set_delivery(edition_id, email, outcome, now=clock(), error=error)
            if outcome is D.SENT:
                report.sent += 1
            elif outcome is D.FAILED:
                report.failed += 1
                store.suppress(email, reason=f"hard bounce: {error}", now=clock())
            elif outcome is D.IN_FLIGHT:
                report.in_doubt += 1
            else:
                report.deferred += 1
    totals = store.delivery_counts(edition_id)
    report.totals = totals
    if not any(totals.get(s.value) for s in todo_states):
        final = (
            EditionState.FAILED
            if totals.get(D.FAILED.value) and not totals.get(D.SENT.value)
            else EditionState.SENT
        )
        edition = apply(store, edition, final, actor=actor, via="send", now=clock())
    report.state = edition.state
    return report


def _deliver(backend: Backend, envelope: Envelope) -> tuple[DeliveryState, str]:
    try:
        backend.send(envelope)
    except PermanentFailure as exc:
        return D.FAILED, str(exc)
    except InDoubtFailure as exc:
        # The server may have the message; leaving the row in flight lets the in-doubt
        # policy decide on the next run instead of guessing now.
        return D.IN_FLIGHT, str(exc)
    except TemporaryFailure as exc:
        return D.DEFERRED, str(exc)
    return D.SENT, ""
