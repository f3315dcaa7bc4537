"""Opening the state database (SQLite file or PostgreSQL URL), schema versions, clear errors."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from digest.exceptions import SchemaError, StoreError
from digest.store.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10_000
UPGRADE_HINT = "run `digest db upgrade` (back up the state file first)"

# What a failing SQLite call usually means, in words a user can act on.
_CAUSES = (
    ("database or disk is full", "the disk is full; free some space and run the command again"),
    ("readonly database", "the state file is read-only; check its permissions"),
    (
        "unable to open database",
        "cannot open the state file; check the folder exists and is writable",
    ),
    ("database is locked", "another digest process holds the database; retry in a moment"),
    ("disk i/o error", "the disk reported an I/O error; check the disk"),
    ("no such table", "the state database is incomplete; " + UPGRADE_HINT),
    ("read-only transaction", "the database is open read-only"),
    (
        "connection refused",
        "cannot reach the database server; check the host and port of "
        "state_url and that PostgreSQL is running",
    ),
    (
        "password authentication failed",
        "the database refused the login; check the user and "
        "the password (PGPASSWORD or ~/.pgpass, never in the config)",
    ),
    ("no password supplied", "the database wants a password; set PGPASSWORD or ~/.pgpass"),
    (
        "does not exist",
        "the database or role does not exist; create it (see README, Operations at scale)",
    ),
    ("no space left", "the database server's disk is full; free some space and retry"),
)


def describe(where: str, exc: BaseException) -> str:
    """One line naming the database and the cause, instead of a driver traceback."""
    raw = " ".join(str(getattr(exc, "orig", None) or exc).split())
    for needle, words in _CAUSES:
        if needle in raw.lower():
            return f"{where}: {words} ({raw})"
    return f"{where}: {raw}"


# SQLSTATE classes of a server that went away: 08 (connection exception) and 57P01-57P03
# (admin shutdown: `pg_ctl restart -m fast`; crash shutdown; "the database system is
# starting up"). 57014 (a cancelled statement) is not one: the server is still there.
_GONE_STATES = ("08", "57P01", "57P02", "57P03")
# Connection-level failures carry no SQLSTATE; these mean a wrong setting, not a blip.
_NOT_A_BLIP = ("password", "does not exist", "no password", "role ")


def went_away(exc: BaseException) -> bool:
    """Whether a database error (or one it was raised from) means the server went away:
    refused or reset connections, a server that closed the connection, shut down or is
    starting up. Such a failure rolled the whole transaction back, so trying it again is
    safe; a constraint, a lock timeout or a bad login is not one."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short: StoreError <- SQLAlchemy <- driver
        if seen is None:
            return False
        if getattr(seen, "connection_invalidated", False):
            return True
        names = {c.__name__ for c in type(seen).__mro__}
        if "OperationalError" in names and type(seen).__module__.startswith("psycopg"):
            state = getattr(seen, "sqlstate", None)
            if state is None:
                text = str(seen).lower()
                return not any(words in text for words in _NOT_A_BLIP)
            return bool(state.startswith(_GONE_STATES))
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Turn any database error raised inside into a StoreError naming ``where``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(describe(where, exc)) from exc


