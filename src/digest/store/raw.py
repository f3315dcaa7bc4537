"""One kept DBAPI connection for the ledger's hot statements, on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, PoolProxiedConnection

from digest.exceptions import StoreError
from digest.store.engine import BUSY_TIMEOUT_MS, describe

T = TypeVar("T")


class RawConnection:
    """Runs a function on a cursor inside one transaction; errors become one-line StoreErrors.

    SQL is written once with ``?`` placeholders and translated for psycopg (``%s``). On
    SQLite the write lock is taken first (BEGIN IMMEDIATE, polled every millisecond), so a
    transaction never fails half-way on a lock and never waits longer than it must.
    """

    def __init__(self, engine: Engine, where: str) -> None:
        self.engine = engine
        self.where = where
        self.sqlite = engine.dialect.name == "sqlite"
        self._conn: PoolProxiedConnection | None = None
        self._sql: dict[str, str] = {}

    def sql(self, text: str) -> str:
        if self.sqlite:
            return text
        found = self._sql.get(text)
        if found is None:
            found = self._sql[text] = text.replace("%", "%%").replace("?", "%s")
        return found

    def transaction(self, fn: Callable[[Any], T]) -> T:
        try:
            if self._conn is None:
                self._conn = self.engine.raw_connection()
                driver0: Any = self._conn.driver_connection
                if self.sqlite:
                    driver0.execute("PRAGMA busy_timeout=0")
                else:
                    # The send loop's commits, like SQLite's synchronous=NORMAL: a killed
                    # worker loses nothing; only a crash of the database server itself may
                    # lose the last fraction of a second (README, "Durability").
                    driver0.execute("SET synchronous_commit TO off")
                    driver0.commit()
            driver: Any = self._conn.driver_connection
            if self.sqlite:
                self._begin(driver)
            cur = driver.cursor()
            try:
                result = fn(cur)
                driver.commit()
            except BaseException:
                driver.rollback()
                raise
            finally:
                cur.close()
            return result
        except StoreError:
            raise
        except Exception as exc:
            if not database_error(exc):
                raise
            self.close(broken=True)
            raise StoreError(describe(self.where, exc)) from exc

    def _begin(self, driver: Any) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except Exception as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    def close(self, *, broken: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is being thrown away
                if broken:
                    # Not back to the pool: its reset (a rollback on a dead socket) would
                    # fail and log a traceback; a server that went away left nothing open.
                    conn.invalidate()
                conn.close()


def database_error(exc: BaseException) -> bool:
    """A DBAPI error of sqlite3 or psycopg (both name their base class ``Error``)."""
    return any(
        c.__name__ in ("Error", "DatabaseError", "OperationalError")
        and c.__module__.split(".")[0] in ("sqlite3", "psycopg")
        for c in type(exc).__mro__
    )
