"""Retention: `digest prune` keeps counts, deletes old ledgers and shrinks the state file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from digest.approval import move
from digest.models import EditionState, RenderedEdition, Story, Subscriber
from digest.store import Revision, Store
from digest.store.ledger import Ledger
from digest.store.retention import Retention

from conftest import NOW, Project
from sending import project

__all__ = ["project"]
S = EditionState


def _sent_edition(store: Store, at: datetime, readers: int) -> int:
    story = Story(url="https://n.example/a", title="A", teaser="", source="Desk", published=at)
    rendered = RenderedEdition(subject="s", preheader="p", html="<p>h</p>" * 200, text="t\n")
    with store.transaction() as tx:
        edition_id = tx.insert_edition(
            slot=f"{at:%Y-%m-%d}", revision=Revision([story], rendered, []), now=at, warnings=[]
        )
    people = (Subscriber(f"reader{i:06d}@example.org", f"Reader {i}") for i in range(readers))
    ledger = Ledger(store)
    ledger.populate(edition_id, people, now=at)
    ledger.close()
    with store.transaction() as tx:  # everyone got it
        tx.conn.exec_driver_sql("UPDATE deliveries SET state = 'sent' WHERE state = 'pending'")
    edition = store.get_edition(edition_id)
    for state in (S.PENDING_APPROVAL, S.APPROVED, S.SENDING, S.SENT):
        edition = move(store, edition, state, actor="test", via="test", now=at)
    return edition_id


def test_prune_summarises_deletes_and_shrinks_the_state(project: Project) -> None:
    now = datetime.fromisoformat(NOW)
    store = project.open_store()
    old = [_sent_edition(store, now - timedelta(days=200 - i), 2000) for i in range(30)]
    recent = _sent_edition(store, now - timedelta(days=3), 2000)
    before = Retention(store).size()
    store.close()

    dry = project.cli("prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would prune 30 edition(s) older than 90 days" in dry.output
    result = project.cli("prune")
    assert result.exit_code == 0, result.output
    assert "pruned 30 edition(s)" in result.output
    assert "60000 delivery rows" in result.output

    store = project.open_store()
    after = Retention(store).size()
    assert store.delivery_rows(old[0]) == []
    assert len(store.delivery_rows(recent)) == 2000
    store.close()
    if not project.state_url:
        assert after < before / 3, (before, after)  # the file itself shrank
    # The counts outlive the rows: status shows them, without counting.
    status = json.loads(project.cli("status", str(old[0]), "--json").stdout)
    assert status["deliveries"] == {"sent": 2000}
    again = project.cli("prune")
    assert "pruned 0 edition(s)" in again.output
