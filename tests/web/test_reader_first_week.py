"""A reader's first week over real HTTP: the welcome mail (once per confirmation), a time zone
from the browser and the preference page, the privacy link everywhere, a friendly second
click on a used confirmation link, topics kept on resubscribe, the forward line, and the
archive's own image copies.

A real uvicorn server in a thread, a real SQLite file, the memory backend (SMTP on a closed
port for the failure case); only the clock is frozen.
"""

from __future__ import annotations

import json
import re
import socket
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from digest.app import App
from digest.backends import memory
from digest.models import SubscriberState
from digest.store.subscribers import Record, SubscriberStore
from digest.testing.http import FixtureServer
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import BASE, SECRET, Clock, Project, loopback_client
from photos import photo

S = SubscriberState
PRIVACY = "https://news.example.org/privacy"
SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    """)


@dataclass
class Site:
    project: Project
    app: App
    clock: Clock
    http: httpx.Client

    def list(self) -> SubscriberStore:
        return SubscriberStore(self.app.store)

    def record(self, email: str) -> Record:
        found = self.list().get(email)
        assert found is not None, email
        return found

    def sign_up(self, email: str, **extra: object) -> httpx.Response:
        """POST the form, then drain the queue (as `digest serve` does every second)."""
        answer = self.http.post("/subscribe", data={"email": email, "website": "", **extra})
        self.app.readers.pages({"DIGEST_SECRET": SECRET}).drain()
        return answer

    def subscribed(self, email: str, **extra: object) -> httpx.Response:
        assert self.sign_up(email, **extra).status_code == 200
        done = self.http.post(confirm_path(email))
        assert done.status_code == 200, done.text
        return done


def mails_to(email: str, subject: str = "") -> list[EmailMessage]:
    out = []
    for envelope in memory.outbox:
        msg = message_from_bytes(envelope.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if envelope.recipient == email and subject in str(msg["Subject"]):
            out.append(msg)
    return out


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def confirm_path(email: str) -> str:
    [mail] = mails_to(email, "Confirm")[-1:]
    found = re.search(rf"{re.escape(BASE)}(/confirm/\S+)", body(mail, "plain"))
    assert found
    return found.group(1)


def local(link: str) -> str:
    assert link.startswith(BASE), link
    return link[len(BASE) :]


def serve(
    project: Project,
    extra: str = "",
    *,
    backend: str = "memory",
    images: str = "hotlink",
    sources: str | None = None,
) -> Iterator[Site]:
    options = {}
    if backend == "smtp":  # nothing listens there: every mail fails to go
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            options = {"host": "127.0.0.1", "port": sock.getsockname()[1]}
    extra = f"{SIGNUP}images:\n  mode: {images}\n{extra}"
    project.write_config(backend, options, extra=extra, sources=sources)
    text = project.config.read_text(encoding="utf-8")
    zone = "  timezone: Europe/Berlin\n"
    project.config.write_text(text.replace(zone, f"{zone}  privacy_url: {PRIVACY}\n", 1))
    clock = Clock()
    app = App(project.config, clock=clock)
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        yield Site(project, app, clock, http)
    app.close()


@pytest.fixture
def site(project: Project) -> Iterator[Site]:
    yield from serve(project)


def flat(text: str) -> str:
    """Text with its wrapping undone (the text part is wrapped at 72 columns)."""
    return " ".join(text.split())


def send_edition(project: Project) -> int:
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = int(json.loads(built.stdout)["id"])
    assert project.cli("approve", str(edition), "--by", "Rosa").exit_code == 0
    sent = project.cli("send", str(edition))
    assert sent.exit_code == 0, sent.output
    return edition


# the welcome mail -------------------------------------------------------------------------


def test_confirming_mails_one_welcome_saying_when_editions_come_with_signed_links(
    site: Site,
) -> None:
    site.subscribed(
        "nora@example.com", name="Nora", topics=["Technology"], timezone="America/New_York"
    )
    [welcome] = mails_to("nora@example.com", "Welcome")
    assert welcome["Subject"] == "Welcome to The Morning Brief"
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = flat(body(welcome, "plain"))
    assert "Welcome, Nora!" in text
    assert "as nora@example.com, with Technology." in text
    # The schedule (07:00 Europe/Berlin, every day) on her clock: 01:00 in New York.
    assert "Editions come every day at 01:00 (America/New_York time)." in text
    assert "The first one arrives on Tuesday, 24 November 2026 at 01:00." in text
    html = body(welcome, "html")
    assert "Editions come every day at 01:00 (America/New_York time)." in flat(html)
    links = dict(
        re.findall(r"(Choose topics and time zone|Read past editions|Unsubscribe): (\S+)", text)
    )
    assert links["Read past editions"] == f"{BASE}/archive/"
    for label, heading in (
        ("Choose topics and time zone", "Your preferences"),
        ("Unsubscribe", "Unsubscribe"),
    ):
        link = links[label]
        assert f'href="{link}"' in html
        page = site.http.get(local(link))  # signed: it opens her own page
        assert page.status_code == 200
        assert heading in page.text
        assert "nora@example.com" in page.text
        forged = site.http.get(local(link)[:-3] + "xyz")
        assert forged.status_code == 400
    assert welcome["List-Unsubscribe"] == f"<{links['Unsubscribe']}>"
    # A second click on the confirmation link confirms nothing new and mails nothing.
    again = site.http.post(confirm_path("nora@example.com"))
    assert again.status_code == 200
    assert len(mails_to("nora@example.com", "Welcome")) == 1


def test_in_local_delivery_the_welcome_gives_the_send_time_on_the_readers_clock(
    project: Project,
) -> None:
    for site in serve(project, "schedule:\n  deliver_at: local\n"):
        site.subscribed("kenji@example.jp", timezone="Asia/Tokyo")
        [welcome] = mails_to("kenji@example.jp", "Welcome")
        text = flat(body(welcome, "plain"))
        assert "Editions come every day at 07:00 (Asia/Tokyo time)." in text
        # 06:00 UTC is 15:00 in Tokyo: today's 07:00 has passed there, tomorrow's is next.
        assert "The first one arrives on Wednesday, 25 November 2026 at 07:00." in text
        # ... and the schedule sends her a wave of her own at 07:00 Tokyo time.
        slot = site.app.schedule.next_slot(site.clock())
        assert "Asia/Tokyo" in {w.zone for w in slot.waves}


def test_the_welcome_mail_is_a_template_a_newsroom_can_override(project: Project) -> None:
    (project.root / "mine").mkdir()
    (project.root / "mine" / "welcome.txt.j2").write_text(
        "Hej {{ email }}! Första numret: {{ when.first }}.\n", encoding="utf-8"
    )
    for site in serve(project, "templates_dir: mine\n"):
        site.subscribed("ola@example.org")
        [welcome] = mails_to("ola@example.org", "Welcome")
        text = body(welcome, "plain")
        assert text == "Hej ola@example.org! Första numret: Tuesday, 24 November 2026 at 07:00.\n"
        assert "Editions come every day at 07:00" in flat(body(welcome, "html"))  # built-in


def test_a_welcome_mail_that_cannot_go_never_undoes_the_confirmation(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    for site in serve(project):
        site.sign_up("late@example.com")
        link = confirm_path("late@example.com")
    memory.clear()
    for site in serve(project, backend="smtp"):  # the mail server is down now
        done = site.http.post(link)
        assert done.status_code == 200
        assert "You are subscribed" in done.text
        record = site.list().get("late@example.com")
        assert record is not None
        assert record.state is S.ACTIVE
    assert memory.outbox == []
    assert "welcome mail not sent" in caplog.text


# a used confirmation link ---------------------------------------------------------------


def test_a_second_click_is_friendly_while_a_forged_or_stale_link_is_still_refused(
    site: Site,
) -> None:
    site.subscribed("nora@example.com")
    link = confirm_path("nora@example.com")
    for answer in (site.http.get(link), site.http.post(link)):
        assert answer.status_code == 200
        assert "You’re already confirmed" in answer.text
        assert 'class="notice"' in answer.text
        assert 'class="problem"' not in answer.text
    forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    for answer in (site.http.get(forged), site.http.post(forged)):
        assert answer.status_code == 400
        assert "Link not valid" in answer.text
    # Once she has left, the used link says so plainly and confirms nothing.
    site.list().opt_out(
        "nora@example.com", reason="unsubscribed", now=site.clock(), consent=("u", "link", "", "")
    )
    used = site.http.post(link)
    assert used.status_code == 410
    assert "Link already used" in used.text
    assert site.record("nora@example.com").state is S.UNSUBSCRIBED


# time zones -------------------------------------------------------------------------------


def test_a_sign_up_stores_the_browsers_zone_when_it_is_a_real_one(site: Site) -> None:
    site.subscribed("kenji@example.jp", timezone="Asia/Tokyo")
    made_up = site.sign_up("mars@example.org", timezone="Mars/Olympus_Mons")
    assert made_up.status_code == 200  # a guess is never refused, only not kept
    assert site.http.post(confirm_path("mars@example.org")).status_code == 200
    zones = {e: site.record(e).timezone for e in ("kenji@example.jp", "mars@example.org")}
    assert zones == {"kenji@example.jp": "Asia/Tokyo", "mars@example.org": ""}


def test_the_preference_page_offers_time_zones_and_checks_the_choice(site: Site) -> None:
    site.subscribed("kenji@example.jp", timezone="Asia/Tokyo")
    [welcome] = mails_to("kenji@example.jp", "Welcome")
    prefs = local(re.findall(rf"{re.escape(BASE)}/p/\S+", body(welcome, "plain"))[0])
    page = site.http.get(prefs)
    assert '<select id="timezone" name="timezone"' in page.text
    assert "<option selected>Asia/Tokyo</option>" in page.text
    assert "<option>Europe/Rome</option>" in page.text
    assert "Etc/GMT+5" not in page.text  # only zones people live in

    def save(zone: str) -> httpx.Response:
        return site.http.post(prefs, data={"pause": "0", "name": "", "timezone": zone})

    assert save("Europe/Rome").status_code == 303
    assert site.record("kenji@example.jp").timezone == "Europe/Rome"
    for bad in ("Evil/Zone", "../../etc/passwd", "Etc/GMT+5"):
        refused = save(bad)
        assert refused.status_code == 400
        assert "Not saved" in refused.text
        assert "choose a zone from the list" in refused.text
    assert site.record("kenji@example.jp").timezone == "Europe/Rome"
    assert save("").status_code == 303  # back to the publication's zone
    assert site.record("kenji@example.jp").timezone == ""


# resubscribing ----------------------------------------------------------------------------


def test_unsubscribing_then_subscribing_again_keeps_the_topics(site: Site) -> None:
    site.subscribed("nora@example.com", topics=["Technology"])
    [welcome] = mails_to("nora@example.com", "Welcome")
    prefs = local(re.findall(rf"{re.escape(BASE)}/p/\S+", body(welcome, "plain"))[0])
    page = site.http.get(prefs)
    leave = re.search(r'<form method="post" action="(/u/[^"]+)">', page.text)
    assert leave
    assert site.http.post(leave.group(1)).status_code == 200
    page = site.http.get(prefs)
    again = re.search(r'href="(/subscribe\?[^"]*)">Subscribe again', page.text)
    assert again
    assert again.group(1) == "/subscribe?topics=Technology"
    form = site.http.get(again.group(1))
    assert re.search(r'value="Technology"[^>]*checked', form.text)
    assert not re.search(r'value="World"[^>]*checked', form.text)
    # Even with nothing ticked (a sign-up form elsewhere), her topics come back.
    site.sign_up("nora@example.com")
    assert "with Technology" in site.http.get(confirm_path("nora@example.com")).text
    assert site.http.post(confirm_path("nora@example.com")).status_code == 200
    record = site.list().get("nora@example.com")
    assert record is not None
    assert (record.state, record.topics) == (S.ACTIVE, ("Technology",))
    assert len(mails_to("nora@example.com", "Welcome")) == 2  # one per confirmation


# privacy link, forward line ---------------------------------------------------------------


def test_the_privacy_policy_is_linked_from_every_reader_page_and_mail(site: Site) -> None:
    link = f'href="{PRIVACY}"'
    pages = {"subscribe": site.http.get("/subscribe")}
    pages["sent"] = site.http.post(
        "/subscribe", data={"email": "nora@example.com", "website": "", "topics": "World"}
    )
    site.app.readers.pages({"DIGEST_SECRET": SECRET}).drain()
    [confirmation] = mails_to("nora@example.com", "Confirm")
    confirm = confirm_path("nora@example.com")
    pages["confirm"] = site.http.get(confirm)
    pages["confirmed"] = site.http.post(confirm)
    pages["again"] = site.http.post(confirm)
    pages["bad link"] = site.http.get("/confirm/forged")
    [welcome] = mails_to("nora@example.com", "Welcome")
    prefs = local(re.findall(rf"{re.escape(BASE)}/p/\S+", body(welcome, "plain"))[0])
    pages["preferences"] = site.http.get(prefs)
    edition = send_edition(site.project)
    pages["archive"] = site.http.get("/archive/")
    pages["archive edition"] = site.http.get(f"/archive/{edition}")
    [mail] = [
        m
        for m in mails_to("nora@example.com")
        if "Confirm" not in str(m["Subject"]) and "Welcome" not in str(m["Subject"])
    ]
    leave = re.findall(rf"{re.escape(BASE)}(/u/\S+)", body(mail, "plain"))[0]
    pages["unsubscribe"] = site.http.get(leave)
    pages["unsubscribed"] = site.http.post(leave)
    for name, page in pages.items():
        assert link in page.text, f"{name} ({page.status_code}) has no privacy link"
    for name, msg in (("confirmation", confirmation), ("welcome", welcome), ("edition", mail)):
        assert link in body(msg, "html"), name
        assert f"Privacy policy:\n{PRIVACY}\n" in body(msg, "plain"), name
    # Sign-up is on and email.signup_url is not set: the forward line links our own page.
    assert f"Forwarded this? Subscribe:\n{BASE}/subscribe\n" in body(mail, "plain")
    assert f'Forwarded this? <a class="fl" href="{BASE}/subscribe">' in body(mail, "html")


# the archive's images -------------------------------------------------------------------

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Photo Desk</title><link>https://photos.example.org/</link><description>d</description>
<item><title>Harbour ferries return after the storm</title>
<link>https://photos.example.org/ferries</link><guid>ferries</guid>
<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate>
<description>The first boats left at dawn, full of commuters glad to be back.</description>
<media:content url="{photo}" medium="image" type="image/jpeg"><media:description>A ferry
</media:description></media:content></item>
</channel></rss>"""


