"""Statements that differ by database (insert-or-ignore, upsert), written once for both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any whose primary key exists; how many were inserted."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # Counted by RETURNING: the driver's row count is not reliable here on psycopg (-1).
    statement = dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    params: Any = dict(rows[0]) if len(rows) == 1 else list(rows)
    return len(conn.execute(statement, params).all())


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, replacing the non-key columns of rows whose primary key exists."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    keys = [c.name for c in table.primary_key.columns]
    statement = dialect.insert(table)
    changes = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes), list(rows))
