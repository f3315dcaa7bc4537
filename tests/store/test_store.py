"""The state database: created whole at the current schema, versioned, upgraded, one-line errors."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from digest.exceptions import SchemaError, StoreError
from digest.store import Store
from digest.store.engine import head, upgrade
from digest.store.tables import TIME_FORMAT, metadata

from conftest import Project

NOW = datetime(2026, 11, 24, 6, 0, 0, 123456, tzinfo=UTC)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_new_state_file_has_every_table_and_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    assert _tables(path) == {t.name for t in metadata.sorted_tables} | {"alembic_version"}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
    assert path.stat().st_mode & 0o777 == 0o600


def test_migrating_an_empty_database_gives_exactly_the_declared_schema(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE placeholder (x INTEGER)")  # not empty: migrate
    upgrade(engine, str(path))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # Table and column sets must agree; SQLite does not keep every type detail.
    structural = [
        d
        for d in diff
        if d[0]
        in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    assert [
        d for d in structural if not (d[0] == "remove_table" and d[1].name == "placeholder")
    ] == []


def test_one_timestamp_format_in_every_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.suppress("a@example.org", reason="test", now=NOW)
    store.log_slot("2026-11-24T07:00", status="missed", note="", now=NOW)
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        values = [
            r[0]
            for q in ("SELECT at FROM suppressions", "SELECT at FROM slot_log")
            for r in db.execute(q)
        ]
    assert values == [NOW.strftime(TIME_FORMAT)] * 2
    store = Store(tmp_path / "state.db")
    assert store.slot_logged_at("2026-11-24T07:00") == NOW
    store.close()


def test_an_older_schema_is_refused_with_the_command_to_run(project: Project) -> None:
    project.state.parent.mkdir(parents=True)
    with sqlite3.connect(project.state) as db:  # a 0.1 state file: tables, no version
        db.execute("CREATE TABLE editions (id INTEGER PRIMARY KEY)")
    result = project.cli("status")
    assert result.exit_code == 1
    assert "is older than this digest's" in result.output
    assert "run `digest db upgrade`" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_brings_a_legacy_state_file_to_the_current_schema(
    project: Project, tmp_path: Path
) -> None:
    project.state.parent.mkdir(parents=True)
    with sqlite3.connect(project.state) as db:
        db.executescript(
            "CREATE TABLE editions (id INTEGER PRIMARY KEY AUTOINCREMENT, slot VARCHAR NOT NULL,"
            " state VARCHAR NOT NULL, revision INTEGER NOT NULL, stories TEXT NOT NULL,"
            " subject TEXT NOT NULL, preheader TEXT NOT NULL, html TEXT NOT NULL,"
            " text TEXT NOT NULL, content_hash VARCHAR NOT NULL, warnings TEXT NOT NULL,"
            " created_at VARCHAR NOT NULL, updated_at VARCHAR NOT NULL);"
            "CREATE TABLE locks (name VARCHAR PRIMARY KEY, owner VARCHAR NOT NULL,"
            " expires_at FLOAT NOT NULL);"
            "INSERT INTO editions VALUES (7, '2026-11-20T07:00', 'sent', 1, '[]', 's', 'p',"
            " '<p>', 't', 'h', '[]', '2026-11-20T06:00:00+00:00', '2026-11-20T06:00:00+00:00');"
        )
    result = project.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"upgraded from legacy to {head()}" in result.output
    assert project.cli("db", "upgrade").output.strip().endswith("is current; nothing to do")
    status = project.cli("status", "7", "--json")
    assert status.exit_code == 0, status.output
    assert '"state": "sent"' in status.output


def test_a_newer_schema_is_refused(project: Project) -> None:
    Store(project.state).close()
    with sqlite3.connect(project.state) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    result = project.cli("status")
    assert result.exit_code == 1
    assert "newer than this digest knows" in result.output


def test_schema_error_is_a_store_error() -> None:
    assert issubclass(SchemaError, StoreError)


def test_creation_racing_in_threads_gives_one_whole_schema(tmp_path: Path) -> None:
    path = tmp_path / "raced.db"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def test_postgresql_gets_the_same_schema_by_migration_and_by_creation(postgres: object) -> None:
    from digest.testing.postgres import PostgresCluster

    assert isinstance(postgres, PostgresCluster)
    created, migrated = postgres.create_database(), postgres.create_database()
    try:
        Store(url=created).close()  # created whole at the current schema
        engine = create_engine(migrated)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE placeholder (x INTEGER)")  # not empty: migrate
        upgrade(engine, "pg")
        for url in (created, migrated):
            check = create_engine(url)
            with check.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            check.dispose()
            structural = [
                d
                for d in diff
                if d[0]
                in (
                    "add_table",
                    "remove_table",
                    "add_column",
                    "remove_column",
                    "add_index",
                    "remove_index",
                )
            ]
            assert [
                d for d in structural if not (d[0] == "remove_table" and d[1].name == "placeholder")
            ] == []
            assert version == head()
        engine.dispose()
    finally:
        postgres.drop_database(created)
        postgres.drop_database(migrated)


def test_a_second_open_of_a_postgresql_database_checks_its_version(postgres: object) -> None:
    from digest.testing.postgres import PostgresCluster

    assert isinstance(postgres, PostgresCluster)
    url = postgres.create_database()
    try:
        Store(url=url).close()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        engine.dispose()
        with pytest.raises(SchemaError, match="newer than this digest knows"):
            Store(url=url)
    finally:
        postgres.drop_database(url)
