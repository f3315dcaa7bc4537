"""The readers' pages over real HTTP: no enumeration, throttles, honeypot, double opt-in,
preferences, archive privacy, unsubscribe, and every lookup by key.

A real uvicorn server in a thread, a real SQLite file, the memory backend for mail; only the
clock is frozen (and moved) to test expiry and pauses.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import event

from digest.app import App
from digest.backends import memory
from digest.models import SubscriberState
from digest.store import Store
from digest.store.subscribers import SubscriberStore
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import BASE, EDITORS, SECRET, Clock, Project, loopback_client, sign_in_by_link

SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    images:
      mode: hotlink
    """)


@dataclass
class Site:
    project: Project
    app: App
    url: str
    clock: Clock
    http: httpx.Client

    def list(self) -> SubscriberStore:
        return SubscriberStore(self.app.store)

    def sign_up(self, email: str, **extra: object) -> httpx.Response:
        """POST the form, then drain the queue (as `digest serve` does every second)."""
        data = {"email": email, "name": "", "website": "", **extra}
        answer = self.http.post("/subscribe", data=data)
        self.drain()
        return answer

    def drain(self) -> list[str]:
        return self.app.readers.pages({"DIGEST_SECRET": SECRET}).drain()

    def state(self, email: str) -> SubscriberState | None:
        record = self.list().get(email)
        return record.state if record else None


