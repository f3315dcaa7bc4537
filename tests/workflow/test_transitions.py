"""The edition lifecycle table, walked whole: every allowed move and every refused one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.approval import TRANSITIONS, apply, transition
from digest.exceptions import StateError
from digest.models import Edition, EditionState, RenderedEdition, Story
from digest.store import Revision, Store

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
S = EditionState
RENDERED = RenderedEdition(subject="s", preheader="p", html="<p>h</p>", text="t\n")
STORY = Story(url="https://n.example/a", title="A", teaser="", source="Desk", published=NOW)
MOVES = [(a, b) for a in S for b in S]


def edition(state: EditionState) -> Edition:
    return Edition(1, "2026-11-24T07:00", state, 1, (STORY,), RENDERED, NOW, "hash")


@pytest.mark.parametrize(("start", "to"), MOVES, ids=[f"{a}->{b}" for a, b in MOVES])
def test_each_move_is_allowed_exactly_when_the_table_says(start: S, to: S) -> None:
    if to in TRANSITIONS[start]:
        entry = transition(edition(start), to, actor="Rosa", via="test", now=NOW)
        assert (entry.from_state, entry.to_state, entry.actor) == (start, to, "Rosa")
        assert entry.content_hash == "hash"
    else:
        with pytest.raises(StateError, match=f"edition 1 is {start}"):
            transition(edition(start), to, actor="Rosa", via="test", now=NOW)


def test_final_states_have_no_way_out() -> None:
    for state in S:
        assert state.final == (TRANSITIONS[state] == frozenset())


def test_a_move_needs_an_actor() -> None:
    with pytest.raises(StateError, match="--by NAME"):
        transition(edition(S.PENDING_APPROVAL), S.APPROVED, actor=" ", via="test", now=NOW)


def _stored(tmp_path: Path) -> tuple[Store, Edition]:
    store = Store(tmp_path / "state.db")
    with store.transaction() as tx:
        edition_id = tx.insert_edition(
            slot="2026-11-24T07:00", revision=Revision([STORY], RENDERED, []), now=NOW, warnings=[]
        )
    return store, store.get_edition(edition_id)


def test_apply_writes_the_state_and_one_audit_row(tmp_path: Path) -> None:
    store, draft = _stored(tmp_path)
    with store.transaction() as tx:
        apply(tx, draft, S.PENDING_APPROVAL, actor="digest", via="build", now=NOW)
    assert store.get_edition(draft.id).state is S.PENDING_APPROVAL
    (row,) = store.audit_trail(draft.id)
    assert (row.from_state, row.to_state, row.via, row.at) == (
        S.DRAFT,
        S.PENDING_APPROVAL,
        "build",
        NOW,
    )
    store.close()


def test_apply_is_compare_and_set_so_a_stale_copy_changes_nothing(tmp_path: Path) -> None:
    store, draft = _stored(tmp_path)
    with store.transaction() as tx:
        apply(tx, draft, S.PENDING_APPROVAL, actor="digest", via="build", now=NOW)
    pending = store.get_edition(draft.id)
    with store.transaction() as tx:
        apply(tx, pending, S.REJECTED, actor="Sam", via="test", now=NOW, note="no")
    # Another process still holding the pending copy tries to approve: refused, nothing written.
    with pytest.raises(StateError, match="changed meanwhile"), store.transaction() as tx:
        apply(tx, pending, S.APPROVED, actor="Rosa", via="test", now=NOW)
    assert store.get_edition(draft.id).state is S.REJECTED
    assert [a.to_state for a in store.audit_trail(draft.id)] == [S.PENDING_APPROVAL, S.REJECTED]
    store.close()


def test_a_revision_replaces_content_and_bumps_the_revision(tmp_path: Path) -> None:
    store, draft = _stored(tmp_path)
    with store.transaction() as tx:
        apply(tx, draft, S.PENDING_APPROVAL, actor="digest", via="build", now=NOW)
    pending = store.get_edition(draft.id)
    new = RenderedEdition(subject="s2", preheader="p", html="<p>2</p>", text="2\n")
    with store.transaction() as tx:
        apply(
            tx,
            pending,
            S.PENDING_APPROVAL,
            actor="Rosa",
            via="web",
            now=NOW,
            note="revision 2",
            revision=Revision([STORY], new, []),
        )
    revised = store.get_edition(draft.id)
    assert (revised.revision, revised.rendered.subject) == (2, "s2")
    assert revised.content_hash == new.content_hash == store.audit_trail(draft.id)[-1].content_hash
    with pytest.raises(StateError, match="only a pending one"), store.transaction() as tx:
        apply(
            tx,
            revised,
            S.APPROVED,
            actor="Rosa",
            via="web",
            now=NOW,
            revision=Revision([STORY], new, []),
        )
    store.close()
