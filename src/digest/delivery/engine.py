"""The sending engine: a durable ledger, a pool of connections, throttling, retries, resume."""

from __future__ import annotations

import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.approval import move, transition
from digest.backends.base import Backend, Envelope
from digest.config.settings import SendSettings
from digest.delivery.lease import Lease
from digest.delivery.throttle import Throttle, Window
from digest.exceptions import (
    BackendError,
    DigestError,
    InDoubtFailure,
    PermanentFailure,
    StateError,
    TemporaryFailure,
)
from digest.models import DeliveryState, Edition, EditionState, Subscriber, Variant, edition_hash
from digest.render.personalise import EnvelopeFactory
from digest.store import Store
from digest.store.ledger import Ledger, Mark, Outcome, Row
from digest.workflow import approved_hash

D = DeliveryState
Progress = Callable[["SendReport"], None]
# Given an edition and its approved variants, the function that makes each subscriber's
# message (render.personalise.envelope_factory).
Composer = Callable[[Edition, list[Variant]], EnvelopeFactory]


@dataclass(slots=True)
class SendReport:
    """What one ``send`` run did; ``totals`` is the whole ledger afterwards."""

    edition_id: int
    state: EditionState
    dry_run: bool = False
    total: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    in_doubt: int = 0
    unknown: int = 0
    would_send: int = 0
    interrupted: bool = False
    totals: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: edition {self.edition_id} would go to {self.would_send} "
                f"subscriber(s), {self.skipped} skipped; nothing was sent or recorded"
            )
        ledger = ", ".join(f"{k} {v}" for k, v in sorted(self.totals.items())) or "empty"
        return (
            f"edition {self.edition_id} is {self.state}: sent {self.sent}, failed {self.failed}, "
            f"deferred {self.deferred}, skipped {self.skipped}, unknown {self.unknown}, "
            f"in doubt {self.in_doubt} (ledger: {ledger})"
        )


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
    not_before: Callable[[Subscriber], datetime] | None = None,
    until: datetime | None = None,
    stale_before: datetime | None = None,
) -> SendReport:
    """Send an approved edition, or resume one that is sending; never send twice.

    With ``stale_before``, never-tried rows due (``not_before``) before it are skipped, not
    sent late: on the first send after an outage as on a resume.

    Every row is committed as in_flight before its message goes on the wire and as sent only
    after the server accepted it; at most ``2 x connections`` rows are in flight at once, so
    a crash leaves at most that many in doubt.
    """
    options = options or SendSettings()
    single = backend if isinstance(backend, Backend) else None
    factory = None if isinstance(backend, Backend) else backend
    edition = store.get_edition(edition_id)
    report = SendReport(edition_id, edition.state, dry_run=dry_run)
    if edition.state is EditionState.SENT:
        report.totals = store.delivery_counts(edition_id)
        return report
    ledger = Ledger(store)
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
        # subscriber file found mid-stream then leaves the edition approved and untouched.
        transition(edition, EditionState.SENDING, actor=actor, via="send", now=clock())
        # Exactly what was approved, variants included: the hash of the stored bytes now.
        approved = approved_hash(store, edition_id)
        stored = edition_hash(edition.rendered, store.variants(edition))
        if approved is None or not approved == edition.content_hash == stored:
            raise StateError(
                f"edition {edition_id} differs from what was approved (hash {approved} at "
                f"approval, {stored} now); approve it again before sending"
            )
        if not ledger.frozen(edition_id):
            ledger.populate(edition_id, subscribers, now=clock(), not_before=not_before)
            store.mark_seen((s.url for s in edition.stories), edition_id=edition_id, now=clock())
        edition = move(store, edition, EditionState.SENDING, actor=actor, via="send", now=clock())
        resend = options.in_doubt == "resend"
        doubtful = ledger.recover_in_doubt(edition_id, resend=resend, now=clock())
        report.in_doubt, report.unknown = doubtful, 0 if resend else doubtful
        if stale_before is not None:
            report.skipped += ledger.skip_stale(edition_id, due_before=stale_before, now=clock())
        report.total = sum(store.delivery_counts(edition_id).values())
        runner = _Run(store, ledger, edition_id, envelope_for, factory, single, options, clock,
                      sleep, report, lease, progress, stop or threading.Event(), until)  # fmt: skip
        try:
            runner.run()
        finally:
            ledger.close()
    totals = store.delivery_counts(edition_id)
    report.totals = totals
    report.total = sum(totals.values())
    report.deferred = totals.get(D.DEFERRED.value, 0)
    if not any(totals.get(s.value) for s in (D.PENDING, D.DEFERRED, D.IN_FLIGHT)):
        failed_all = totals.get(D.FAILED.value) and not totals.get(D.SENT.value)
        final = EditionState.FAILED if failed_all else EditionState.SENT
        edition = move(store, edition, final, actor=actor, via="send", now=clock())
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


