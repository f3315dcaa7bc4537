"""The state database: tables, migrations, and every query (SQLite or PostgreSQL)."""

from __future__ import annotations

from digest.store.edition_rows import Revision
from digest.store.repository import Store, Transaction

__all__ = ["Revision", "Store", "Transaction"]
