"""The sync rules: the subscriber file into the state database, mirror or add, and what
neither may ever do (make an opted-out or erased address active again)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection

from digest.exceptions import ConfigError, DigestError
from digest.models import Subscriber, SubscriberState
from digest.store import Store
from digest.store.subscribers import SubscriberStore
from digest.subscribers.manage import add, erase
from digest.subscribers.sync import import_file, sync_file
from digest.testing.postgres import PostgresCluster

from conftest import Project

S = SubscriberState
NOW = datetime(2026, 11, 24, 6, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def write(path: Path, *emails: str, topics: str = "") -> Path:
    rows = "".join(f"{e},Reader {e[0].upper()},,{topics}\n" for e in emails)
    path.write_text("email,name,timezone,topics\n" + rows, encoding="utf-8")
    return path


def states(store: Store) -> dict[str, str]:
    return {r.email: str(r.state) for r in SubscriberStore(store).listing()}


def opt_out(store: Store, email: str, how: str) -> None:
    """Each way an address leaves: the link, a hard bounce, a complaint, an erasure."""
    subs = SubscriberStore(store)
    if how == "unsubscribed":
        subs.opt_out(email, reason="unsubscribed", now=NOW, consent=("unsubscribe", "link", "", ""))
    elif how == "bounced":
        store.suppress(
            email, reason="hard bounce: 550 no such user", now=NOW, kind=SubscriberState.BOUNCED
        )
    elif how == "complained":
        store.suppress(
            email, reason="complaint (feedback loop)", now=NOW, kind=SubscriberState.COMPLAINED
        )
    else:
        erase(store, email, now=NOW)


@pytest.mark.parametrize("mode", ["mirror", "add"])
@pytest.mark.parametrize("how", ["unsubscribed", "bounced", "complained", "erased"])
def test_no_sync_ever_resubscribes_an_address_that_left(
    store: Store, tmp_path: Path, mode: str, how: str
) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org", "ben@example.net")
    sync_file(store, path, mode=mode, now=NOW)
    opt_out(store, "Ben@Example.net", how)
    # The editor's file still lists Ben, as it was, with a new entry, with his entry edited.
    ben = "ben@example.net,Reader B,,\n"
    for entries in (ben, ben + "carl@example.org,Carl,,\n", "ben@example.net,Ben,,World\n"):
        path.write_text("email,name,timezone,topics\nanna@example.org,Anna,,\n" + entries)
        report = sync_file(store, path, mode=mode, now=NOW, force=True)
        assert report.blocked == 1
        receiving = [s.email for s in SubscriberStore(store).receiving(now=NOW)]
        assert "ben@example.net" not in receiving
    expected = {
        "unsubscribed": "unsubscribed",
        "bounced": "bounced",
        "complained": "complained",
        "erased": None,
    }[how]
    assert states(store).get("ben@example.net") == expected
    # An import of the same file, and an editor's add, leave it alone too.
    assert import_file(store, path, now=NOW).blocked == 1
    with pytest.raises(DigestError, match="only the reader can subscribe again"):
        add(store, "ben@example.net", name="Ben", topics=None, timezone=None, now=NOW)
    assert "ben@example.net" not in [s.email for s in SubscriberStore(store).receiving(now=NOW)]
    assert states(store).get("ben@example.net") == expected


def test_mirror_makes_the_file_the_list(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org", "ben@example.net")
    sync_file(store, path, mode="mirror", now=NOW)
    SubscriberStore(store).create(
        Subscriber("web@example.com"), state=S.ACTIVE, source="web", now=NOW
    )
    write(path, "anna@example.org")
    report = sync_file(store, path, mode="mirror", now=NOW)
    assert report.removed == 2
    assert states(store) == {
        "anna@example.org": "active",
        "ben@example.net": "removed",
        "web@example.com": "removed",
    }
    write(path, "anna@example.org", "ben@example.net")  # back in the file: back on the list
    report = sync_file(store, path, mode="mirror", now=NOW)
    assert report.reactivated == 1
    assert states(store)["ben@example.net"] == "active"


def test_add_keeps_web_sign_ups_and_readers_who_left_the_file(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org", "ben@example.net")
    sync_file(store, path, mode="add", now=NOW)
    SubscriberStore(store).create(
        Subscriber("web@example.com"), state=S.ACTIVE, source="web", now=NOW
    )
    write(path, "anna@example.org", "carl@example.org")
    report = sync_file(store, path, mode="add", now=NOW)
    assert (report.added, report.removed) == (1, 0)
    assert set(states(store).values()) == {"active"}
    assert len(states(store)) == 4


def test_a_readers_own_choice_survives_until_the_editor_changes_their_entry(
    store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org", topics="World")
    sync_file(store, path, mode="mirror", now=NOW)
    subs = SubscriberStore(store)
    anna = subs.get("anna@example.org")
    assert anna is not None
    subs.change(anna.id, now=NOW, topics=("Technology",))  # her preference page
    sync_file(store, path, mode="mirror", now=NOW, force=True)  # entry unchanged
    assert subs.get("anna@example.org").topics == ("Technology",)  # type: ignore[union-attr]
    write(path, "anna@example.org", topics="Culture")  # the editor edits her entry
    report = sync_file(store, path, mode="mirror", now=NOW)
    assert report.updated == 1
    assert subs.get("anna@example.org").topics == ("Culture",)  # type: ignore[union-attr]


def test_an_unchanged_file_is_not_read_again(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org")
    assert not sync_file(store, path, mode="mirror", now=NOW).file_unchanged
    again = sync_file(store, path, mode="mirror", now=NOW)
    assert again.file_unchanged
    assert again.read == 0
    assert "unchanged since the last sync" in again.summary()


def test_a_bad_entry_changes_nothing_and_names_its_line(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org")
    sync_file(store, path, mode="mirror", now=NOW)
    rows = "".join(f"reader{i}@example.org,,,\n" for i in range(2500))
    path.write_text(path.read_text() + rows + "reader7@example.org,Again,,\n")
    with pytest.raises(
        ConfigError,
        match=r"subs\.csv:2503: duplicate subscriber "
        r"reader7@example\.org \(first at line 10\)",
    ):
        sync_file(store, path, mode="mirror", now=NOW)
    assert states(store) == {"anna@example.org": "active"}  # nothing half-applied
    path.write_text(path.read_text().replace("reader7@example.org,Again,,\n", "not-an-address\n"))
    with pytest.raises(ConfigError, match=r"subs\.csv:2503: entry 2502: invalid email address"):
        sync_file(store, path, mode="mirror", now=NOW)
    assert len(states(store)) == 1


def test_dry_run_counts_without_keeping_anything(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "subs.csv", "anna@example.org", "ben@example.net")
    report = import_file(store, path, now=NOW, dry_run=True)
    assert (report.read, report.added, report.dry_run) == (2, 2, True)
    assert states(store) == {}
    assert "dry run" in report.summary()


def test_yaml_files_and_a_missing_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("- email: anna@example.org\n  topics: [World]\n- ben@example.net\n")
    sync_file(store, path, mode="mirror", now=NOW)
    assert SubscriberStore(store).selections(now=NOW) == [("World",), ()]
    missing = tmp_path / "none.yaml"
    with pytest.raises(ConfigError, match=r"none\.yaml: file not found"):
        sync_file(store, missing, mode="mirror", now=NOW)
    assert sync_file(store, missing, mode="add", now=NOW, missing_ok=True).file_unchanged


def test_build_and_send_take_readers_from_the_state_database(project: Project) -> None:
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "pending_approval"
    listed = json.loads(project.cli("subscribers", "list", "--json").stdout)
    assert [r["email"] for r in listed] == [
        "anna@example.org",
        "ben@example.net",
        "dmitri@example.org",
    ]
    assert {r["source"] for r in listed} == {"file"}
    # A reader added after the build is frozen into the ledger at send.
    assert project.cli("subscribers", "add", "eve@example.com").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa").exit_code == 0
    sent = project.cli("send", "1")
    assert "sent 3" in sent.stdout  # mirror: eve is not in the file, so the send's sync drops her
    project.write_config(extra="subscribers_sync: add\n")
    assert project.cli("subscribers", "add", "eve@example.com").exit_code == 0
    status = json.loads(project.cli("subscribers", "show", "eve@example.com").stdout)
    assert status["subscriber"]["state"] == "active"


def test_a_big_sync_leaves_postgresql_fresh_statistics_so_pages_of_readers_use_the_index(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.create_database()
    store = Store(url=url)
    try:
        small = write(tmp_path / "small.csv", *(f"r{i:05d}@example.org" for i in range(10)))
        sync_file(store, small, mode="add", now=NOW)
        with store.engine.connect() as conn:
            assert _analyzed(conn) is None  # a few readers: left to autovacuum
        big = write(tmp_path / "big.csv", *(f"r{i:05d}@example.org" for i in range(3000)))
        sync_file(store, big, mode="add", now=NOW)
        with store.engine.connect() as conn:
            assert _analyzed(conn) is not None
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN SELECT key, id, source, since FROM subscribers"
                    " WHERE key >= 'r01000@example.org' ORDER BY key LIMIT 100"
                )
            )
        # The pages the freeze and the send loop read: a range of the key's index, not a
        # sort of the whole list.
        assert "Index Scan" in plan, plan
        assert "Sort" not in plan, plan
    finally:
        store.close()
        postgres.drop_database(url)


def _analyzed(conn: Connection) -> object:
    """When ANALYZE last ran by hand on subscribers (autovacuum's runs are kept apart)."""
    return conn.exec_driver_sql(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'subscribers'"
    ).scalar()
