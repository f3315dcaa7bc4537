"""Acceptance: a reader signs up, confirms, gets the next edition, changes topics, reads it
on the web; once over HTTP and once in Chromium at 375 px.

`digest serve` runs as a real subprocess on 127.0.0.1, sharing the state file with the CLI
commands of the test as in production; mail goes through the configured backend into a
Maildir outbox; pages are fetched over real HTTP (httpx) and in Debian's headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from digest.testing.http import FixtureServer
from digest.testing.mail import parse_clean

from conftest import BASE, FIXTURES, NOW, SECRET, Project, wait_for

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    images:
      mode: hotlink
    """)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Newsroom:
    """A project with sign-up open, served by `digest serve` at ``url``."""

    project: Project
    url: str
    next_feeds: FixtureServer

    @property
    def outbox(self) -> Path:
        return self.project.root / ".digest" / "outbox" / "new"

    def mails(self, to: str) -> list[EmailMessage]:
        """Every message in the outbox to ``to``, oldest first."""
        found = []
        if not self.outbox.exists():  # nothing mailed yet
            return found
        for path in sorted(self.outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns):
            msg = parse_clean(path.read_bytes())
            if msg["To"].addresses[0].addr_spec == to:
                found.append(msg)
        return found

    def local(self, link: str) -> str:
        """A public link (publication.base_url, the proxy in production) on this server."""
        assert link.startswith(BASE), link
        return self.url + link[len(BASE) :]

    def listed(self, *args: str) -> list[dict[str, object]]:
        result = self.project.cli("subscribers", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        rows: list[dict[str, object]] = json.loads(result.stdout)
        return rows

    def send_next(self) -> int:
        built = self.project.cli("build", "--json")
        assert built.exit_code == 0, built.output
        edition = int(json.loads(built.stdout)["id"])
        assert self.project.cli("approve", str(edition), "--by", "Rosa").exit_code == 0
        sent = self.project.cli("send", str(edition))
        assert sent.exit_code == 0, sent.output
        return edition


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def link_after(text: str, label: str) -> str:
    found = re.search(rf"^{label}:?\s+(https://\S+)", text, re.M)
    assert found, f"no {label} link in:\n{text}"
    return found.group(1)


@pytest.fixture
def newsroom(project: Project, tmp_path: Path) -> Iterator[Newsroom]:
    project.write_config("outbox", {"path": ".digest/outbox"}, extra=SIGNUP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW, DIGEST_CONFIG=str(project.config))
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, what="digest serve to listen")
        with FixtureServer(FIXTURES / "readers") as feeds:
            yield Newsroom(project, f"http://127.0.0.1:{port}", feeds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def next_sources(room: Newsroom) -> None:
    """Fresh stories for the next edition, in both sections."""
    sources = f"sources:\n  - name: Next Desk\n    url: {room.next_feeds.url('/next.rss')}\n"
    room.project.write_config(
        "outbox",
        {"path": ".digest/outbox"},
        extra=SIGNUP,
        sources=sources + "    allow_private: true\n",
    )


@pytest.mark.slow
def test_sign_up_confirm_receive_change_topics_and_read_on_the_web(newsroom: Newsroom) -> None:
    with httpx.Client(follow_redirects=False, timeout=30) as http:
        _sign_up_and_read(newsroom, http)


def _sign_up_and_read(room: Newsroom, http: httpx.Client) -> None:
    form = http.get(room.url + "/subscribe")
    assert form.status_code == 200
    for topic in ("World", "Technology"):
        assert f'name="topics" value="{topic}"' in form.text
    assert "set-cookie" not in form.headers

    answer = http.post(
        room.url + "/subscribe",
        data={
            "email": "nora@example.com",
            "name": "Nora Lind",
            "topics": ["Technology"],
            "website": "",
        },
    )
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    # The answer only queued the sign-up; `digest serve`'s drain mails it a moment later.
    wait_for(lambda: room.mails("nora@example.com"), what="the confirmation mail")
    [confirmation] = room.mails("nora@example.com")
    link = link_after(text_of(confirmation), r"Open this link and press the button to confirm")
    assert room.listed() == []  # not a subscriber before confirming
    assert [r["email"] for r in room.listed("--state", "pending")] == ["nora@example.com"]

    page = http.get(room.local(link))  # what a link scanner does: it changes nothing
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert http.head(room.local(link)).status_code == 200
    assert room.listed() == []

    done = http.post(room.local(link))
    assert done.status_code == 200
    assert "You are subscribed" in done.text
    [nora] = room.listed()
    assert (nora["email"], nora["topics"], nora["state"]) == (
        "nora@example.com",
        ["Technology"],
        "active",
    )

    # The next edition reaches her: her topic variant (the lead, then Technology only).
    first = room.send_next()
    edition = room.mails("nora@example.com")[-1]
    text = text_of(edition)
    assert "Chipmakers race" in text
    assert "Ultra-Orthodox conscription" not in text  # a World story she did not choose
    assert text.startswith("View in browser: ")
    assert "You signed up on 24 November 2026." in text

    # "Manage preferences" lists the sections with her choice; she changes it.
    preferences = link_after(text, "Manage preferences")
    page = http.get(room.local(preferences))
    assert page.status_code == 200
    assert re.search(r'value="Technology"[^>]*checked', page.text)
    assert re.search(r'value="World"(?![^>]*checked)', page.text)
    saved = http.post(
        room.local(preferences), data={"topics": ["World"], "pause": "0", "name": "Nora Lind"}
    )
    assert saved.status_code == 303
    page = http.get(room.url + saved.headers["location"])
    assert "Saved." in page.text
    assert re.search(r'value="World"[^>]*checked', page.text)
    assert [r["topics"] for r in room.listed() if r["email"] == "nora@example.com"] == [["World"]]

    # ... and the next edition's variant follows: World stories, no Technology.
    next_sources(room)
    room.send_next()
    text = text_of(room.mails("nora@example.com")[-1])
    assert "Ceasefire talks move to Geneva" in text
    assert "Election observers arrive" in text
    assert "Open-source chip design" not in text

    # "View in browser" opens the edition's page: every story, nobody's address.
    view = http.get(room.local(link_after(text_of(edition), "View in browser")))
    assert view.status_code == 200
    assert f"/archive/{first}" in str(view.url)
    for story in ("Putin poaches the neighbors", "Chipmakers race", "Ultra-Orthodox"):
        assert story in view.text
    for private in ("nora", "Nora", "__DIGEST_", "/u/", "/p/"):
        assert private not in view.text
    index = http.get(room.url + "/archive/")
    assert f'href="/archive/{first}"' in index.text
    feed = http.get(room.url + "/archive/feed.xml")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert "nora" not in feed.text


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # A missing /usr/bin/chromium fails here (CI installs it); it is never skipped.
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: $DIGEST_SCREENSHOTS, or the test's temporary folder."""
    folder = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Every control a thumb uses: inputs, buttons, checkbox and radio rows, links made buttons.
_TARGETS = "input:not([type=hidden]):not(#website), button, label.check, a.button-link"


def check_phone_layout(page: Page, name: str) -> None:
    """No horizontal scroll, and every control at least 44 px tall, at the page's width."""
    # After a form's POST the new page's elements can be there before its stylesheets.
    page.wait_for_load_state("load")
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name}: scrolls sideways ({scroll} > {width} px)"
    small = page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
            .filter(e => e.offsetParent !== null && !e.closest('.check, .hp'))
            .concat([...document.querySelectorAll('label.check')])
            .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect().height])
            .filter(([, h]) => h < 44)""",
        _TARGETS,
    )
    assert small == [], f"{name}: controls under 44 px: {small}"


def shoot(browser: Browser, url: str, folder: Path, name: str) -> None:
    """The page at 375 px (checked) and at desktop width, saved for review."""
    for width, height in ((375, 812), (1280, 900)):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        if width == 375:
            check_phone_layout(page, name)
        page.screenshot(path=str(folder / f"readers-{name}-{width}.png"), full_page=True)
        page.close()


@pytest.mark.slow
def test_a_reader_at_375_px(newsroom: Newsroom, browser: Browser, tmp_path: Path) -> None:
    room, folder = newsroom, screenshots(tmp_path)
    phone = browser.new_page(viewport={"width": 375, "height": 812})
    phone.goto(room.url + "/subscribe")
    check_phone_layout(phone, "subscribe")
    phone.fill("#email", "not an address")
    phone.click("#subscribe")
    expect(phone.locator("#error")).to_be_visible()
    check_phone_layout(phone, "subscribe-error")
    phone.screenshot(path=str(folder / "readers-subscribe-error-375.png"), full_page=True)
    phone.fill("#email", "ola@example.org")
    phone.fill("#name", "Ola Nordmann")
    phone.check("input[value=World]")
    phone.click("#subscribe")
    expect(phone.locator("h1")).to_have_text("Check your inbox")
    check_phone_layout(phone, "sent")
    phone.screenshot(path=str(folder / "readers-sent-375.png"), full_page=True)

    wait_for(lambda: room.mails("ola@example.org"), what="the confirmation mail")
    mail = room.mails("ola@example.org")[0]
    link = link_after(text_of(mail), r"Open this link and press the button to confirm")
    html = mail.get_body(("html",))
    assert html is not None
    for width in (375, 1280):  # the confirmation mail itself, as a mail client shows it
        view = browser.new_page(viewport={"width": width, "height": 700})
        view.set_content(str(html.get_content()))
        assert view.evaluate("document.documentElement.scrollWidth") <= width
        view.screenshot(path=str(folder / f"readers-confirmation-mail-{width}.png"))
        view.close()
    shoot(browser, room.local(link), folder, "confirm")
    phone.goto(room.local(link))
    phone.click("#confirm")
    expect(phone.locator("h1")).to_have_text("You are subscribed")
    check_phone_layout(phone, "confirmed")
    phone.screenshot(path=str(folder / "readers-confirmed-375.png"), full_page=True)

    phone.click("#preferences")
    expect(phone.locator("h1")).to_have_text("Your preferences")
    expect(phone.locator("input[value=World]")).to_be_checked()
    phone.check("input[value=Technology]")
    phone.check("input[name=pause][value='2']")
    phone.click("#save")
    expect(phone.locator("#message")).to_contain_text("Saved.")
    expect(phone.locator("#paused")).to_contain_text("Paused until 8 December 2026")
    check_phone_layout(phone, "preferences")
    shoot(browser, phone.url, folder, "preferences")
    [ola] = room.listed("--state", "paused")
    assert ola["topics"] == ["World", "Technology"]

    room.project.cli("subscribers", "add", "anna@example.org", "--name", "Anna")
    edition = room.send_next()
    shoot(browser, f"{room.url}/archive/{edition}", folder, "archive-edition")
    shoot(browser, f"{room.url}/archive/", folder, "archive-index")
    shoot(browser, room.url + "/subscribe", folder, "subscribe")
    text = text_of(room.mails("anna@example.org")[-1])
    unsubscribe = re.search(r"https://news\.example\.org/u/\S+", text)
    assert unsubscribe
    shoot(browser, room.local(unsubscribe.group(0)), folder, "unsubscribe")
    phone.goto(room.local(unsubscribe.group(0)))
    phone.click("#unsubscribe")
    expect(phone.locator("#message")).to_contain_text("is unsubscribed")
    check_phone_layout(phone, "unsubscribed")
    phone.close()
    assert room.listed("--state", "unsubscribed")[0]["email"] == "anna@example.org"