def test_an_archive_page_shows_digests_own_copy_of_the_image(project: Project) -> None:
    with FixtureServer() as origin:
        big = photo(2400, 1350)
        origin.route("/big.jpg", big, headers={"Content-Type": "image/jpeg"})
        feed = FEED.format(photo=origin.url("/big.jpg")).encode()
        origin.route("/photos.rss", feed, headers={"Content-Type": "application/rss+xml"})
        sources = (
            f"sources:\n  - name: Photo Desk\n    url: {origin.url('/photos.rss')}\n"
            "    allow_private: true\n"
        )
        for site in serve(project, images="own", sources=sources):
            site.subscribed("nora@example.com")
            edition = send_edition(site.project)
            fetched = len(origin.requests)
            page = site.http.get(f"/archive/{edition}")
            assert page.status_code == 200
            img = re.search(r'<img class="lead-image" id="lead-image" src="([^"]+)"', page.text)
            assert img, page.text
            assert img.group(1).startswith("/img/")
            assert origin.url("/big.jpg") not in page.text  # never the source's original
            copy = site.http.get(img.group(1))
            assert copy.status_code == 200
            assert copy.headers["content-type"] == "image/jpeg"
            assert len(copy.content) < len(big)  # the resized rendition, not the photo
            assert len(origin.requests) == fetched  # showing the page fetched nothing there


def test_the_zone_and_the_welcome_work_on_sqlite_and_postgresql(
    project: Project, state_url: str
) -> None:
    project.state_url = state_url
    for site in serve(project):
        site.subscribed("kenji@example.jp", topics=["World"], timezone="Asia/Tokyo")
        assert site.http.post(confirm_path("kenji@example.jp")).status_code == 200  # again
        record = site.record("kenji@example.jp")
        assert (record.state, record.timezone, record.topics) == (
            S.ACTIVE,
            "Asia/Tokyo",
            ("World",),
        )
        [welcome] = mails_to("kenji@example.jp", "Welcome")
        assert "every day at 15:00 (Asia/Tokyo time)" in flat(body(welcome, "plain"))
