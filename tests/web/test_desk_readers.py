"""The desk's Readers page over real HTTP, on SQLite and PostgreSQL: counts by state,
growth per week, find an address, pause or unsubscribe it on the reader's behalf (CSRF,
the editor named in the reader's record)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from digest.app import App
from digest.models import SubscriberState
from digest.store import suppress
from digest.store.subscriber_rows import writing
from digest.store.tables import subscribers
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import EDITORS, NOW, SECRET, Clock, Project, loopback_client, sign_in_by_link

S = SubscriberState
EVIL = "https://evil.news.example.org"
# How many of each (effective) state; bounced and complained readers keep a stored "active"
# state under their suppression, as after a bounce report.
MIX = {"active": 2400, "pending": 300, "paused": 200, "unsubscribed": 250, "bounced": 150}
MIX["complained"] = 100


@dataclass
class Roster:
    project: Project
    app: App
    rosa: httpx.Client
    stranger: httpx.Client
    joined: list[int]  # expected, per week, oldest first
    left: list[int]

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.rosa.get("/readers").text)
        assert found
        return found.group(1)

    def show(self, email: str) -> str:
        shown = self.project.cli("subscribers", "show", email)
        assert shown.exit_code == 0, shown.output
        return shown.output


def _week(moment: datetime, now: datetime) -> int:
    """The index (0 oldest .. 11 this week) of the week ``moment`` falls in, -1 if older."""
    back = int((now - moment) / timedelta(weeks=1))
    return 11 - back if back < 12 else -1


def _fill(project: Project, now: datetime) -> tuple[list[int], list[int]]:
    """A few thousand readers in one transaction; the joins and leaves expected per week."""
    joined, left = [0] * 12, [0] * 12
    rows, suppressed = [], []
    n = 0
    for state, count in MIX.items():
        for _ in range(count):
            n += 1
            at = now - timedelta(days=n * n % 100, hours=1)  # 14 weeks, unevenly
            stored = "active" if state in ("bounced", "complained") else state
            since = at if stored in ("active", "paused") else ""
            rows.append(
                {
                    "key": f"r{n}@example.org",
                    "email": f"R{n}@example.org",
                    "name": "",
                    "timezone": "",
                    "topics": "[]",
                    "state": stored,
                    "paused_until": now + timedelta(weeks=1) if state == "paused" else "",
                    "source": "web",
                    "since": since,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if since and _week(at, now) >= 0:
                joined[_week(at, now)] += 1
            if state in ("unsubscribed", "bounced", "complained"):
                gone = now - timedelta(days=n * n % 80, hours=2)
                suppressed.append((f"r{n}@example.org", S(state), gone))
                left[_week(gone, now)] += 1
    store = project.open_store()
    try:
        with writing(store) as conn:
            conn.execute(insert(subscribers), rows)
            for key, kind, at in suppressed:
                suppress.record(conn, key, reason="test", kind=kind, now=at)
            # Suppressed without ever being a reader: no one left the list.
            suppress.record(conn, "never@example.org", reason="test", kind=S.BOUNCED, now=now)
    finally:
        store.close()
    return joined, left


@pytest.fixture
def roster(project: Project, state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roster]:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    project.state_url = state_url
    (project.root / "subscribers.yaml").write_text("subscribers: []\n", encoding="utf-8")
    project.write_config(extra=EDITORS)
    assert project.cli("subscribers", "sync").exit_code == 0  # the database, migrated
    joined, left = _fill(project, datetime.fromisoformat(NOW))
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as rosa,
        loopback_client(server.url, follow_redirects=False) as stranger,
    ):
        sign_in_by_link(rosa, "rosa@news.example.org")
        yield Roster(project, app, rosa, stranger, joined, left)
    app.close()


def _cells(page: str, kind: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(rf'<td class="{kind}">([\d,]+)<', page)]


def test_counts_by_state_and_growth_per_week(roster: Roster) -> None:
    page = roster.rosa.get("/readers")
    assert page.status_code == 200, page.text
    for state, count in MIX.items():
        assert f'id="c-{state}">{count:,}</dd>' in page.text, state
    assert f"({sum(MIX.values()):,} addresses on the list)" in page.text
    assert _cells(page.text, "joined") == roster.joined
    assert _cells(page.text, "left") == roster.left
    assert sum(roster.joined) > 0
    assert sum(roster.left) == MIX["unsubscribed"] + MIX["bounced"] + MIX["complained"]
    assert 'aria-current="page">Readers</a>' in page.text


def test_find_then_pause_and_unsubscribe_on_the_readers_behalf(roster: Roster) -> None:
    found = roster.rosa.get("/readers", params={"q": " r7@EXAMPLE.org "})
    assert 'id="r-state">active<' in found.text
    assert "R7@example.org" in found.text
    missing = roster.rosa.get("/readers", params={"q": "nobody@example.org"})
    assert "No reader has the address nobody@example.org." in missing.text

    paused = roster.rosa.post(
        "/readers/pause", data={"csrf": roster.csrf(), "email": "R7@example.org", "weeks": "2"}
    )
    assert paused.status_code == 303, paused.text
    back = roster.rosa.get(paused.headers["location"])
    assert 'id="r-state">paused<' in back.text
    assert "paused for 2 week(s) by an editor (Rosa Diaz &lt;rosa@news.example.org&gt;)" in (
        back.text
    )
    shown = roster.show("R7@example.org")
    assert '"state": "paused"' in shown
    assert "paused for 2 week(s) by an editor (Rosa Diaz <rosa@news.example.org>)" in shown
    assert '"paused_until": "2026-12-08T06:00:00+00:00"' in shown

    gone = roster.rosa.post(
        "/readers/unsubscribe", data={"csrf": roster.csrf(), "email": "R7@example.org"}
    )
    assert gone.status_code == 303, gone.text
    assert 'id="r-state">unsubscribed<' in roster.rosa.get(gone.headers["location"]).text
    shown = roster.show("R7@example.org")
    assert '"suppressed": "unsubscribed: removed by an editor (Rosa Diaz' in shown
    page = roster.rosa.get("/readers").text
    assert f'id="c-unsubscribed">{MIX["unsubscribed"] + 1:,}</dd>' in page
    assert f'id="c-active">{MIX["active"] - 1:,}</dd>' in page


def test_forged_or_anonymous_changes_are_refused(roster: Roster) -> None:
    data = {"email": "R8@example.org", "weeks": "1"}
    anonymous = roster.stranger.get("/readers")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin")
    # No token; another site's form; a stranger with a token of their own pre-session.
    assert roster.rosa.post("/readers/pause", data=data).status_code == 403
    forged = roster.rosa.post(
        "/readers/unsubscribe", data={**data, "csrf": roster.csrf()}, headers={"origin": EVIL}
    )
    assert forged.status_code == 403
    assert "This form was sent from another site" in forged.text
    page = roster.stranger.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    stranger = roster.stranger.post("/readers/unsubscribe", data={**data, "csrf": token[1]})
    assert stranger.status_code in (303, 403)
    assert '"state": "active"' in roster.show("R8@example.org")


def test_bad_forms_are_one_clear_line(roster: Roster) -> None:
    csrf = roster.csrf()
    weeks = roster.rosa.post(
        "/readers/pause", data={"csrf": csrf, "email": "R8@example.org", "weeks": "9"}
    )
    assert weeks.status_code == 400
    assert "A pause is 1, 2, 4 weeks, not &#39;9&#39;." in weeks.text
    nobody = roster.rosa.post(
        "/readers/unsubscribe", data={"csrf": csrf, "email": "nobody@example.org"}
    )
    assert nobody.status_code == 400
    assert "nobody@example.org is not on the list" in nobody.text
    opted_out = roster.rosa.post(
        "/readers/pause", data={"csrf": csrf, "email": "R3000@example.org", "weeks": "1"}
    )
    assert opted_out.status_code == 400
    assert "is unsubscribed; only a reader getting editions pauses" in opted_out.text
