"""The delivery ledger as a work queue, on SQLite and PostgreSQL: freeze, claim, fence, recover."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.models import DeliveryState, RenderedEdition, Story, Subscriber, SubscriberState
from digest.store import Revision, Store
from digest.store.lateness import expire_retries
from digest.store.ledger import Ledger, Mark, Outcome
from digest.store.subscribers import Receiving, SubscriberStore
from digest.store.tables import stamp

D = DeliveryState
S = SubscriberState
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
STORY = Story(url="https://n.example/a", title="A", teaser="", source="Desk", published=NOW)
# One instant for the workers' heartbeats and for "who is alive": tests may run long after
# this module is imported (xdist collects first).
LIVE_AT = datetime.now(UTC)
LIVE = stamp(LIVE_AT)


@pytest.fixture
def store(tmp_path: Path, state_url: str) -> Iterator[Store]:
    store = Store(url=state_url) if state_url else Store(tmp_path / "state.db")
    yield store
    store.close()


def _edition(store: Store) -> int:
    rendered = RenderedEdition(subject="s", preheader="p", html="<p>h</p>", text="t\n")
    with store.transaction() as tx:
        return tx.insert_edition(
            slot="s", revision=Revision([STORY], rendered, []), now=NOW, warnings=[]
        )


def _people(n: int) -> list[Subscriber]:
    return [Subscriber(f"r{i}@example.org", f"R {i}", "", ("World",)) for i in range(n)]


def _ledger(store: Store, n: int = 5) -> tuple[Ledger, int]:
    edition_id = _edition(store)
    ledger = Ledger(store)
    assert ledger.populate(edition_id, _people(n), now=NOW) == n
    return ledger, edition_id


def _worker(ledger: Ledger, token: str, *, alive: bool = True) -> str:
    real = LIVE_AT
    until = real + (timedelta(minutes=5) if alive else -timedelta(minutes=5))
    ledger.register(token, host="test", pid=1, now=real, until=until)
    return token


def _states(store: Store, edition: int) -> dict[str, str]:
    return {r["email"]: r["state"] for r in store.delivery_rows(edition)}


def test_freezing_is_idempotent(store: Store) -> None:
    ledger, edition = _ledger(store)
    assert ledger.frozen(edition)
    assert ledger.populate(edition, [Subscriber("r0@example.org")], now=NOW) == 0
    assert store.delivery_counts(edition) == {"pending": 5}
    ledger.close()


def test_an_interrupted_freeze_resumes_without_duplicates(store: Store) -> None:
    edition = _edition(store)
    ledger = Ledger(store)

    def crashing() -> Iterator[Subscriber]:
        yield from _people(7)
        raise RuntimeError("disk pulled")

    with pytest.raises(RuntimeError):
        ledger.populate(edition, crashing(), now=NOW, chunk=3)
    assert not ledger.frozen(edition)  # the marker says: not complete
    assert store.delivery_counts(edition) == {"pending": 6}  # two committed chunks
    assert ledger.populate(edition, _people(10), now=NOW, chunk=3) == 4
    assert ledger.frozen(edition)
    assert store.delivery_counts(edition) == {"pending": 10}
    ledger.close()


def test_workers_claim_disjoint_rows(store: Store) -> None:
    ledger, edition = _ledger(store, 6)
    a, b = _worker(ledger, "a"), _worker(ledger, "b")
    first = ledger.claim(edition, a, now=NOW, live=LIVE, limit=4)
    second = ledger.claim(edition, b, now=NOW, live=LIVE, limit=4)
    assert len(first) == 4
    assert len(second) == 2
    assert not {r.subscriber.email for r in first} & {r.subscriber.email for r in second}
    assert first[0].subscriber.topics == ("World",)
    assert ledger.claim(edition, b, now=NOW, live=LIVE, limit=4) == []
    ledger.close()


def test_a_dead_workers_claims_return_to_the_queue(store: Store) -> None:
    ledger, edition = _ledger(store, 3)
    dead = _worker(ledger, "dead", alive=False)
    assert len(ledger.claim(edition, dead, now=NOW, live=LIVE, limit=3)) == 3
    live = _worker(ledger, "live")
    assert len(ledger.claim(edition, live, now=NOW, live=LIVE, limit=3)) == 3
    ledger.close()


def test_outcomes_and_marks_are_fenced_by_the_claim(store: Store) -> None:
    ledger, edition = _ledger(store, 2)
    stalled = _worker(ledger, "stalled")
    rows = ledger.claim(edition, stalled, now=NOW, live=LIVE, limit=2)
    assert len(rows) == 2
    # The stalled worker's heartbeat lapses; another worker takes its rows over.
    ledger.reap(["stalled"])
    other = _worker(ledger, "other")
    assert len(ledger.claim(edition, other, now=NOW, live=LIVE, limit=2)) == 2
    marks = [Mark(r.subscriber.email, f"<{i}@x>", "h") for i, r in enumerate(rows)]
    assert (
        ledger.commit(edition, stalled, outcomes=[], in_flight=marks, now=NOW, live=LIVE) == set()
    )
    marked = ledger.commit(edition, other, outcomes=[], in_flight=marks, now=NOW, live=LIVE)
    assert marked == {"r0@example.org", "r1@example.org"}
    done = [Outcome("r0@example.org", D.SENT)]
    ledger.commit(edition, stalled, outcomes=done, in_flight=[], now=NOW, live=LIVE)
    assert _states(store, edition)["r0@example.org"] == "in_flight"  # not overwritten
    ledger.commit(edition, other, outcomes=done, in_flight=[], now=NOW, live=LIVE)
    row = {r["email"]: r for r in store.delivery_rows(edition)}["r0@example.org"]
    assert (row["state"], row["message_id"], row["attempts"], row["claim"]) == (
        "sent",
        "<0@x>",
        1,
        "",
    )
    assert row["sent_at"] == NOW
    ledger.close()


def test_a_commit_run_again_after_a_lost_answer_changes_nothing(store: Store) -> None:
    """A database blip can end the connection after the commit but before its answer; the
    worker runs the whole commit again and must get the same rows back as marked."""
    ledger, edition = _ledger(store, 3)
    token = _worker(ledger, "w")
    rows = ledger.claim(edition, token, now=NOW, live=LIVE, limit=3)
    marks = [Mark(r.subscriber.email, f"<{i}@x>", "h") for i, r in enumerate(rows)]
    first = ledger.commit(edition, token, outcomes=[], in_flight=marks, now=NOW, live=LIVE)
    again = ledger.commit(edition, token, outcomes=[], in_flight=marks, now=NOW, live=LIVE)
    assert first == again == {r.subscriber.email for r in rows}
    done = [Outcome(rows[0].subscriber.email, D.SENT)]
    ledger.commit(edition, token, outcomes=done, in_flight=[], now=NOW, live=LIVE)
    ledger.commit(edition, token, outcomes=done, in_flight=[], now=NOW, live=LIVE)
    assert list(_states(store, edition).values()).count("sent") == 1
    # Sent and recorded (its claim cleared), the row is never marked in flight again.
    assert (
        ledger.commit(edition, token, outcomes=[], in_flight=marks[:1], now=NOW, live=LIVE) == set()
    )
    assert _states(store, edition)[rows[0].subscriber.email] == "sent"
    # Another worker's rows are not this worker's, whatever Message-ID it names.
    assert (
        ledger.commit(edition, "other", outcomes=[], in_flight=marks[1:], now=NOW, live=LIVE)
        == set()
    )
    ledger.close()


def test_an_unsubscribe_after_the_claim_is_honoured_before_the_wire(store: Store) -> None:
    ledger, edition = _ledger(store, 2)
    me = _worker(ledger, "me")
    rows = ledger.claim(edition, me, now=NOW, live=LIVE, limit=2)
    assert not any(r.suppressed for r in rows)
    store.suppress("R1@Example.org", reason="unsubscribed", now=NOW)
    marks = [Mark(r.subscriber.email, "<m@x>", "h") for r in rows]
    assert ledger.commit(edition, me, outcomes=[], in_flight=marks, now=NOW, live=LIVE) == {
        "r0@example.org"
    }
    assert _states(store, edition) == {"r0@example.org": "in_flight", "r1@example.org": "skipped"}
    ledger.close()


def test_in_doubt_rows_keep_their_message_id_or_become_unknown(store: Store) -> None:
    ledger, edition = _ledger(store, 2)
    gone = _worker(ledger, "gone")
    rows = ledger.claim(edition, gone, now=NOW, live=LIVE, limit=2)
    marks = [Mark(r.subscriber.email, f"<{r.subscriber.email}>", "h") for r in rows]
    ledger.commit(edition, gone, outcomes=[], in_flight=marks, now=NOW, live=LIVE)
    assert ledger.recover_in_doubt(edition, resend=True, now=NOW, live=LIVE) == 0  # still alive
    ledger.reap(["gone"])
    assert ledger.recover_in_doubt(edition, resend=True, now=NOW, live=LIVE) == 2
    again = ledger.claim(edition, _worker(ledger, "next"), now=NOW, live=LIVE, limit=2)
    assert {r.message_id for r in again} == {"<r0@example.org>", "<r1@example.org>"}
    ledger.close()


def test_in_doubt_rows_are_marked_unknown_under_skip(store: Store) -> None:
    ledger, edition = _ledger(store, 1)
    ledger.reap([])
    gone = _worker(ledger, "gone", alive=False)
    ledger.claim(
        edition, gone, now=NOW, live=stamp(datetime.now(UTC) - timedelta(hours=1)), limit=1
    )
    with store.transaction() as tx:  # an in-flight row of a crashed worker
        tx.conn.exec_driver_sql("UPDATE deliveries SET state = 'in_flight'")
    assert ledger.recover_in_doubt(edition, resend=False, now=NOW, live=LIVE) == 1
    assert store.delivery_counts(edition) == {"unknown": 1}
    ledger.close()


def test_deferred_rows_come_due_then_expire(store: Store) -> None:
    ledger, edition = _ledger(store, 1)
    me = _worker(ledger, "me")
    later = NOW + timedelta(minutes=5)
    ledger.claim(edition, me, now=NOW, live=LIVE, limit=1)
    ledger.commit(
        edition,
        me,
        outcomes=[],
        in_flight=[Mark("r0@example.org", "<1@x>", "h")],
        now=NOW,
        live=LIVE,
    )
    deferred = [Outcome("r0@example.org", D.DEFERRED, "451", later)]
    ledger.commit(edition, me, outcomes=deferred, in_flight=[], now=NOW, live=LIVE)
    assert ledger.claim(edition, me, now=NOW, live=LIVE, limit=1) == []
    assert ledger.next_due_at(edition) == later
    assert [r.subscriber.email for r in ledger.claim(edition, me, now=later, live=LIVE, limit=1)]
    late = NOW + timedelta(hours=1)
    assert expire_retries(ledger, edition, first_attempt_before=late, now=later) == 1
    assert store.delivery_counts(edition) == {"failed": 1}
    assert ledger.next_due_at(edition) is None
    ledger.close()


def test_stale_untried_rows_are_skipped(store: Store) -> None:
    edition = _edition(store)
    ledger = Ledger(store)
    ledger.populate(
        edition,
        [Subscriber("a@example.org", timezone="UTC"), Subscriber("b@example.org")],
        now=NOW,
        not_before=lambda zone: NOW if zone == "UTC" else NOW + timedelta(days=1),
    )
    assert ledger.skip_stale(edition, due_before=NOW + timedelta(hours=1), now=NOW) == 1
    assert store.delivery_counts(edition) == {"pending": 1, "skipped": 1}
    ledger.close()


def _readers(store: Store) -> None:
    """Seven readers in every state the freeze must tell apart."""
    listed = SubscriberStore(store)
    people = [
        ("a@example.org", "Ada", "Europe/Berlin", ("World",), S.ACTIVE, None),
        ("B@Example.org", "Bo", "", (), S.ACTIVE, None),
        ("c@example.org", "Cy", "America/New_York", ("Sport", "World"), S.ACTIVE, None),
        ("d@example.org", "Di", "Europe/Berlin", (), S.PAUSED, NOW - timedelta(days=1)),
        ("e@example.org", "Ed", "", (), S.PAUSED, NOW + timedelta(days=1)),
        ("f@example.org", "Fa", "", (), S.UNSUBSCRIBED, None),
        ("g@example.org", "Gu", "Asia/Tokyo", (), S.ACTIVE, None),
    ]
    for email, name, zone, topics, state, until in people:
        key = listed.create(
            Subscriber(email, name, zone, topics), state=state, source="cli", now=NOW
        )
        if until is not None:
            listed.change(key, now=NOW, paused_until=until)


def _frozen(store: Store, edition: int) -> list[tuple[object, ...]]:
    keep = ("email", "name", "timezone", "topics", "state", "next_attempt_at", "updated_at")
    return [tuple(r[k] for k in keep) for r in store.delivery_rows(edition)]


@pytest.mark.parametrize("waves", [False, True])
def test_the_stores_readers_are_frozen_inside_the_database(store: Store, waves: bool) -> None:
    _readers(store)
    receiving = SubscriberStore(store).receiving(now=NOW)
    zones = {"Europe/Berlin": NOW, "America/New_York": NOW + timedelta(hours=6)}

    def due(zone: str) -> datetime:
        return zones.get(zone, NOW + timedelta(hours=1))

    class Unread(Receiving):
        def __iter__(self) -> Iterator[Subscriber]:
            raise AssertionError("the readers were read out of the database")

    ledger = Ledger(store)
    by_sql, by_rows = _edition(store), _edition(store)
    # Chunks of two keys: several ranges per state, one of them empty at the end.
    unread = Unread(receiving.readers, receiving.now)
    assert ledger.populate(by_sql, unread, now=NOW, not_before=due if waves else None, chunk=2) == 5
    assert (
        ledger.populate(
            by_rows, list(receiving), now=NOW, not_before=due if waves else None, chunk=2
        )
        == 5
    )
    assert _frozen(store, by_sql) == _frozen(store, by_rows)
    rows = {r["email"]: r for r in store.delivery_rows(by_sql)}
    assert sorted(rows) == [
        "B@Example.org",
        "a@example.org",
        "c@example.org",
        "d@example.org",
        "g@example.org",
    ]
    assert rows["c@example.org"]["topics"] == '["Sport", "World"]'
    if waves:
        assert rows["c@example.org"]["next_attempt_at"] == NOW + timedelta(hours=6)
        assert rows["g@example.org"]["next_attempt_at"] == NOW + timedelta(hours=1)
    else:
        assert {r["next_attempt_at"] for r in rows.values()} == {None}  # due at once
    assert ledger.frozen(by_sql)
    assert store.delivery_counts(by_sql) == {"pending": 5}
    ledger.close()


def test_a_freeze_cut_short_is_finished_by_the_copy_without_duplicates(store: Store) -> None:
    _readers(store)
    receiving = SubscriberStore(store).receiving(now=NOW)
    edition = _edition(store)
    ledger = Ledger(store)

    def crashing() -> Iterator[Subscriber]:
        yield from list(receiving)[:3]
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        ledger.populate(edition, crashing(), now=NOW, chunk=2)
    assert store.delivery_counts(edition) == {"pending": 2}
    assert ledger.populate(edition, receiving, now=NOW, chunk=2) == 3
    assert store.delivery_counts(edition) == {"pending": 5}
    assert len(store.delivery_rows(edition)) == 5
    ledger.close()
