"""Today (`/`): pending editions with their deadline, next slots, sending, sent, sources."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from digest.app import App
from digest.store.sources import Outcome, SourceState
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import EDITORS, SECRET, Clock, Project, loopback_client, sign_in_by_link

SETUP = EDITORS + '  deadline_minutes: 30\nschedule:\n  time: "07:47"\n'


@pytest.fixture
def today(project: Project) -> Iterator[tuple[Project, App, httpx.Client]]:
    project.write_config(extra=SETUP)
    assert project.cli("build").exit_code == 0
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        sign_in_by_link(http, "sam@news.example.org")
        yield project, app, http
    app.close()


def _section(page: str, heading: str) -> str:
    return page.split(f">{heading}</h2>", 1)[1].split("</section>", 1)[0]


def test_today_shows_what_needs_the_editor_and_what_comes_next(
    today: tuple[Project, App, httpx.Client],
) -> None:
    _, _, http = today
    page = http.get("/")
    assert page.status_code == 200
    now = _section(page.text, "Needs you now")
    assert "#1 · Tue 24 Nov, 07:47" in now
    assert "Approve by 07:17, in 17 min." in now
    assert "0 of 1 approval so far." in now
    assert 'href="/e/1"' in now
    upcoming = re.findall(
        r"<strong>(\w{3} \d+ \w{3}, \d\d:\d\d)</strong>", _section(page.text, "Next")
    )
    assert upcoming == ["Tue 24 Nov, 07:47", "Wed 25 Nov, 07:47", "Thu 26 Nov, 07:47"]
    assert "None of the 2 sources has failed 3 runs in a row." in page.text
    assert "Nothing is being sent right now." in page.text


def test_today_shows_failing_sources_sending_progress_and_sent_counts(
    today: tuple[Project, App, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, app, http = today
    failure = Outcome(name="Tech Wire", url="http://x.invalid/", ok=False, error="HTTP 503")
    for _ in range(3):  # fetch.failure_alert is 3
        SourceState(app.store).record([failure], now=app.now())
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    stop = threading.Event()
    stop.set()  # the send freezes the list, goes to sending, and stops before any message
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    report = app.sending.send(1, stop=stop)
    assert report.state.value == "sending"
    page = http.get("/").text
    assert "Tech Wire</strong> is failing: 3 times in a row." in page
    assert "HTTP 503" in page
    going = _section(page, "Going out")
    assert "Edition 1</a>: 0 of 3 done (0 sent)" in going
    assert '<progress max="3" value="0">' in going
    assert project.cli("send", "1").exit_code == 0
    sent = _section(http.get("/").text, "Sent")
    assert "Edition 1</a> · 2026-11-24 07:47: 3 sent" in sent


def test_today_lists_the_most_urgent_pending_edition_first(
    today: tuple[Project, App, httpx.Client],
) -> None:
    project, _, http = today
    later = project.cli("build", "--slot", "2026-11-25T07:47")  # built second, due a day later
    assert later.exit_code == 0, later.output
    now = _section(http.get("/").text, "Needs you now")
    assert re.findall(r"<strong>#(\d) ·", now) == ["1", "2"]


def test_sources_page_shows_health_last_items_and_last_error(
    today: tuple[Project, App, httpx.Client],
) -> None:
    _, app, http = today
    failure = Outcome(name="Tech Wire", url="http://x.invalid/", ok=False, error="HTTP 503")
    SourceState(app.store).record([failure], now=app.now())
    page = http.get("/sources")
    assert page.status_code == 200
    cards = dict(
        re.findall(r'data-name="([^"]+)">(.*?)</li>\n?(?=<li class="card|</ul>)', page.text, re.S)
    )
    assert set(cards) == {"World Desk", "Tech Wire"}
    assert '"badge sent status">healthy' in cards["World Desk"]
    assert "Haiti sets an election date" in cards["World Desk"]  # a last item
    assert "failing" in cards["Tech Wire"]
    assert "Last error (just now): HTTP 503" in cards["Tech Wire"]
    assert "Failed 1 time in a row." in cards["Tech Wire"]
    http.cookies.clear()
    assert http.get("/sources").headers["location"] == "/signin?next=/sources"
