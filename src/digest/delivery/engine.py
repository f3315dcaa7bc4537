"""The sending engine: freeze the ledger, then send it with workers that claim its rows.

`digest send` coordinates one edition (a lease, the freeze, the state changes) and sends
with the workers of this process; `digest worker` sends whatever edition is sending. Both
end an edition once no row is left to send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from digest.approval import move, transition
from digest.backends.base import Backend
from digest.config.settings import SendSettings
from digest.delivery.blip import Rider
from digest.delivery.lease import Heartbeat, Lease
from digest.delivery.report import SendReport
from digest.delivery.throttle import Limits
from digest.delivery.worker import Sender, Setup
from digest.exceptions import StateError
from digest.models import DeliveryState, Edition, EditionState, Subscriber, Variant, edition_hash
from digest.render.personalise import EnvelopeFactory
from digest.store import Store
from digest.store.lateness import expire_late
from digest.store.ledger import Ledger
from digest.store.retention import Retention
from digest.workflow import approved_hash

D = DeliveryState
Progress = Callable[["SendReport"], None]
# Given an edition and its approved variants, the function that makes each subscriber's
# message (render.personalise.envelope_factory).
Composer = Callable[[Edition, list[Variant]], EnvelopeFactory]


def send_edition(
    store: Store,
    edition_id: int,
    *,
    subscribers: Iterable[Subscriber],
    backend: Callable[[], Backend] | Backend,
    make: Composer,
    clock: Callable[[], datetime],
    actor: str = "cli",
    dry_run: bool = False,
    options: SendSettings | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    not_before: Callable[[str], datetime] | None = None,
    until: datetime | None = None,
    on_sending: Callable[[], None] | None = None,
    stale_before: datetime | None = None,
    journal: Path | None = None,
) -> SendReport:
    """Send an approved edition, or resume one that is sending; never send twice.

    The recipient list is frozen into the ledger (in committed chunks) before the edition
    becomes sending; then this process sends as one worker among any others.

    With ``stale_before``, never-tried rows due (``not_before``) before it are skipped, not
    sent late: on the first send after an outage as on a resume; so are deferred rows first
    tried before it (store.lateness). ``journal`` is the send
    journal's folder (delivery.journal); without it a crash leaves whole batches in doubt.
    """
    options = options or SendSettings()
    edition = store.get_edition(edition_id)
    report = SendReport(edition_id, edition.state, dry_run=dry_run)
    if edition.state is EditionState.SENT:
        report.totals = store.delivery_counts(edition_id)
        return report
    variants = store.variants(edition)
    if dry_run:
        return _dry_run(store, edition, variants, subscribers, make, clock, actor, report)
    # Before any state change: a missing secret changes nothing.
    envelope_for = make(edition, variants)
    with Lease(store, f"send edition {edition_id}", ttl=options.lock_ttl_seconds) as lease:
        edition = store.get_edition(edition_id)  # another sender may have finished meanwhile
        if edition.state is EditionState.SENT:
            report.state, report.totals = edition.state, store.delivery_counts(edition_id)
            return report
        # Check the move first, but make it only once the recipient list is frozen: a bad
        # subscriber file found mid-stream then leaves the edition approved.
        transition(edition, EditionState.SENDING, actor=actor, via="send", now=clock())
        # Exactly what was approved, variants included: the hash of the stored bytes now.
        approved = approved_hash(store, edition_id)
        stored = edition_hash(edition.rendered, store.variants(edition))
        if approved is None or not approved == edition.content_hash == stored:
            raise StateError(
                f"edition {edition_id} differs from what was approved (hash {approved} at "
                f"approval, {stored} now); approve it again before sending"
            )
        ledger = Ledger(store)
        try:
            if not ledger.frozen(edition_id):
                ledger.populate(edition_id, subscribers, now=clock(), not_before=not_before)
                store.mark_seen(
                    (s.url for s in edition.stories), edition_id=edition_id, now=clock()
                )
        finally:
            ledger.close()
        edition = move(store, edition, EditionState.SENDING, actor=actor, via="send", now=clock())
        if stale_before is not None:
            ledger = Ledger(store)
            try:
                report.skipped += ledger.skip_stale(
                    edition_id, due_before=stale_before, now=clock()
                )
                # Retries too: a deferred row whose wave is past the lateness is not sent late.
                report.expired = expire_late(
                    ledger, edition_id, tried_before=stale_before, now=clock()
                )
                report.skipped += report.expired
            finally:
                ledger.close()
        if on_sending is not None:
            on_sending()  # e.g. start more workers, now that there is something to claim
        report.total = sum(store.delivery_counts(edition_id).values())
        setup = _setup(
            envelope_for,
            backend,
            options,
            clock,
            sleep,
            stop,
            progress,
            until,
            lease=lease,
            wait=True,
            journal=journal,
        )
        _pass(store, edition_id, setup, report)
    return _ride(options, edition_id)(_finish, store, edition, report, actor=actor, clock=clock)


def work_edition(
    store: Store,
    edition_id: int,
    *,
    backend: Callable[[], Backend] | Backend,
    make: Composer,
    clock: Callable[[], datetime],
    options: SendSettings | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
    wait_for_retries: bool = False,
    actor: str = "worker",
    journal: Path | None = None,
) -> SendReport:
    """One worker's pass over an edition in ``sending``: send what is due, end it if done."""
    options = options or SendSettings()
    edition = store.get_edition(edition_id)
    report = SendReport(edition_id, edition.state)
    if edition.state is not EditionState.SENDING:
        report.totals = store.delivery_counts(edition_id)
        return report
    envelope_for = make(edition, store.variants(edition))
    report.total = sum(store.delivery_counts(edition_id).values())
    setup = _setup(
        envelope_for,
        backend,
        options,
        clock,
        sleep,
        stop,
        progress,
        None,
        lease=None,
        wait=wait_for_retries,
        journal=journal,
    )
    _pass(store, edition_id, setup, report)
    return _ride(options, edition_id)(_finish, store, edition, report, actor=actor, clock=clock)