def writable(path: Path) -> bool:
    """Whether this process may write the SQLite file at ``path`` (and its -wal/-shm files)."""
    if not path.exists():
        return True
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def url_engine(url: str, *, readonly: bool = False) -> tuple[Engine, str]:
    """An engine for ``state_url`` and how to name it in messages (password hidden)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"state_url {url!r} is not a database URL: {exc}") from exc
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise StoreError(f"state_url {where}: name the SQLite file (sqlite:///path)")
        return sqlite_engine(Path(parsed.database), readonly=readonly), parsed.database
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"state_url {where}: only postgresql+psycopg:// and sqlite:/// URLs are supported"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver digest ships with
    options = "-c default_transaction_read_only=on" if readonly else ""
    try:
        engine = create_engine(
            parsed, pool_pre_ping=True, connect_args={"options": options} if options else {}
        )
    except (ArgumentError, ImportError) as exc:
        raise StoreError(
            f"state_url {where}: {exc}; install the PostgreSQL driver with "
            "`pip install 'digest[postgresql]'`"
        ) from exc
    return engine, where


def open_engine(location: Path | str) -> tuple[Engine, str]:
    """A writable engine for a SQLite path or a database URL, and its name for messages."""
    if isinstance(location, Path):
        return sqlite_engine(location), str(location)
    return url_engine(location)


def sqlite_engine(path: Path, *, readonly: bool = False) -> Engine:
    """An engine for the state file at ``path`` (created if missing, unless ``readonly``).

    A read-only engine on a missing file is an empty in-memory database, so commands that
    only look (preview, sources) never create a state file.
    """
    if readonly and not path.exists():
        # Empty, and shared by every thread: reads find nothing, nothing reaches the disk.
        engine = create_engine("sqlite://", poolclass=StaticPool)
        metadata.create_all(engine)
        return engine
    if readonly:
        # immutable=1: even a read-only WAL connection would create -wal/-shm files.
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true")
        event.listen(engine, "connect", _readonly_pragmas)
        return engine
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # The state holds addresses and signing material: readable by its owner only.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _pragmas)
    return engine


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL takes a lock, and another process creating the
    # same database may hold it for a moment ("database is locked" otherwise).
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # On a new, empty file only (before WAL writes its header): lets `digest prune` give
    # pages back. On an existing file even the no-op assignment would count as a write.
    cursor.execute("PRAGMA page_count")
    if cursor.fetchone()[0] == 0:
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    # WAL lets the review page read while a send writes. Switching needs a lock the busy
    # handler does not always wait for, so processes racing to create the file retry.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    # In WAL mode NORMAL is still crash-safe for the database; it only skips an fsync per
    # commit, which is what lets the ledger commit every few messages at full speed.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _readonly_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


@contextmanager
def write_transaction(engine: Engine, where: str) -> Iterator[Connection]:
    """One write transaction. On SQLite the write lock is taken at once (BEGIN IMMEDIATE),
    polling every millisecond instead of SQLite's busy handler, whose waits grow to 100 ms
    and can keep missing the short gaps a long chunked writer (the ledger freeze) leaves."""
    with guarded(where), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            _begin_immediate(conn)
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _begin_immediate(conn: Connection) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout=0")
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except Exception as exc:  # sqlite3.OperationalError, without importing sqlite3
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(0.001)
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    found = scripts().get_current_head()
    assert found is not None  # the package ships its migrations
    return found


def current(conn: Connection) -> str | None:
    """The database's schema revision; None for an empty database, "legacy" for one made
    before versioning (0.1), which has tables but no version."""
    tables = set(inspect(conn).get_table_names())
    if not tables - {"apscheduler_jobs"}:
        return None
    if "alembic_version" not in tables:
        return "legacy"
    return MigrationContext.configure(conn).get_current_revision() or "legacy"


def prepare(engine: Engine, where: str, *, readonly: bool = False) -> None:
    """Create an empty database at the current schema; refuse one at another version."""
    if readonly and engine.url.database in (None, "", ":memory:"):
        return
    with guarded(where), engine.connect() as conn:
        version = current(conn)
    if version is None:
        if not readonly:
            _create(engine, where)
        return
    check_version(version, where)


def check_version(version: str, where: str) -> None:
    latest = head()
    if version == latest:
        return
    known = {rev.revision for rev in scripts().walk_revisions()}
    if version == "legacy" or version in known:
        raise SchemaError(
            f"{where}: the state database's schema ({version}) is older than this digest's "
            f"({latest}); {UPGRADE_HINT}"
        )
    raise SchemaError(
        f"{where}: the state database's schema ({version}) is newer than this digest knows "
        f"(up to {latest}); upgrade digest to the version that wrote it"
    )


def _create(engine: Engine, where: str) -> None:
    """All tables and the version stamp in one transaction, so a racing process sees either
    nothing or the whole schema (never "no such table")."""
    with guarded(where), engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        immediate = engine.dialect.name == "sqlite"
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            _serialise(conn)
            if current(conn) is None:
                metadata.create_all(conn)
                MigrationContext.configure(conn).stamp(scripts(), "head")
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise


def upgrade(engine: Engine, where: str) -> tuple[str | None, str]:
    """Migrate the database to the current schema; (revision before, revision after)."""
    with guarded(where), engine.begin() as conn:
        _serialise(conn)
        before = current(conn)
        if before is None:
            metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(scripts(), "head")
            return None, head()
        if before != "legacy" and before not in _known():
            check_version(before, where)  # newer than this digest: refused
        script = scripts()

        def steps(rev: Any, _context: Any) -> Any:
            return script._upgrade_revs("head", rev)

        context = MigrationContext.configure(conn, opts={"fn": steps})
        with Operations.context(context):
            context.run_migrations()
        return before, head()


def migrations(before: str | None) -> list[tuple[str, str]]:
    """(revision, label) of each migration from ``before`` to the head, in the order they
    run. The revision names are not in that order (0006 comes before 0005), so the labels
    say what each step is."""
    script = scripts()
    if before is None:
        return []
    lower = "base" if before == "legacy" else before
    steps = list(script.iterate_revisions(head(), lower))
    steps.reverse()
    return [(rev.revision, _label(rev.doc)) for rev in steps if rev.revision != before]


def _label(doc: str) -> str:
    first = " ".join(doc.split())
    return (first.split(": ", 1)[1] if ": " in first else first).rstrip(".")


def probe(location: Path | str) -> tuple[str | None, str]:
    """Connect to the state database, read its schema version and check this user can write
    to it (a change rolled back); (version or None when empty, how to name it). A
    StoreError names the database and the cause in one line."""
    engine, where = open_engine(location)
    try:
        with guarded(where), engine.connect() as conn:
            version = current(conn)
            conn.rollback()
            # A write this user may or may not make, undone: a read-only file, a read-only
            # role or a full disk fail here, not at send time.
            conn.exec_driver_sql(
                "CREATE TEMPORARY TABLE digest_check_write (x INTEGER)"
                if version is None
                else "UPDATE alembic_version SET version_num = version_num"
            )
            conn.rollback()
        return version, where
    finally:
        engine.dispose()


def _serialise(conn: Connection) -> None:
    """On PostgreSQL, one schema change at a time (SQLite's write lock already does this)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(20261124)")


def _known() -> set[str]:
    return {rev.revision for rev in scripts().walk_revisions()}
