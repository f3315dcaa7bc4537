"""A million-row freeze: writers never wait long, and an unsubscribe during it is honoured."""

from __future__ import annotations

import signal
import sqlite3
import time

import httpx
import pytest

from digest.app import App
from digest.tokens import UNSUBSCRIBE_SALT, Signer, unsubscribe_url
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import SECRET, Clock, Project, wait_for
from sending import approved, ledger_states_of, spawn

READERS = 1_000_000


def _frozen(project: Project) -> tuple[int, int]:
    """(rows frozen so far, 1 once complete), read as any other reader would."""
    with sqlite3.connect(f"file:{project.state}?mode=ro", uri=True) as db:
        row = db.execute("SELECT rows, complete FROM ledger_meta").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


@pytest.mark.slow
def test_an_unsubscribe_during_a_million_row_freeze_answers_at_once_and_holds(
    project: Project,
) -> None:
    with (project.root / "subscribers.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,timezone,topics\n")
        out.writelines(f"reader{i:07d}@example.org,,,\n" for i in range(READERS))
    first = "reader0000000@example.org"  # the first row: the first to be sent
    outbox = project.root / "outbox"
    project.write_config("outbox", {"path": str(outbox)})
    project.config.write_text(
        project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
    )
    edition = approved(project)
    sender = spawn(project, "send", str(edition))
    clock = Clock()  # the link is signed as of the server's time
    signer = Signer([SECRET], salt=UNSUBSCRIBE_SALT, clock=clock)
    url = unsubscribe_url("https://news.example.org", signer, first).replace(
        "https://news.example.org", ""
    )
    answered: list[float] = []
    web = App(project.config, clock=clock)
    try:
        with BackgroundServer(create_app(web, environ={"DIGEST_SECRET": SECRET})) as server:
            for target in (100_000, 400_000, 700_000):
                wait_for(
                    lambda t=target: _frozen(project)[0] >= t,
                    timeout=300,
                    what=f"{target} rows frozen",
                )
                started = time.monotonic()
                reply = httpx.post(
                    server.url + url, data={"List-Unsubscribe": "One-Click"}, timeout=30
                )
                answered.append(time.monotonic() - started)
                assert reply.status_code == 200, reply.text
            assert _frozen(project)[1] == 0, "the freeze ended before the last POST"
    finally:
        web.close()
    # The acceptance bar: each answer within a second while the freeze holds the file.
    assert max(answered) < 1.0, answered
    wait_for(lambda: _frozen(project)[1] == 1, timeout=300, what="the freeze to end")
    wait_for(
        lambda: ledger_states_of(project, edition, first) != "pending",
        timeout=120,
        what="the first row to be handled",
    )
    sender.send_signal(signal.SIGTERM)
    sender.communicate(timeout=120)
    assert ledger_states_of(project, edition, first) == "skipped"
    mailed = [p for p in (outbox / "new").iterdir() if first.encode() in p.read_bytes()[:2000]]
    assert mailed == []
