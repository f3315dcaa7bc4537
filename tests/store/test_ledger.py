"""The delivery ledger on a real SQLite file: freeze, due rows, marks, outcomes, recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.models import DeliveryState, RenderedEdition, Story, Subscriber
from digest.store import Revision, Store
from digest.store.ledger import Ledger, Mark, Outcome

D = DeliveryState
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
STORY = Story(url="https://n.example/a", title="A", teaser="", source="Desk", published=NOW)


def _ledger(tmp_path: Path, n: int = 5) -> tuple[Store, Ledger, int]:
    store = Store(tmp_path / "state.db")
    rendered = RenderedEdition(subject="s", preheader="p", html="<p>h</p>", text="t\n")
    with store.transaction() as tx:
        edition_id = tx.insert_edition(
            slot="s", revision=Revision([STORY], rendered, []), now=NOW, warnings=[]
        )
    ledger = Ledger(store)
    people = [Subscriber(f"r{i}@example.org", f"R {i}", "", ("World",)) for i in range(n)]
    assert ledger.populate(edition_id, people, now=NOW) == n
    return store, ledger, edition_id


def test_freezing_is_idempotent(tmp_path: Path) -> None:
    store, ledger, edition = _ledger(tmp_path)
    assert ledger.frozen(edition)
    assert ledger.populate(edition, [Subscriber("r0@example.org")], now=NOW) == 0
    assert store.delivery_counts(edition) == {"pending": 5}
    store.close()


def test_due_rows_carry_the_subscriber_and_suppression(tmp_path: Path) -> None:
    store, ledger, edition = _ledger(tmp_path, 3)
    store.suppress("R1@example.org", reason="unsubscribed", now=NOW)
    rows = list(ledger.due(edition, now=NOW))
    assert [r.subscriber.email for r in rows] == [
        "r0@example.org",
        "r1@example.org",
        "r2@example.org",
    ]
    assert [r.suppressed for r in rows] == [False, True, False]
    assert rows[0].subscriber.topics == ("World",)
    store.close()


def test_marks_record_message_id_and_variant_hash_before_the_wire(tmp_path: Path) -> None:
    store, ledger, edition = _ledger(tmp_path, 2)
    ledger.commit(edition, outcomes=[], in_flight=[Mark("r0@example.org", "<1@x>", "abc")], now=NOW)
    ledger.close()
    row = {r["email"]: r for r in store.delivery_rows(edition)}["r0@example.org"]
    assert (row["state"], row["message_id"], row["variant_hash"], row["attempts"]) == (
        "in_flight",
        "<1@x>",
        "abc",
        1,
    )
    assert row["first_attempt_at"] == NOW
    ledger.record(edition, [Outcome("r0@example.org", D.SENT)], now=NOW + timedelta(seconds=1))
    ledger.close()
    row = {r["email"]: r for r in store.delivery_rows(edition)}["r0@example.org"]
    assert (row["state"], row["sent_at"]) == ("sent", NOW + timedelta(seconds=1))
    store.close()


def test_in_doubt_rows_are_resent_or_marked_unknown(tmp_path: Path) -> None:
    store, ledger, edition = _ledger(tmp_path, 2)
    ledger.commit(edition, outcomes=[], in_flight=[Mark("r0@example.org", "<1@x>", "h")], now=NOW)
    ledger.close()
    assert ledger.recover_in_doubt(edition, resend=False, now=NOW) == 1
    assert store.delivery_counts(edition) == {"pending": 1, "unknown": 1}
    store.close()


def test_deferred_rows_come_due_then_expire(tmp_path: Path) -> None:
    store, ledger, edition = _ledger(tmp_path, 1)
    later = NOW + timedelta(minutes=5)
    ledger.commit(edition, outcomes=[], in_flight=[Mark("r0@example.org", "<1@x>", "h")], now=NOW)
    ledger.record(edition, [Outcome("r0@example.org", D.DEFERRED, "451", later)], now=NOW)
    ledger.close()
    assert list(ledger.due(edition, now=NOW)) == []
    assert ledger.next_due_at(edition) == later
    assert [r.subscriber.email for r in ledger.due(edition, now=later)] == ["r0@example.org"]
    assert ledger.expire(edition, first_attempt_before=NOW + timedelta(hours=1), now=later) == 1
    assert store.delivery_counts(edition) == {"failed": 1}
    assert ledger.next_due_at(edition) is None
    store.close()


def test_stale_untried_rows_are_skipped(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    rendered = RenderedEdition(subject="s", preheader="p", html="<p>h</p>", text="t\n")
    with store.transaction() as tx:
        edition = tx.insert_edition(
            slot="s", revision=Revision([STORY], rendered, []), now=NOW, warnings=[]
        )
    ledger = Ledger(store)
    ledger.populate(
        edition,
        [Subscriber("a@example.org"), Subscriber("b@example.org")],
        now=NOW,
        not_before=lambda s: NOW if s.email.startswith("a") else NOW + timedelta(days=1),
    )
    assert ledger.skip_stale(edition, due_before=NOW + timedelta(hours=1), now=NOW) == 1
    assert store.delivery_counts(edition) == {"pending": 1, "skipped": 1}
    store.close()
