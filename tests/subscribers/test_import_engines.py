"""`subscribers import` over several chunks on SQLite and PostgreSQL: the bulk statements
(arrays and one statement a chunk on PostgreSQL) keep every rule of the row-by-row ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.exceptions import ConfigError
from digest.models import Subscriber, SubscriberState
from digest.store import Store
from digest.store.subscribers import SubscriberStore
from digest.store.tables import consents, subscribers
from digest.subscribers.manage import erase
from digest.subscribers.sync import CHUNK, import_file

NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)
READERS = CHUNK * 2 + 500  # three chunks


@pytest.fixture
def store(tmp_path: Path, state_url: str) -> Iterator[Store]:
    store = Store(url=state_url) if state_url else Store(tmp_path / "state.db")
    yield store
    store.close()


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("email,name,timezone,topics\n" + "".join(f"{x}\n" for x in lines))
    return path


def _reader(i: int, name: str = "") -> str:
    return f"Reader{i:05d}@Example.org,{name or f'Reader {i}'},Europe/Berlin,World;Technology"


def test_three_chunks_import_with_exact_counts_consents_and_opt_outs(
    store: Store, tmp_path: Path
) -> None:
    readers = SubscriberStore(store)
    old = Subscriber("reader01200@example.org", "Old Name", "", ())
    readers.create(old, state=SubscriberState.ACTIVE, source="cli", now=NOW)
    store.suppress("reader00007@example.org", reason="unsubscribed", now=NOW)
    readers.create(
        Subscriber("reader02300@example.org", "Gone", "", ()),
        state=SubscriberState.ACTIVE,
        source="cli",
        now=NOW,
    )
    erase(store, "reader02300@example.org", now=NOW)
    path = _csv(tmp_path / "readers.csv", [_reader(i) for i in range(READERS)])

    report = import_file(store, path, now=NOW)

    assert (report.read, report.added, report.updated, report.blocked) == (
        READERS,
        READERS - 3,
        1,
        2,
    )
    changed = readers.get("reader01200@example.org")
    assert changed is not None
    assert changed.name == "Reader 1200"
    assert changed.topics == ("World", "Technology")
    assert readers.get("reader00007@example.org") is None
    assert readers.get("reader02300@example.org") is None
    added = readers.get("reader02499@example.org")
    assert added is not None
    assert added.state is SubscriberState.ACTIVE
    assert added.email == "Reader02499@Example.org"
    with store.reading() as conn:
        imported = select(subscribers.c.id).where(subscribers.c.source == "import")
        per_reader = (
            select(consents.c.subscriber_id, func.count().label("n"))
            .where(consents.c.method == "import")
            .group_by(consents.c.subscriber_id)
            .subquery()
        )
        assert conn.execute(select(func.count()).select_from(imported.subquery())).scalar() == (
            READERS - 3
        )
        counts = conn.execute(select(per_reader.c.n, func.count()).group_by(per_reader.c.n))
        assert dict(counts.all()) == {1: READERS - 3}  # one consent row per new reader


def test_a_duplicate_two_chunks_later_names_both_lines_and_imports_nothing(
    store: Store, tmp_path: Path
) -> None:
    lines = [_reader(i) for i in range(READERS)]
    lines[READERS - 1] = _reader(5, name="Again")
    path = _csv(tmp_path / "readers.csv", lines)

    with pytest.raises(ConfigError) as caught:
        import_file(store, path, now=NOW)

    assert str(caught.value) == (
        f"{path}:{READERS + 1}: duplicate subscriber reader00005@example.org (first at line 7)"
    )
    assert SubscriberStore(store).counts() == {}


def test_importing_the_same_file_again_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = _csv(tmp_path / "readers.csv", [_reader(i) for i in range(READERS)])
    import_file(store, path, now=NOW)

    again = import_file(store, path, now=NOW)

    assert (again.added, again.updated, again.unchanged) == (0, 0, READERS)
