"""GDPR erasure: after `digest subscribers erase`, no byte of the state database (nor its
write-ahead log) holds the reader's address, name or IP addresses, and they are never mailed
again; GDPR access (`show`) lists everything first."""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
from pathlib import Path

from digest.app import App
from digest.backends import memory
from digest.models import SubscriberState
from digest.testing.mail import parse_clean

from conftest import BASE, SECRET, Clock, Project

SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    images:
      mode: hotlink
    """)
ADDRESS = "Nora.Lind@Example.com"
PERSONAL = [
    b"nora.lind",
    b"Nora.Lind",
    b"Nora Lind",
    b"203.0.113.9",
    b"198.51.100.7",
    b"192.0.2.44",
]


def _state_bytes(project: Project) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{project.state}{suffix}")
        if path.exists():
            data += path.read_bytes()
    return data


def _link(path: str) -> str:
    """The newest ``path`` link mailed to her."""
    for envelope in reversed(memory.outbox):
        if envelope.recipient != ADDRESS:
            continue
        body = parse_clean(envelope.data).get_body(("plain",))
        assert body is not None
        found = re.search(rf"{re.escape(BASE)}({path}\S+)", str(body.get_content()))
        if found:
            return found.group(1)
    raise AssertionError(f"no {path} link mailed")


def test_erase_leaves_no_personal_data_in_the_database(project: Project) -> None:
    project.write_config(extra=SIGNUP)
    app = App(project.config, clock=Clock())
    readers = app.readers.pages({"DIGEST_SECRET": SECRET})
    # A web sign-up (IP and consent), confirmed from another address, a preference change.
    readers.sign_up(email=ADDRESS, name="Nora Lind", topics=["World"], ip="203.0.113.9")
    token = _link("/confirm/").rsplit("/", 1)[1]
    record = readers.confirm(token, ip="198.51.100.7")
    assert record is not None
    assert record.state is SubscriberState.ACTIVE
    # She gets an edition (ledger rows), then unsubscribes, then asks again (a pending row).
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa").exit_code == 0
    assert "sent 4" in project.cli("send", "1").stdout
    preferences = _link("/p/").rsplit("/", 1)[1]
    readers.save(
        preferences, topics=["World", "Technology"], name="Nora Lind", pause="0", ip="198.51.100.7"
    )
    consent = ("unsubscribe", "link", "192.0.2.44", "unsubscribe link")
    readers.list.opt_out(ADDRESS, reason="unsubscribed", now=app.now(), consent=consent)
    assert readers.sign_up(email=ADDRESS, name="Nora Lind", topics=[], ip="192.0.2.44") == "mailed"
    app.close()
    # Builds of SQLite without SECURE_DELETE leave an updated row's old bytes in free space:
    # make such a remnant (her old name), which only rewriting the file removes.
    with sqlite3.connect(project.state) as db:
        db.execute("PRAGMA secure_delete=OFF")
        db.execute("UPDATE subscribers SET name = 'N' WHERE key = ?", (ADDRESS.lower(),))
    held = _state_bytes(project)
    assert all(p in held for p in (b"nora.lind", b"Nora Lind", b"203.0.113.9")), "setup"

    # GDPR access first: everything held, in one JSON document.
    shown = json.loads(project.cli("subscribers", "show", ADDRESS).stdout)
    assert shown["subscriber"]["name"] == "N"
    assert {c["ip"] for c in shown["consents"]} >= {"203.0.113.9", "198.51.100.7", "192.0.2.44"}
    assert [p["ip"] for p in shown["pending_confirmations"]] == ["192.0.2.44"]
    assert shown["suppressed"] == "unsubscribed"
    assert [(d["edition"], d["state"]) for d in shown["deliveries"]] == [(1, "sent")]

    erased = project.cli("subscribers", "erase", ADDRESS, "--yes")
    assert erased.exit_code == 0, erased.output
    assert "erased (consents 4, confirmations 1, subscribers 1, suppressions 1, deliveries 1)" in (
        erased.stdout
    )
    left = _state_bytes(project)
    assert [p for p in PERSONAL if p.lower() in left.lower()] == []
    # The ledger still counts the delivery; the list still knows never to mail her.
    status = json.loads(project.cli("status", "1", "--json").stdout)
    assert status["deliveries"] == {"sent": 4}
    assert json.loads(project.cli("subscribers", "show", ADDRESS).stdout)["erased"] is True
    subscribers = project.root / "subscribers.yaml"
    subscribers.write_text(subscribers.read_text() + f"  - email: {ADDRESS}\n")
    sync = project.cli("subscribers", "sync")
    assert "1 left alone" in sync.stdout
    assert ADDRESS.lower() not in project.cli("subscribers", "list", "--state", "all").stdout