def mails_to(email: str) -> list[EmailMessage]:
    out = []
    for envelope in memory.outbox:
        if envelope.recipient == email:
            msg = message_from_bytes(envelope.data, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
    return out


def text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def confirm_path(email: str) -> str:
    found = re.search(rf"{re.escape(BASE)}(/confirm/\S+)", text(mails_to(email)[-1]))
    assert found
    return found.group(1)


def serve(project: Project, clock: Clock, extra: str = "") -> Iterator[Site]:
    project.write_config(extra=SIGNUP + extra)
    app = App(project.config, clock=clock)
    environ = {"DIGEST_SECRET": SECRET}
    with (
        BackgroundServer(create_app(app, environ=environ)) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        yield Site(project, app, server.url, clock, http)
    app.close()


@pytest.fixture
def site(project: Project) -> Iterator[Site]:
    yield from serve(project, Clock())


def _subscribed(site: Site, email: str, **extra: object) -> None:
    assert site.sign_up(email, **extra).status_code == 200
    assert site.http.post(confirm_path(email)).status_code == 200


# sign-up --------------------------------------------------------------------------------


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(site: Site) -> None:
    assert site.project.cli("subscribers", "sync").exit_code == 0  # anna, ben, dmitri
    site.app.store.suppress(
        "ben@example.net", reason="hard bounce: 550", now=site.clock(), kind=SubscriberState.BOUNCED
    )
    site.list().opt_out(
        "dmitri@example.org",
        reason="unsubscribed",
        now=site.clock(),
        consent=("unsubscribe", "link", "", ""),
    )
    answers = [
        site.sign_up(email)
        for email in (
            "anna@example.org",
            "ben@example.net",
            "dmitri@example.org",
            "new@example.com",
        )
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    # Active and bounced addresses get no mail; a new or unsubscribed reader a confirmation.
    assert sorted(e.recipient for e in memory.outbox) == ["dmitri@example.org", "new@example.com"]
    assert site.state("anna@example.org") is SubscriberState.ACTIVE


def test_honeypot_invalid_address_and_closed_sign_up(project: Project) -> None:
    for s in serve(project, Clock()):
        assert s.sign_up("robot@example.com", website="https://spam.example").status_code == 200
        bad = s.sign_up("not an address", topics=["World"])
        assert bad.status_code == 400
        assert "Enter an e-mail address" in bad.text
        assert re.search(r'value="World"[^>]*checked', bad.text)  # the form keeps the choice
        assert memory.outbox == []
        assert s.list().get("robot@example.com") is None
    project.write_config(extra="")
    app = App(project.config, clock=Clock())
    with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
        assert httpx.get(server.url + "/subscribe").status_code == 404
        assert httpx.post(server.url + "/subscribe", data={"email": "a@b.org"}).status_code == 404
    app.close()


def test_redirect_url_after_signing_up(project: Project) -> None:
    thanks = "  redirect_url: https://news.example.org/thanks\n"
    project.write_config(extra=SIGNUP.replace("signup:\n", "signup:\n" + thanks))
    app = App(project.config, clock=Clock())
    with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
        answer = httpx.post(server.url + "/subscribe", data={"email": "a@example.org"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "https://news.example.org/thanks"
        assert app.readers.pages({"DIGEST_SECRET": SECRET}).drain() == ["mailed"]
    app.close()
    assert len(mails_to("a@example.org")) == 1


def test_limits_per_address_and_per_client(site: Site) -> None:
    for _ in range(3):
        assert site.sign_up("same@example.com").status_code == 200
    assert len(mails_to("same@example.com")) == 3
    assert site.sign_up("same@example.com").status_code == 429  # signup.per_address
    assert site.sign_up("other@example.com").status_code == 200
    refused = site.sign_up("third@example.com")  # the sixth from this client in minutes
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert mails_to("third@example.com") == []


def test_confirmations_per_address_per_day_whatever_the_window(project: Project) -> None:
    clock = Clock()
    for s in serve(project, clock):
        for _ in range(4):
            assert s.sign_up("daily@example.com").status_code == 200
            clock.now += timedelta(minutes=11)  # a new window for the form's limits
        assert len(mails_to("daily@example.com")) == 3  # the fourth is not mailed
        assert s.drain() == []


# double opt-in --------------------------------------------------------------------------


def test_a_get_of_the_link_changes_nothing_its_post_confirms_once(site: Site) -> None:
    site.sign_up("nora@example.com", name="Nora", topics=["Technology", "Unknown"])
    link = confirm_path("nora@example.com")
    page = site.http.get(link)
    assert page.status_code == 200
    assert "nora@example.com" in page.text
    assert site.state("nora@example.com") is SubscriberState.PENDING
    tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    assert site.http.post(tampered).status_code == 400
    assert site.state("nora@example.com") is SubscriberState.PENDING
    done = site.http.post(link)
    assert done.status_code == 200
    record = site.list().get("nora@example.com")
    assert record is not None
    assert (record.state, record.name, record.topics) == (
        SubscriberState.ACTIVE,
        "Nora",
        ("Technology",),
    )
    assert site.http.post(link).status_code == 410  # used
    actions = [c["action"] for c in site.list().consents(record.id)]
    assert actions == ["subscribe", "confirm"]


def test_confirmation_links_expire_and_unconfirmed_sign_ups_are_forgotten(site: Site) -> None:
    site.sign_up("late@example.com")
    link = confirm_path("late@example.com")
    site.clock.now += timedelta(days=8)
    expired = site.http.post(link)
    assert expired.status_code == 400
    assert "expired" in expired.text
    assert site.app.readers.sync().mode == "add"  # a sync forgets the stale sign-up
    assert site.list().get("late@example.com") is None


def test_an_unsubscribed_reader_may_sign_up_again(site: Site) -> None:
    _subscribed(site, "back@example.com")
    site.list().opt_out(
        "back@example.com",
        reason="unsubscribed",
        now=site.clock(),
        consent=("unsubscribe", "link", "", ""),
    )
    assert site.state("back@example.com") is SubscriberState.UNSUBSCRIBED
    _subscribed(site, "back@example.com")
    assert site.state("back@example.com") is SubscriberState.ACTIVE
    assert site.list().suppression("back@example.com") is None


# preferences ------------------------------------------------------------------------------


def _preferences_path(site: Site, email: str) -> str:
    done = site.http.post(confirm_path(email))
    found = re.search(r'href="(/p/[^"]+)"', done.text)
    assert found
    return found.group(1)


def test_pause_resumes_by_itself_and_topics_outside_the_offer_are_ignored(site: Site) -> None:
    site.sign_up("pia@example.com", topics=["World"])
    link = _preferences_path(site, "pia@example.com")
    saved = site.http.post(link, data={"topics": ["Technology", "Sport"], "pause": "2"})
    assert saved.status_code == 303
    record = site.list().get("pia@example.com")
    assert record is not None
    assert (record.state, record.topics) == (SubscriberState.PAUSED, ("Technology",))
    receiving = [s.email for s in site.app.readers.receiving()]
    assert "pia@example.com" not in receiving
    page = site.http.get(link)
    assert "Paused until 8 December 2026" in page.text
    site.clock.now += timedelta(weeks=2, minutes=1)
    assert "pia@example.com" in [s.email for s in site.app.readers.receiving()]
    assert ("Technology",) in site.app.readers.selections()
    site.http.post(link, data={"topics": [], "pause": "0"})
    record = site.list().get("pia@example.com")
    assert record is not None
    assert (record.state, record.topics) == (SubscriberState.ACTIVE, ())


def test_bad_and_erased_preference_links_are_refused(site: Site) -> None:
    site.sign_up("gone@example.com")
    link = _preferences_path(site, "gone@example.com")
    assert site.http.get(link[:-3] + "xyz").status_code == 400
    assert site.project.cli("subscribers", "erase", "gone@example.com", "--yes").exit_code == 0
    refused = site.http.get(link)
    assert refused.status_code == 400
    assert "no longer on the list" in refused.text
    assert site.http.post(link, data={"topics": ["World"]}).status_code == 400


def test_unsubscribe_from_the_preference_page(site: Site) -> None:
    site.sign_up("uma@example.com")
    page = site.http.get(_preferences_path(site, "uma@example.com"))
    action = re.search(r'action="(/u/[^"]+)"', page.text)
    assert action
    assert site.http.get(action.group(1)).status_code == 200
    assert site.state("uma@example.com") is SubscriberState.ACTIVE  # a GET changes nothing
    done = site.http.post(action.group(1), data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert site.state("uma@example.com") is SubscriberState.UNSUBSCRIBED
    assert site.list().suppression("uma@example.com") == "unsubscribed"


def test_reader_pages_set_no_cookies(site: Site) -> None:
    site.sign_up("cookie@example.com")
    link = confirm_path("cookie@example.com")
    for response in (
        site.http.get("/subscribe"),
        site.http.get(link),
        site.http.post(link),
        site.http.get("/archive/"),
        site.http.get("/archive/feed.xml"),
    ):
        assert "set-cookie" not in response.headers, response.url


# archive --------------------------------------------------------------------------------


def _send(site: Site) -> int:
    assert site.project.cli("build").exit_code == 0
    assert site.project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert site.project.cli("send", "1").exit_code == 0
    return 1


def test_only_sent_editions_are_published(site: Site) -> None:
    assert site.project.cli("build").exit_code == 0
    assert site.http.get("/archive/1").status_code == 404  # pending: not public
    assert "No edition has been sent yet" in site.http.get("/archive/").text
    assert site.project.cli("approve", "1", "--by", "Rosa").exit_code == 0
    assert site.http.get("/archive/1").status_code == 404  # approved, not sent
    assert site.project.cli("send", "1").exit_code == 0
    page = site.http.get("/archive/1")
    assert page.status_code == 200
    assert "Putin poaches the neighbors" in page.text
    assert "anna@example.org" not in page.text
    feed = ET.fromstring(site.http.get("/archive/feed.xml").content)  # noqa: S314 (our own)
    atom = "{http://www.w3.org/2005/Atom}"
    [entry] = feed.findall(f"{atom}entry")
    assert entry.findtext(f"{atom}id") == f"{BASE}/archive/1"
    assert "Putin poaches" in (entry.findtext(f"{atom}content") or "")
    assert site.http.get("/archive").status_code == 308


def test_a_private_archive_opens_only_with_the_edition_key_or_for_editors(
    project: Project,
) -> None:
    for s in serve(project, Clock(), extra="archive:\n  public: false\n" + EDITORS):
        _send(s)
        assert s.http.get("/archive/1").status_code == 404
        assert s.http.get("/archive/").status_code == 404
        assert s.http.get("/archive/feed.xml").status_code == 404
        view = re.search(r"^View in browser: (\S+)", text(mails_to("anna@example.org")[0]), re.M)
        assert view
        path = view.group(1)[len(BASE) :]
        assert "?k=" in path
        assert s.http.get(path).status_code == 200
        assert s.http.get(path.replace("/archive/1", "/archive/2")).status_code == 404
        sign_in_by_link(s.http, "rosa@news.example.org")
        assert s.http.get("/archive/1").status_code == 200
        assert s.http.get("/archive/").status_code == 200


# every reader page is a lookup by key ----------------------------------------------------


def test_reader_pages_never_scan_a_readers_table(site: Site) -> None:
    statements: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        statements.append((statement, params))

    _send(site)
    site.sign_up("scan@example.com")
    link = confirm_path("scan@example.com")
    event.listen(site.app.store.engine, "before_cursor_execute", record)
    try:
        site.sign_up("scan2@example.com")
        site.http.get(link)
        prefs = _preferences_path_after(site, link)
        site.http.get(prefs)
        site.http.post(prefs, data={"topics": ["World"], "pause": "0"})
        unsubscribe = re.search(r'action="(/u/[^"]+)"', site.http.get(prefs).text)
        assert unsubscribe
        site.http.get(unsubscribe.group(1))
        site.http.post(unsubscribe.group(1))
        for path in ("/archive/", "/archive/1", "/archive/feed.xml"):
            site.http.get(path)
    finally:
        event.remove(site.app.store.engine, "before_cursor_execute", record)
    store = Store(site.project.state)
    try:
        with store.reading() as conn:
            for statement, params in statements:
                if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                    continue
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()  # type: ignore[arg-type]
                scans = [
                    r[-1]
                    for r in plan
                    if re.match(r"SCAN (subscribers|suppressions|confirmations|consents)\b", r[-1])
                ]
                assert scans == [], (statement, scans)
    finally:
        store.close()
    assert len(statements) > 10


def _preferences_path_after(site: Site, link: str) -> str:
    found = re.search(r'href="(/p/[^"]+)"', site.http.post(link).text)
    assert found
    return found.group(1)


def test_reader_pages_carry_the_publications_name_not_the_desks_header(site: Site) -> None:
    page = site.http.get("/subscribe").text
    assert re.search(r"<title>[^<]+ · The Morning Brief</title>", page), page[:400]
    assert "Publication(" not in page
    assert 'class="top"' not in page  # the desk's bar belongs to the editors' pages
    assert page.count("<main") == 1