class _Run:
    """One pass of the engine over the ledger: fill the window, collect results, repeat."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        edition_id: int,
        envelope_for: EnvelopeFactory,
        factory: Callable[[], Backend] | None,
        single: Backend | None,
        options: SendSettings,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        report: SendReport,
        lease: Lease,
        progress: Progress | None,
        stop: threading.Event,
        until: datetime | None = None,
    ) -> None:
        self.store, self.ledger, self.edition_id = store, ledger, edition_id
        self.envelope_for, self.options, self.sleep = envelope_for, options, sleep
        self.report, self.lease, self.progress, self.stop = report, lease, progress, stop
        backends = [single] if single else []
        if factory is not None:
            first = factory()
            count = options.connections if first.parallel else 1
            backends = [first] + [factory() for _ in range(count - 1)]
        self.backends: list[Backend] = backends
        self.window = 2 * len(backends)
        windows = []
        if options.rate_per_second:
            windows.append(Window(options.rate_per_second, 1.0))
        if options.window_messages:
            windows.append(Window(options.window_messages, options.window_seconds))
        self.throttle = Throttle(windows)
        self.work: queue.Queue[tuple[Row, Envelope] | None] = queue.Queue()
        self.results: queue.Queue[tuple[Outcome, BaseException | None]] = queue.Queue()
        self.fatal: BaseException | None = None
        self.inflight = 0
        self._done: list[Outcome] = []  # finished, to be recorded with the next commit
        self._wall = clock
        self.until = until  # quiet hours start: no new message goes out from then on
        self._floor: datetime | None = None

    def run(self) -> None:
        # Connection threads hand results back every few hundred microseconds; the default
        # 5 ms GIL switch interval would make each handoff wait behind a busy thread.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0002)
        try:
            self._run_threads()
        finally:
            sys.setswitchinterval(interval)

    def _run_threads(self) -> None:
        threads = [
            threading.Thread(target=self._worker, args=(b,), daemon=True) for b in self.backends
        ]
        for t in threads:
            t.start()
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
        finally:
            for _ in threads:
                self.work.put(None)
            for t in threads:
                t.join()
        if self.fatal is not None:
            raise DigestError(f"sending stopped: {self.fatal}; fix it and run send again to resume")

    def _loop(self) -> None:
        started = self.clock()
        rows: Iterator[Row] = self.ledger.due(self.edition_id, now=started)
        while True:
            paused = self.until is not None and self.clock() >= self.until
            if not paused and not self.stop.is_set() and self.fatal is None:
                rows = self._fill(rows, self.window - self.inflight)
            if self.inflight == 0:
                self._flush()
                if paused or self.stop.is_set() or self.fatal is not None:
                    self.report.interrupted = self.stop.is_set()
                    return
                next_rows = self._next_pass(started)
                if next_rows is None:
                    return
                rows = next_rows
                continue
            self._collect(block=True)
            self.lease.renew()
            if self.progress:
                self.progress(self.report)

    def _interrupt(self) -> None:
        """Ctrl-C: messages not yet handed to a connection go back to pending; the ones on
        the wire are finished and recorded, so the ledger stays exact."""
        self.stop.set()
        self.report.interrupted = True
        unsent: list[Outcome] = []
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                break
            if item is None:
                continue
            row, _ = item
            unsent.append(Outcome(row.subscriber.email, D.PENDING, "interrupted before sending"))
        self._done.extend(unsent)
        self.inflight -= len(unsent)
        while self.inflight > 0:
            self._collect(block=True)
        self._flush()

    def _flush(self) -> None:
        self.ledger.record(self.edition_id, self._done, now=self.clock())
        self._done = []

    def _fill(self, rows: Iterator[Row], room: int) -> Iterator[Row]:
        batch: list[tuple[Row, Envelope]] = []
        marks: list[Mark] = []
        skipped: list[Outcome] = []
        now = self.clock()
        while len(batch) < room:
            row = next(rows, None)
            if row is None:
                break
            made = None if row.suppressed else self.envelope_for(row.subscriber, now)
            if made is None:
                why = "unsubscribed or suppressed" if row.suppressed else "nothing in your topics"
                skipped.append(Outcome(row.subscriber.email, D.SKIPPED, why))
                continue
            envelope, variant = made
            batch.append((row, envelope))
            marks.append(Mark(row.subscriber.email, envelope.message_id, variant))
        self.report.skipped += len(skipped)
        # Finished rows and the next in-flight marks share one commit, before the wire.
        self.ledger.commit(self.edition_id, outcomes=self._done + skipped, in_flight=marks, now=now)
        self._done = []
        self.inflight += len(batch)
        for item in batch:
            self.work.put(item)
        return rows

    def _collect(self, *, block: bool) -> None:
        outcomes: list[Outcome] = []
        try:
            outcomes.append(self._take(self.results.get(timeout=None if block else 0)))
            while True:
                outcomes.append(self._take(self.results.get_nowait()))
        except queue.Empty:
            pass
        self._done.extend(outcomes)
        for o in outcomes:
            if o.state is D.FAILED:
                self.store.suppress(o.email, reason=f"hard bounce: {o.error}", now=self.clock())
        self.inflight -= len(outcomes)

    def _take(self, item: tuple[Outcome, BaseException | None]) -> Outcome:
        outcome, fatal = item
        if fatal is not None and self.fatal is None:
            self.fatal = fatal
        counts = {D.SENT: "sent", D.FAILED: "failed", D.DEFERRED: "deferred", D.UNKNOWN: "unknown"}
        if outcome.state in counts:
            name = counts[outcome.state]
            setattr(self.report, name, getattr(self.report, name) + 1)
        return outcome

    def clock(self) -> datetime:
        """The caller's clock, but never earlier than a retry time this run waited for:
        waits are measured in real seconds, so they also end under a frozen clock."""
        now = self._wall()
        return max(now, self._floor) if self._floor else now

    def _next_pass(self, started: datetime) -> Iterator[Row] | None:
        """Wait for the next deferred row to come due, within the run's retry window."""
        now = self.clock()
        deadline = now - timedelta(hours=self.options.retry_deadline_hours)
        self.report.failed += self.ledger.expire(
            self.edition_id, first_attempt_before=deadline, now=now
        )
        due = self.ledger.next_due_at(self.edition_id)
        if due is None:
            return None
        give_up = started + timedelta(seconds=self.options.retry_in_run_seconds)
        if due > give_up:
            return None
        remaining = (due - self.clock()).total_seconds()
        while remaining > 0:
            if self.stop.is_set():
                return None
            step = min(1.0, remaining)
            self.sleep(step)
            remaining -= step
            self.lease.renew()
        self._floor = max(due, self.clock())
        return self.ledger.due(self.edition_id, now=self.clock())

    def _worker(self, backend: Backend) -> None:
        try:
            backend.open()
        except BackendError as exc:
            self._fail_all(exc)
            return
        try:
            while True:
                item = self.work.get()
                if item is None:
                    return
                row, envelope = item
                self.results.put(self._deliver(backend, row, envelope))
        finally:
            backend.close()

    def _fail_all(self, exc: BaseException) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            row, _ = item
            self.results.put((Outcome(row.subscriber.email, D.PENDING, str(exc)), exc))

    def _deliver(
        self, backend: Backend, row: Row, envelope: Envelope
    ) -> tuple[Outcome, BaseException | None]:
        email = row.subscriber.email
        self.throttle.acquire()
        try:
            backend.send(envelope)
        except PermanentFailure as exc:
            return Outcome(email, D.FAILED, str(exc)), None
        except (TemporaryFailure, InDoubtFailure) as exc:
            if isinstance(exc, InDoubtFailure) and self.options.in_doubt == "skip":
                return Outcome(email, D.UNKNOWN, f"in doubt: {exc}"), None
            return Outcome(email, D.DEFERRED, str(exc), self._backoff(row.attempts + 1)), None
        except BackendError as exc:
            # The backend as a whole failed (login refused, bad certificate) before this
            # message went out: the row goes back to pending and the run stops.
            return Outcome(email, D.PENDING, str(exc)), exc
        finally:
            self.throttle.release()
        return Outcome(email, D.SENT), None

    def _backoff(self, attempts: int) -> datetime:
        base = self.options.retry_base_seconds * 2 ** (attempts - 1)
        delay = min(self.options.retry_max_seconds, base) * random.uniform(0.5, 1.5)
        return self.clock() + timedelta(seconds=delay)
