"""A reader's state is a column moved only along its table; a suppression's kind is stored."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.models import Subscriber, SubscriberState
from digest.reader_states import SUPPRESSION_KINDS, TRANSITIONS, allowed, strongest
from digest.store import Store
from digest.store.subscribers import SubscriberStore

from conftest import Project

S = SubscriberState
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_every_state_has_a_row_and_complained_is_final() -> None:
    assert set(TRANSITIONS) == set(SubscriberState)
    assert TRANSITIONS[S.COMPLAINED] == frozenset()
    assert not allowed(S.UNSUBSCRIBED, S.ACTIVE)  # a sync, an import or an editor
    assert allowed(S.UNSUBSCRIBED, S.ACTIVE, by_reader=True)  # the reader's double opt-in
    assert not allowed(S.COMPLAINED, S.UNSUBSCRIBED)


def test_a_suppression_is_only_strengthened() -> None:
    assert strongest(None, S.BOUNCED) is S.BOUNCED
    assert strongest(S.COMPLAINED, S.UNSUBSCRIBED) is S.COMPLAINED
    assert strongest(S.UNSUBSCRIBED, S.BOUNCED) is S.BOUNCED
    assert SUPPRESSION_KINDS[-1] is S.COMPLAINED
    with pytest.raises(ValueError, match="not a kind"):
        strongest(None, S.ACTIVE)


def test_the_state_comes_from_the_stored_kind_not_the_wording(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    subs = SubscriberStore(store)
    for email in ("a@example.org", "b@example.org"):
        subs.create(Subscriber(email), state=S.ACTIVE, source="cli", now=NOW)
    # Wording that once decided the state ("hard bounce ...") no longer does.
    store.suppress("a@example.org", reason="hard bounce? no: an editor's note", now=NOW)
    store.suppress("b@example.org", reason="550 5.1.1 user unknown", now=NOW, kind=S.BOUNCED)
    a, b = subs.get("a@example.org"), subs.get("b@example.org")
    assert a is not None
    assert a.state is S.UNSUBSCRIBED
    assert b is not None
    assert b.state is S.BOUNCED
    # A complaint after the bounce wins; an unsubscribe after the complaint changes nothing.
    store.suppress("b@example.org", reason="feedback loop", now=NOW, kind=S.COMPLAINED)
    subs.opt_out("b@example.org", reason="unsubscribed", now=NOW, consent=("u", "link", "", ""))
    b = subs.get("b@example.org")
    assert b is not None
    assert b.state is S.COMPLAINED
    assert subs.suppression("b@example.org") == "feedback loop"
    store.close()


def test_the_migration_writes_down_the_kind_old_reasons_meant(project: Project) -> None:
    Store(project.state).close()
    with sqlite3.connect(project.state) as db:
        db.executescript(
            "UPDATE alembic_version SET version_num = '0005';"
            "DROP INDEX deliveries_message;"
            "ALTER TABLE suppressions DROP COLUMN kind;"
            "DROP TABLE bounce_events;"  # 0009 and 0010 come after it too
            "DROP TABLE signup_queue;"
            "ALTER TABLE editions DROP COLUMN marker;"  # 0011
            "ALTER TABLE edition_variants DROP COLUMN marker;"
            "INSERT INTO suppressions (email, reason, at) VALUES"
            " ('x@example.org', 'hard bounce: 550 no such user', '2026-11-25T06:00:00+00:00'),"
            " ('y@example.org', 'complaint (feedback loop)', '2026-11-25T06:00:00+00:00'),"
            " ('z@example.org', 'unsubscribed', '2026-11-25T06:00:00+00:00');"
        )
    result = project.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(project.state) as db:
        kinds = dict(db.execute("SELECT email, kind FROM suppressions").fetchall())
        index = db.execute("SELECT name FROM sqlite_master WHERE name = 'deliveries_message'")
        assert index.fetchone() is not None
    assert kinds == {
        "x@example.org": "bounced",
        "y@example.org": "complained",
        "z@example.org": "unsubscribed",
    }
