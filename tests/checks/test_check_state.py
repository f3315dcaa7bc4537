"""`digest check` opens the state database: the login works, the schema is this digest's,
this user can write; each failure is one line naming the database and the fix, exit 1.
`digest db upgrade` names the migrations it ran, in the order it ran them."""

from __future__ import annotations

import json
import sqlite3

import psycopg
from click.testing import Result

from digest.store import Store
from digest.store.engine import head
from digest.testing.postgres import USER, PostgresCluster

from conftest import ROOT, Project


def _error_line(result: Result) -> str:
    output = result.output
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


def _admin(cluster: PostgresCluster, url: str, *statements: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as db:
        for statement in statements:
            db.execute(statement)  # type: ignore[arg-type]


def test_a_usable_state_database_is_a_passing_line(project: Project) -> None:
    assert project.cli("check", "--offline").exit_code == 0  # no file yet: created later
    Store(project.state).close()
    result = project.cli("check", "--offline")
    assert result.exit_code == 0, result.output
    assert f"state: {project.state} opens, is writable and at schema {head()}" in result.stdout


def test_an_older_schema_says_to_run_db_upgrade(project: Project) -> None:
    Store(project.state).close()
    with sqlite3.connect(project.state) as db:
        db.execute("UPDATE alembic_version SET version_num = '0006'")
    error = _error_line(project.cli("check", "--offline"))
    assert f"{project.config}:" in error  # the state_path line of the config
    assert f"the state database's schema (0006) is older than this digest's ({head()})" in error
    assert "run `digest db upgrade`" in error


def test_a_state_file_that_is_not_a_database_is_one_line(project: Project) -> None:
    project.state.parent.mkdir(parents=True)
    project.state.write_text("not a database\n" * 100)
    error = _error_line(project.cli("check", "--offline"))
    assert str(project.state) in error
    assert "file is not a database" in error


def test_a_wrong_postgresql_password_is_one_line_without_the_password(
    project: Project, postgres: PostgresCluster
) -> None:
    url = postgres.create_database()
    _admin(postgres, url, "CREATE ROLE reporter LOGIN PASSWORD 'right-password'")
    hba = postgres.data / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text("host all reporter 127.0.0.1/32 scram-sha-256\n" + original)
        _admin(postgres, url, "SELECT pg_reload_conf()")
        wrong = url.replace(f"//{USER}@", "//reporter:wrong-password@")
        project.state_url = wrong
        project.write_config()
        error = _error_line(project.cli("check", "--offline"))
    finally:
        hba.write_text(original)
        _admin(postgres, url, "SELECT pg_reload_conf()")
    assert "the database refused the login; check the user and the password" in error
    assert "wrong-password" not in error
    assert "reporter:***@127.0.0.1" in error


def test_a_postgresql_role_that_cannot_write_is_one_line(
    project: Project, postgres: PostgresCluster
) -> None:
    url = postgres.create_database()
    Store(url=url).close()
    _admin(
        postgres, url, "CREATE ROLE onlooker LOGIN", "GRANT SELECT ON alembic_version TO onlooker"
    )
    project.state_url = url.replace(f"//{USER}@", "//onlooker@")
    project.write_config()
    error = _error_line(project.cli("check", "--offline"))
    assert "permission denied for table alembic_version" in error


def test_db_upgrade_lists_each_migration_in_the_order_it_ran(project: Project) -> None:
    project.state.parent.mkdir(parents=True)
    with sqlite3.connect(project.state) as db:  # a 0.1 state file: tables, no version
        db.executescript(
            "CREATE TABLE editions (id INTEGER PRIMARY KEY AUTOINCREMENT, slot VARCHAR NOT NULL,"
            " state VARCHAR NOT NULL, revision INTEGER NOT NULL, stories TEXT NOT NULL,"
            " subject TEXT NOT NULL, preheader TEXT NOT NULL, html TEXT NOT NULL,"
            " text TEXT NOT NULL, content_hash VARCHAR NOT NULL, warnings TEXT NOT NULL,"
            " created_at VARCHAR NOT NULL, updated_at VARCHAR NOT NULL);"
        )
    result = project.cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{project.state}: schema upgraded from legacy to {head()}, in order:"
    # The revision names are not the order they run in: the labels say what each one is.
    order = ["0001", "0002", "0006", "0007", "0004", "0003", "0005", "0008", "0009", "0010", "0011"]
    assert [line.split()[0] for line in lines[1:]] == order
    assert lines[4] == "  0007  the notices log (notices to editors and proofs, each sent once)"
    again = json.loads(project.cli("db", "upgrade", "--json").stdout)
    assert (again["before"], again["after"], again["applied"]) == (head(), head(), [])


def test_an_unknown_mjml_element_in_an_override_names_file_line_and_tag(project: Project) -> None:
    templates = project.root / "mytemplates"
    templates.mkdir()
    source = (ROOT / "templates" / "_lead.mjml.j2").read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(source) if "<mj-text" in line)
    source[index] = source[index].replace("<mj-text", "<mj-txet").replace("</mj-text", "</mj-txet")
    if "</mj-txet" not in source[index]:
        closing = next(i for i in range(index, len(source)) if "</mj-text>" in source[i])
        source[closing] = source[closing].replace("</mj-text>", "</mj-txet>")
    (templates / "_lead.mjml.j2").write_text("".join(source))
    project.write_config(extra="templates_dir: mytemplates\n")
    # MJML itself compiles it (dropping the element): only the check catches it.
    error = _error_line(project.cli("check", "--offline"))
    assert f"{templates / '_lead.mjml.j2'}:{index + 1}: <mj-txet> is not an MJML element" in error
