"""The state database as a send would use it: it opens (a PostgreSQL login that works), its
schema is this digest's, and this user can write to it (a change rolled back)."""

from __future__ import annotations

from pathlib import Path

from digest.app import App
from digest.checks.base import Report, Where
from digest.checks.settings import unwritable
from digest.exceptions import SchemaError, StoreError
from digest.store.engine import check_version, probe


def check_state(app: App, where: Where, report: Report) -> bool:
    """Report on the state database; True when it is usable (so later checks may open it)."""
    location = app.context.state_location()
    key = "state_path" if isinstance(location, Path) else "state_url"
    if isinstance(location, Path):
        if unwritable(location, folder=False):
            return False  # the folder check already said why, in one line
        if not location.exists():
            report.ok(f"state: {location} will be created at the first build")
            return True
    try:
        version, name = probe(location)
    except StoreError as exc:
        report.error(where(key), f"{exc}")
        return False
    if version is None:
        report.ok(f"state: {name} is empty; its tables are created at the first build")
        return True
    try:
        check_version(version, name)  # older: run digest db upgrade; newer: upgrade digest
    except SchemaError as exc:
        report.error(where(key), f"{exc}")
        return False
    report.ok(f"state: {name} opens, is writable and at schema {version}")
    return True