def _setup(
    envelope_for: EnvelopeFactory,
    backend: Callable[[], Backend] | Backend,
    options: SendSettings,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    stop: threading.Event | None,
    progress: Progress | None,
    until: datetime | None,
    *,
    lease: Lease | None,
    wait: bool,
    journal: Path | None,
) -> Setup:
    if isinstance(backend, Backend):
        backends = [backend]
    else:
        first = backend()
        count = options.connections if first.parallel else 1
        backends = [first] + [backend() for _ in range(count - 1)]
    return Setup(
        envelope_for=envelope_for,
        backends=backends,
        options=options,
        clock=clock,
        sleep=sleep,
        stop=stop or threading.Event(),
        lease=lease,
        progress=progress,
        until=until,
        wait_for_retries=wait,
        journal=journal,
    )


def _pass(store: Store, edition_id: int, setup: Setup, report: SendReport) -> None:
    """Register as a worker (heartbeat thread), send, and always unregister."""
    ledger = Ledger(store)
    timeout = setup.backends[0].timeout
    # A permit counts at most this long while its message is busy (a dead worker's).
    busy = setup.options.lock_ttl_seconds + 6 * timeout
    setup.limits = Limits(store, setup.options, busy_seconds=busy, today=setup.clock)
    setup.heartbeat = Heartbeat(ledger, ttl=setup.options.lock_ttl_seconds)
    setup.heartbeat.start()
    try:
        Sender(store, ledger, edition_id, setup, report).run()
    finally:
        setup.heartbeat.stop()
        setup.limits.close()
        ledger.close()


def _ride(options: SendSettings, edition_id: int) -> Rider:
    """Ending the edition waits out a database blip as the sending did."""
    again = f"run `digest send {edition_id}` again"
    return Rider(seconds=options.db_retry_seconds, where=f"edition {edition_id}", resume=again)


def _finish(
    store: Store, edition: Edition, report: SendReport, *, actor: str, clock: Callable[[], datetime]
) -> SendReport:
    """End the edition once no row is left to send (any worker may; the first one does)."""
    ledger = Ledger(store)
    try:
        unfinished = ledger.unfinished(edition.id)
    finally:
        ledger.close()
    totals = store.delivery_counts(edition.id)
    if not unfinished and edition.state is EditionState.SENDING:
        failed_all = totals.get(D.FAILED.value) and not totals.get(D.SENT.value)
        final = EditionState.FAILED if failed_all else EditionState.SENT
        try:
            edition = move(store, edition, final, actor=actor, via="send", now=clock())
            totals = Retention(store).summarise(edition.id, now=clock())
        except StateError:
            edition = store.get_edition(edition.id)  # another worker ended it first
    report.totals = totals
    report.total = sum(totals.values())
    report.deferred = totals.get(D.DEFERRED.value, 0)
    report.state = edition.state
    return report


def _dry_run(
    store: Store,
    edition: Edition,
    variants: list[Variant],
    subscribers: Iterable[Subscriber],
    make: Composer,
    clock: Callable[[], datetime],
    actor: str,
    report: SendReport,
) -> SendReport:
    # Validate the transition and build one message, but write nothing anywhere.
    transition(edition, EditionState.SENDING, actor=actor, via="dry-run", now=clock())
    envelope_for = make(edition, variants)
    first = True
    for sub in subscribers:
        if store.is_suppressed(sub.email):
            report.skipped += 1
            continue
        if first:
            envelope_for(sub, clock())
            first = False
        report.would_send += 1
    return report
