"""One worker's pass over an edition: claim due rows, take permits, mark, send, record.

Every row is committed as in flight (fenced by this worker's claim) before its message goes
on the wire, and its outcome is written only while the claim is still this worker's. Both
happen a batch at a time (``32 x connections`` rows, 256 for a local backend); the journal
(delivery.journal) records each hand-over and answer as it happens, so a crash leaves in
doubt only the messages on its connections, and the batch's other rows are settled.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digest.backends.base import Backend, Envelope
from digest.config.settings import SendSettings
from digest.delivery.answers import IN_DOUBT, answer, untried, worth_waiting
from digest.delivery.blip import Rider
from digest.delivery.breaker import Breaker, host_of
from digest.delivery.journal import HANDED, REFUSED, SENT, Journal, settle
from digest.delivery.lease import Heartbeat, Lease
from digest.delivery.report import SendReport
from digest.delivery.throttle import Limits, Want
from digest.exceptions import (
    BackendError,
    DigestError,
    TemporaryFailure,
)
from digest.models import DeliveryState, SubscriberState
from digest.render.personalise import EnvelopeFactory
from digest.store.lateness import expire_retries
from digest.store.ledger import Ledger, Mark, Outcome, Row
from digest.store.limits import Permits
from digest.store.repository import Store

D = DeliveryState
LOCAL_BATCH = 256  # rows in flight at once for a local backend (no network round trips)
PER_CONNECTION = 32  # rows in flight per SMTP connection: one on the wire, the rest queued
# (fewer, larger ledger commits: on PostgreSQL, 32 instead of 8 cut the machine's CPU per
# message by about a tenth, and a crash still leaves only ``connections`` rows on the wire)
STEP = 0.2  # the longest the loop goes without looking at stop, lease and heartbeat
Item = tuple[Row, Envelope, str]  # row, message, permit holder


@dataclass(slots=True)
class Setup:
    """What a pass needs besides the ledger: made once per run by the engine."""

    envelope_for: EnvelopeFactory
    backends: list[Backend]
    options: SendSettings
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    stop: threading.Event
    heartbeat: Heartbeat | None = None  # set by the engine for each pass
    limits: Limits | None = None
    lease: Lease | None = None
    progress: Callable[[SendReport], None] | None = None
    until: datetime | None = None
    wait_for_retries: bool = True  # `digest send` waits for retries; a worker polls later
    journal: Path | None = None  # the send journal's folder (None: no journal)


class Sender:
    """Sends the due rows of one edition from this process until none is left for it."""

    def __init__(
        self, store: Store, ledger: Ledger, edition_id: int, setup: Setup, report: SendReport
    ) -> None:
        self.store, self.ledger, self.edition_id = store, ledger, edition_id
        self.s, self.report = setup, report
        assert setup.heartbeat is not None
        assert setup.limits is not None
        self.heartbeat, self.limits = setup.heartbeat, setup.limits
        self.token = setup.heartbeat.token
        self.parallel = setup.backends[0].parallel
        self.window = PER_CONNECTION * len(setup.backends) if self.parallel else LOCAL_BATCH
        # Rows are marked in flight half a window at a time: one commit per batch, not per
        # message, while the queued half keeps every connection busy meanwhile.
        self.refill = max(1, self.window // 2)
        self.claim_size = 4 * self.window
        self.buffer: deque[Row] = deque()
        self.work: queue.Queue[Item | None] = queue.Queue()
        self.results: queue.Queue[tuple[Outcome, str, BaseException | None]] = queue.Queue()
        self.inflight = 0
        self.fatal: BaseException | None = None
        self.journal: Journal | None = None
        self._done: list[Outcome] = []  # finished, recorded with the next commit
        self._ended: list[str] = []  # permit holders to release with the next commit
        self._throttled = 0.0  # real time until which a shared limit is full
        self._seq = 0  # numbers this worker's permits
        self._empty = False  # the last claim found nothing due
        self._floor: datetime | None = None
        self.started = setup.clock()
        self.left_for_later = False
        # Ledger writes wait out a database that went away (send.db_retry_seconds).
        again, where = f"run `digest send {edition_id}` again", f"edition {edition_id}"
        self.db = Rider(seconds=setup.options.db_retry_seconds, where=where, resume=again)
        self.breaker = Breaker(setup.options.host_failures, setup.options.retry_in_run_seconds)

    # the clock ---------------------------------------------------------------------------

    def clock(self) -> datetime:
        """The caller's clock, but never earlier than a retry time this run waited for:
        waits are measured in real seconds, so they also end under a frozen clock."""
        now = self.s.clock()
        return max(now, self._floor) if self._floor else now

    # the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        folder = self.s.journal
        self.journal = Journal(folder, self.token, self.edition_id) if folder else None
        # Connection threads hand results back every few hundred microseconds; the default
        # 5 ms GIL switch interval would make each handoff wait behind a busy thread.
        interval = sys.getswitchinterval()
        threads = []
        if self.parallel:
            sys.setswitchinterval(0.0002)
            threads = [
                threading.Thread(target=self._connection, args=(b,), daemon=True)
                for b in self.s.backends
            ]
        else:
            self._open(self.s.backends[0])
        for t in threads:
            t.start()
        drained = False
        try:
            self._recover()  # what a crashed run left in flight goes first
            self._loop()
        except KeyboardInterrupt:
            self.s.stop.set()
        finally:
            try:
                self._drain()
                drained = True
                if self.s.progress:
                    self.s.progress(self.report)
            finally:
                for _ in threads:
                    self.work.put(None)
                for t in threads:
                    t.join()
                if not self.parallel:
                    self.s.backends[0].close()
                sys.setswitchinterval(interval)
                if self.journal is not None:
                    self.journal.close(remove=drained)  # kept for the recovery if not
        if self.fatal is not None:
            raise DigestError(f"sending stopped: {self.fatal}; fix it and run send again to resume")

    def _halted(self) -> bool:
        s = self.s
        if s.stop.is_set() or (s.lease is not None and s.lease.lost.is_set()):
            self.report.interrupted = True
            return True
        if self.heartbeat.lost.is_set():
            raise DigestError(
                "this worker was stopped longer than send.lock_ttl_seconds and "
                "lost its claims; other workers have them now"
            )
        paused = s.until is not None and self.clock() >= s.until
        # A dead or tarpitting host ends the run; its rows wait for the next (delivery.breaker).
        self.report.stopped = self.report.stopped or self.breaker.stop_reason()
        return paused or self.fatal is not None or bool(self.report.stopped)

    def _loop(self) -> None:
        while not self._halted():
            if self.s.progress:
                self.s.progress(self.report)
            room = self.window - self.inflight
            waiting = self._throttled > time.time()
            if room > 0 and not waiting and (room >= self.refill or not self.inflight):
                self._fill(room)
            elif waiting and (self._done or self._ended):
                # Record what finished while waiting: its permits end, so the window opens.
                self._commit([])
            if self.inflight == 0 and not self.buffer:
                if not self._empty and not waiting:
                    continue  # the next fill claims more
                self._commit([])
                if self._halted() or not self._next_pass():
                    return
                continue
            if self.inflight:
                self._collect(timeout=STEP)
            elif waiting:
                self.s.sleep(min(STEP, max(self._throttled - time.time(), 0.001)))

    def _fill(self, room: int) -> None:
        now = self.clock()
        if len(self.buffer) < room and not self._empty:
            rows = self.db(
                self.ledger.claim,
                self.edition_id,
                self.token,
                now=now,
                live=self.heartbeat.live(),
                limit=self.claim_size,
            )
            self.buffer.extend(rows)
            self._empty = not rows
        ready: list[Item] = []
        skipped: list[Outcome] = []
        while self.buffer and len(ready) < room:
            row = self.buffer.popleft()
            email = row.subscriber.email
            made = (
                None
                if row.suppressed
                else self.db(self.s.envelope_for, row.subscriber, now, row.message_id or None)
            )
            if made is None:
                why = "unsubscribed or suppressed" if row.suppressed else "nothing in your topics"
                skipped.append(Outcome(email, D.SKIPPED, why))
                continue
            ready.append((row, made[0], made[1]))
        permitted = self._permitted(ready)
        if permitted and not self.heartbeat.valid_for(2 * STEP):
            self.buffer.extendleft(reversed([r for r, _, _, _ in permitted]))
            permitted = []
        marks = [Mark(r.subscriber.email, e.message_id, v) for r, e, v, _ in permitted]
        marked = self._commit(skipped, marks)
        self.report.skipped += len(skipped) + sum(1 for m in marks if m.email not in marked)
        for row, envelope, _, holder in permitted:
            if row.subscriber.email not in marked:
                if holder:
                    self._ended.append(holder)  # suppressed since the claim, or claim lost
                continue
            self.inflight += 1
            if self.parallel:
                self.work.put((row, envelope, holder))
            else:
                self._take(self._deliver(self.s.backends[0], row, envelope, holder))

    def _permitted(self, ready: list[Item]) -> list[tuple[Row, Envelope, str, str]]:
        """The rows the shared limits let go now, each with its permit holder ("" without
        limits); the others wait (a shared limit is full) or go back to the queue until
        their domain's window has room."""
        limits = self.limits
        if not limits.active or not ready:
            return [(r, e, v, "") for r, e, v in ready]
        holders: dict[str, Item] = {}
        for item in ready:
            self._seq += 1
            holders[f"{self.token}:{self._seq}"] = item
        wants = [Want(h, r.subscriber.email) for h, (r, _, _) in holders.items()]
        grant = self.db(limits.acquire, wants, worker=self.token)
        refused = [h for h in holders if h in grant.retry_at]
        if any(limits.is_shared(k) for k in grant.full):
            self._throttled = min(grant.retry_at.values())
            self.buffer.extendleft(reversed([holders[h][0] for h in refused]))
        else:
            for h in refused:
                wait = grant.retry_at[h] - time.time()
                due = self.clock() + timedelta(seconds=max(wait, 0.0))
                email = holders[h][0].subscriber.email
                self.db(self.ledger.release, self.edition_id, self.token, [email], due=due)
        return [(*holders[h], h) for h in grant.granted]

    def _commit(self, skipped: list[Outcome], marks: list[Mark] | None = None) -> set[str]:
        outcomes, self._done = self._done + skipped, []
        ended, self._ended = self._ended, []
        extra = None
        if ended:
            sql, params = Permits.release_statement(ended, at=time.time())
            raw = self.ledger.raw

            def extra(cur: Any) -> None:
                cur.execute(raw.sql(sql), params)

        return self.db(
            self.ledger.commit,
            self.edition_id,
            self.token,
            outcomes=outcomes,
            in_flight=marks or [],
            now=self.clock(),
            live=self.heartbeat.live(),
            extra=extra,
        )

    def _collect(self, *, timeout: float | None) -> None:
        try:
            self._take(self.results.get(timeout=timeout))
            while True:
                self._take(self.results.get_nowait())
        except queue.Empty:
            pass

    def _take(self, item: tuple[Outcome, str, BaseException | None]) -> None:
        outcome, holder, fatal = item
        self.inflight -= 1
        if fatal is not None and self.fatal is None:
            self.fatal = fatal
        self._done.append(outcome)
        if holder:
            self._ended.append(holder)
        if outcome.error.startswith(IN_DOUBT):
            self.report.in_doubt += 1
        counts = {D.SENT: "sent", D.FAILED: "failed", D.DEFERRED: "deferred", D.UNKNOWN: "unknown"}
        if outcome.state in counts:
            name = counts[outcome.state]
            setattr(self.report, name, getattr(self.report, name) + 1)
        if outcome.state is D.FAILED:
            self.db(
                self.store.suppress,
                outcome.email,
                reason=f"hard bounce: {outcome.error}",
                now=self.clock(),
                kind=SubscriberState.BOUNCED,
            )

    def _drain(self) -> None:
        """Stopping: rows not yet handed to a connection go back to pending, claimed rows
        back to the queue; what is on the wire is finished and recorded."""
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                row, _, holder = item
                self._take((self._unsent(row, self.report.stopped), holder, None))
        while self.inflight > 0:
            self._collect(timeout=None)
        self._commit([])
        left = [r.subscriber.email for r in self.buffer]
        self.db(self.ledger.release, self.edition_id, self.token, left)
        self.buffer.clear()

    def _unsent(self, row: Row, why: str) -> Outcome:
        return untried(row, self.s.options, self.clock(), why)

    def _next_pass(self) -> bool:
        """Whether to go on: rows left in doubt by dead workers, or a row that comes due
        within the run's retry window (waited for here)."""
        s, now = self.s, self.clock()
        deadline = now - timedelta(hours=s.options.retry_deadline_hours)
        self.report.failed += self.db(
            expire_retries, self.ledger, self.edition_id, first_attempt_before=deadline, now=now
        )
        self._empty = False
        if self._recover():
            return True
        due = self._due()
        if due is None:
            return False
        remaining = (due - self.clock()).total_seconds()
        if remaining <= 0:
            s.sleep(0.05)  # another worker is claiming them right now
            return True
        if not s.wait_for_retries:
            return False
        while remaining > 0:
            if self._halted():
                return False
            step = min(STEP, remaining)
            s.sleep(step)
            remaining -= step
        self._floor = max(due, self.clock())
        return True

    def _recover(self) -> int:
        """Rows dead workers left in flight: in doubt, resent or recorded as unknown."""
        resend = self.s.options.in_doubt == "resend"
        if self.s.journal is not None:  # first what their journals tell (delivery.journal)
            live, now = self.heartbeat.live(), self.clock()
            self.db(settle, self.ledger, self.s.journal, self.edition_id, now=now, live=live)
        found = self.db(
            self.ledger.recover_in_doubt,
            self.edition_id,
            resend=resend,
            now=self.clock(),
            live=self.heartbeat.live(),
        )
        self.report.in_doubt += found
        self.report.unknown += 0 if resend else found
        return found

    def _due(self) -> datetime | None:
        """The next row worth waiting for: a pending one (a throttled domain, a wave) due
        within ``retry_in_run_seconds`` from now, or a retry due within that long of the
        run's start; None when the rest is left to a later run (or another worker)."""
        window = timedelta(seconds=self.s.options.retry_in_run_seconds)
        now = self.clock()
        found = self.db(self.ledger.next_due, self.edition_id, live=self.heartbeat.live())
        if not found:
            return None
        due = worth_waiting(found, now=now, started=self.started, window=window)
        self.left_for_later = due is None
        return due

    # connections ---------------------------------------------------------------------------

    def _open(self, backend: Backend) -> None:
        try:
            backend.open()
        except TemporaryFailure as exc:  # a deferral for this connection: its first send
            self.breaker.record(host_of(backend), exc)  # retries and defers
        except BackendError as exc:
            self.fatal = exc

    def _connection(self, backend: Backend) -> None:
        self._open(backend)
        pause = 0.0
        try:
            while True:
                item = self.work.get()
                if item is None:
                    return
                taken: deque[Item] = deque()
                closing = self._chain(backend, item, taken)
                for row, _, holder in taken:  # taken but not sent: back to the queue
                    back = self._unsent(row, self.breaker.blocked(host_of(backend)))
                    self._note(REFUSED, back.email)
                    self.results.put((back, holder, None))
                if closing:
                    return
                # A connection that cannot reach the server waits before its next try, so
                # one dead connection does not defer every row; the others go on.
                if not backend.connected:
                    pause = min(max(pause * 2, 0.5), 5.0)
                    self.s.stop.wait(pause)
                else:
                    pause = 0.0
        finally:
            backend.close()

    def _chain(self, backend: Backend, first: Item, taken: deque[Item]) -> bool:
        """Send ``first`` and whatever is queued when the backend is ready for the next
        (SMTP pipelines each message's commands behind the one before); True if the queue
        said stop. Rows the backend took and did not send are left in ``taken``."""
        closing, host = False, host_of(backend)

        def envelopes() -> Iterator[Envelope]:
            nonlocal closing
            item: Item | None = first
            while item is not None:
                if self.fatal is not None:
                    row, _, holder = item
                    self.results.put(
                        (Outcome(row.subscriber.email, D.PENDING, str(self.fatal)), holder, None)
                    )
                elif why := self.breaker.blocked(host):
                    self.results.put((self._unsent(item[0], why), item[2], None))
                else:
                    taken.append(item)
                    self._note(HANDED, item[0].subscriber.email)
                    yield item[1]
                try:
                    item = self.work.get_nowait()
                except queue.Empty:
                    return
                closing = item is None

        for failure in backend.send_each(envelopes()):
            row, sent, holder = taken.popleft()
            self.breaker.record(host, failure)
            provider_id = backend.provider_id(sent) if failure is None else ""
            result = self._outcome(row, holder, failure, provider_id)
            self.results.put(result)
            if result[2] is not None:
                break  # the backend as a whole failed: nothing more goes out
        return closing

    def _deliver(
        self, backend: Backend, row: Row, envelope: Envelope, holder: str
    ) -> tuple[Outcome, str, BaseException | None]:
        self._note(HANDED, row.subscriber.email)
        try:
            backend.send(envelope)
        except BackendError as exc:
            self.breaker.record(host_of(backend), exc)
            return self._outcome(row, holder, exc)
        self.breaker.record(host_of(backend), None)
        return self._outcome(row, holder, None, backend.provider_id(envelope))

    def _note(self, kind: str, email: str) -> None:
        if self.journal is not None:
            self.journal.write(kind, email)

    def _outcome(
        self, row: Row, holder: str, failure: BackendError | None, provider_id: str = ""
    ) -> tuple[Outcome, str, BaseException | None]:
        outcome, fatal = answer(row, failure, self.s.options, self.clock(), provider_id)
        if outcome.state is D.SENT:
            self._note(SENT, outcome.email)
        elif outcome.state is not D.UNKNOWN and not outcome.error.startswith(IN_DOUBT):
            self._note(REFUSED, outcome.email)  # answered, or never went out
        return outcome, holder, fatal
