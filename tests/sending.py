"""Helpers shared by the sending tests: subscribers, approved editions, ledger reads, spawns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest

from digest.testing.faults import FaultServer
from digest.testing.smtp import SMTPSink

from conftest import NOW, Project, spawn_digest

FAST_RETRY = (
    "send:\n  connections: 4\n  retry_base_seconds: 0.01\n  retry_max_seconds: 0.05\n"
    "  retry_in_run_seconds: 30\n"
)


_SPAWNED: list[subprocess.Popen[str]] = []


@pytest.fixture
def project(project: Project, state_url: str) -> Iterator[Project]:
    """The shared project, on SQLite and on PostgreSQL; a `digest` a failed test left
    running is killed at the end."""
    project.state_url = state_url
    project.write_config()
    yield project
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def subscribers(
    project: Project, n: int, *, csv: bool = False, domain: str = "example.org"
) -> list[str]:
    emails = [f"reader{i:05d}@{domain}" for i in range(n)]
    if csv:
        rows = "".join(f"{e},Reader {i},,\n" for i, e in enumerate(emails))
        (project.root / "subscribers.csv").write_text("email,name,timezone,topics\n" + rows)
    else:
        rows = "".join(f"  - email: {e}\n    name: Reader {i}\n" for i, e in enumerate(emails))
        (project.root / "subscribers.yaml").write_text("subscribers:\n" + rows)
    return emails


def approved(project: Project, *, now: str = NOW) -> int:
    """Build and approve an edition for ``now``'s slot (a newer one for the same slot would
    supersede it)."""
    env = {"DIGEST_NOW": now}
    result = project.cli("build", "--json", env=env)
    assert result.exit_code == 0, result.output
    edition = int(json.loads(result.stdout)["id"])
    result = project.cli("approve", str(edition), "--by", "Editor", env=env)
    assert result.exit_code == 0, result.output
    return edition


def rows(project: Project, edition: int) -> dict[str, dict[str, object]]:
    store = project.open_store()
    try:
        return {str(r["email"]): r for r in store.delivery_rows(edition)}
    finally:
        store.close()


def ledger(project: Project, edition: int) -> dict[str, str]:
    return {e: str(r["state"]) for e, r in rows(project, edition).items()}


def smtp(server: FaultServer | SMTPSink) -> dict[str, object]:
    return {"host": server.host, "port": server.port}


def spawn(project: Project, *args: str) -> subprocess.Popen[str]:
    proc = spawn_digest(project, *args)
    _SPAWNED.append(proc)
    return proc


def message_id(data: bytes) -> str:
    return str(message_from_bytes(data, policy=policy.default)["Message-ID"])


def busiest(times: list[float], seconds: float) -> int:
    """The most messages any ``seconds``-long window of the server's log holds."""
    times = sorted(times)
    return max((sum(1 for t in times if a <= t < a + seconds) for a in times), default=0)


def ledger_states_of(project: Project, edition: int, email: str) -> str:
    """One row's state, read without loading the ledger (it may hold a million rows)."""
    from sqlalchemy import select

    from digest.store.tables import deliveries

    store = project.open_store()
    try:
        with store.reading() as conn:
            found = conn.execute(
                select(deliveries.c.state)
                .where(deliveries.c.edition_id == edition)
                .where(deliveries.c.email == email)
            ).scalar()
    finally:
        store.close()
    return str(found)
