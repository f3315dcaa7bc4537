"""Creating and dropping whole PostgreSQL databases (the test cluster's per-test databases)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


def create_database(server_url: str) -> str:
    """A new, empty database on the server of ``server_url``; its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    _admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (any sessions still open on it are ended)."""
    name = make_url(url).database
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(url: str, sql: str) -> None:
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()
