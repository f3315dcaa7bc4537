"""The desk's send control over real HTTP: a forged cross-site POST sends, pauses or
cancels nothing; a proof link cannot send; the progress poll needs a session."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import (
    EDITORS,
    NOW,
    SECRET,
    Clock,
    Project,
    loopback_client,
    proof_links,
    sign_in_by_link,
    wait_for,
)

EVIL = "https://evil.news.example.org"


def _readers() -> list[str]:
    """Addresses the edition went to (sign-in links and proofs to the editors left out)."""
    return [e.recipient for e in memory.outbox if not e.recipient.endswith("@news.example.org")]


@dataclass
class Desk:
    project: Project
    rosa: httpx.Client  # signed in
    stranger: httpx.Client  # not signed in

    def state(self) -> str:
        return str(json.loads(self.project.cli("status", "1", "--json").stdout)["state"])

    def csrf(self, path: str = "/e/1") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.rosa.get(path).text)
        assert found
        return found.group(1)


@pytest.fixture
def desk(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)  # as under `digest serve`
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as rosa,
        loopback_client(server.url, follow_redirects=False) as stranger,
    ):
        sign_in_by_link(rosa, "rosa@news.example.org")
        yield Desk(project, rosa, stranger)
    app.close()


def test_forged_send_and_cancel_are_refused(desk: Desk) -> None:
    csrf = desk.csrf()  # even with Rosa's own token
    for route in ("send", "cancel"):
        forged = desk.rosa.post(f"/e/1/{route}", data={"csrf": csrf}, headers={"Origin": EVIL})
        assert forged.status_code == 403, forged.text
        assert "Nothing was changed" in forged.text
        tokenless = desk.rosa.post(f"/e/1/{route}", data={})
        assert tokenless.status_code == 403
    assert desk.state() == "approved"
    assert _readers() == []


def test_a_proof_link_or_a_stranger_cannot_send_or_read_progress(desk: Desk) -> None:
    link = proof_links()["review"]
    token = link.split("t=", 1)[1]
    page = desk.stranger.get(f"/e/1?t={token}")
    assert 'id="send-now"' not in page.text
    assert "Sign in to send it now or cancel it." in page.text
    assert desk.stranger.get("/e/1/send").status_code == 303  # to the sign-in page
    assert desk.stranger.get("/e/1/progress.json").headers["location"].startswith("/signin")
    # A valid token of the stranger's own browser, and the proof link's token: not enough.
    csrf = re.search(r'name="csrf" value="([^"]+)"', desk.stranger.get("/signin").text)
    assert csrf
    sent = desk.stranger.post("/e/1/send", data={"csrf": csrf.group(1), "t": token})
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/signin")
    assert desk.state() == "approved"


def test_send_now_then_progress_and_the_audit(desk: Desk) -> None:
    confirm = desk.rosa.get("/e/1/send")
    assert 'id="recipients">3 recipients<' in confirm.text
    sent = desk.rosa.post("/e/1/send", data={"csrf": desk.csrf("/e/1/send")})
    assert sent.status_code == 303
    assert sent.headers["location"] == "/e/1?n=sending#progress"

    def progress() -> dict[str, object]:
        return dict(desk.rosa.get("/e/1/progress.json").json())

    wait_for(lambda: progress()["state"] == "sent", what="the send to end")
    done = progress()
    assert (done["sent"], done["failed"], done["left"]) == (3, 0, 0)
    assert str(done["line"]).startswith("Sent: 3 of 3 delivered; started 07:00:00")
    assert len(_readers()) == 3
    trail = json.loads(desk.project.cli("status", "1", "--json").stdout)["audit"]
    assert (trail[-2]["by"], trail[-2]["to"]) == ("Rosa Diaz", "sending")
    # A reader who unsubscribes after it counts for it on the Editions page; an address
    # it never reached does not.
    store = desk.project.open_store()
    try:
        later = datetime.fromisoformat(NOW) + timedelta(minutes=5)
        store.suppress("ben@example.net", reason="unsubscribed (link)", now=later)
        store.suppress("nobody@example.org", reason="unsubscribed (link)", now=later)
    finally:
        store.close()
    listed = desk.rosa.get("/editions").text
    assert '<span class="f-unsubscribes">1 unsubscribe</span>' in listed
    assert '<span class="f-sent">3 sent</span>' in listed
    # Sent: nothing to pause, resume or cancel, each said in a page, not a crash.
    for route in ("pause", "resume", "cancel"):
        answer = desk.rosa.post(f"/e/1/{route}", data={"csrf": desk.csrf()})
        assert answer.status_code == 409, (route, answer.text)


def test_cancel_from_the_desk(desk: Desk) -> None:
    cancelled = desk.rosa.post("/e/1/cancel", data={"csrf": desk.csrf()})
    assert cancelled.status_code == 303
    assert desk.state() == "rejected"
    trail = json.loads(desk.project.cli("status", "1", "--json").stdout)["audit"]
    assert (trail[-1]["by"], trail[-1]["via"], trail[-1]["note"]) == (
        "Rosa Diaz",
        "web",
        "cancelled before the first message",
    )
    assert desk.rosa.get("/e/1/send").status_code == 409
    assert _readers() == []
