"""Acceptance: a reader's first week in Debian's Chromium, at 375x812 and at 1280x800.

Sign up -> confirm -> the welcome mail (read from the outbox backend's Maildir) ->
preferences with a time zone -> paused -> resumed -> unsubscribed -> resubscribed with the
same topics, then the archive. On every page: no horizontal scroll, no console error, and
at 375 px every link and control at least 44 px tall. Screenshots of every page and mail go
to $DIGEST_SCREENSHOTS when set (else the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from digest.app import App
from digest.models import SubscriberState
from digest.store.subscribers import SubscriberStore
from digest.subscribers.links import preferences_url
from digest.testing.mail import parse_clean
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import BASE, SECRET, Clock, Project
from photos import photo

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PRIVACY = "https://news.example.org/privacy"
CONFIG = textwrap.dedent("""\
    signup:
      enabled: true
      topics: [World, Technology]
    images:
      mode: hotlink
    """)
S = SubscriberState
# Everything a thumb taps: links, fields, buttons, the rows of checkboxes and radios.
TARGETS = "a, input:not([type=hidden]), select, button, label.check"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


class Reader:
    """One browser tab of a reader, checking and photographing every page it shows."""

    def __init__(self, page: Page, width: int, folder: Path, base: str) -> None:
        self.page, self.width, self.folder, self.base = page, width, folder, base
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def local(self, link: str) -> str:
        assert link.startswith(BASE), link
        return self.base + link[len(BASE) :]

    def check(self, name: str) -> None:
        """No sideways scroll; at 375 px every target 44 px tall; privacy linked; a shot."""
        page = self.page
        page.wait_for_load_state("load")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= self.width, f"{name}: scrolls sideways ({scroll} > {self.width} px)"
        if self.width == 375:
            small = page.evaluate(
                """(sel) => [...document.querySelectorAll(sel)]
                    .filter(e => e.offsetParent !== null && !e.closest('.hp'))
                    .filter(e => !e.closest('label.check') || e.matches('label.check'))
                    .map(e => [e.outerHTML.slice(0, 90), e.getBoundingClientRect().height])
                    .filter(([, h]) => h < 44)""",
                TARGETS,
            )
            assert small == [], f"{name}: targets under 44 px: {small}"
        expect(page.locator("#privacy")).to_have_attribute("href", PRIVACY)
        assert self.errors == [], f"{name}: console errors {self.errors}"
        page.screenshot(
            path=str(self.folder / f"first-week-{name}-{self.width}.png"), full_page=True
        )

    def mail(self, msg: EmailMessage, name: str, browser: Browser) -> None:
        """The mail's HTML as a client shows it: no sideways scroll; a screenshot."""
        html = msg.get_body(("html",))
        assert html is not None
        view = browser.new_page(viewport={"width": self.width, "height": 800})
        view.set_content(str(html.get_content()))
        assert view.evaluate("document.documentElement.scrollWidth") <= self.width
        view.screenshot(
            path=str(self.folder / f"first-week-{name}-{self.width}.png"), full_page=True
        )
        view.close()


def outbox_mails(project: Project, to: str, subject: str) -> list[EmailMessage]:
    folder = project.root / ".digest" / "outbox" / "new"
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        msg = parse_clean(path.read_bytes())
        if msg["To"].addresses[0].addr_spec == to and subject in str(msg["Subject"]):
            found.append(msg)
    return found


def plain(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def link_in(msg: EmailMessage, path: str) -> str:
    found = re.search(rf"{re.escape(BASE)}/{path}/\S+", plain(msg))
    assert found, plain(msg)
    return found.group(0)


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(375, 812), (1280, 800)])
def test_a_readers_first_week(
    project: Project, browser: Browser, tmp_path: Path, width: int, height: int
) -> None:
    folder = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    project.write_config("outbox", {"path": ".digest/outbox"}, extra=CONFIG)
    text = project.config.read_text(encoding="utf-8")
    zone = "  timezone: Europe/Berlin\n"
    project.config.write_text(text.replace(zone, f"{zone}  privacy_url: {PRIVACY}\n", 1))
    app = App(project.config, clock=Clock())
    readers = app.readers.pages({"DIGEST_SECRET": SECRET})
    listed = SubscriberStore(app.store)
    email = f"nora{width}@example.com"
    context = browser.new_context(
        viewport={"width": width, "height": height}, timezone_id="America/New_York"
    )
    # The fixture feed's photos live on a made-up host (images.mode: hotlink here): the
    # browser gets a picture for it instead of a failed DNS lookup.
    picture = photo(1200, 675)
    context.route(
        "https://images.example.org/**",
        lambda route: route.fulfill(body=picture, content_type="image/jpeg"),
    )
    try:
        with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
            me = Reader(context.new_page(), width, folder, server.url)
            _week(me, project, browser, readers.drain, listed, email)
    finally:
        context.close()
        app.close()


def _week(
    me: Reader,
    project: Project,
    browser: Browser,
    drain: Callable[[], object],
    listed: SubscriberStore,
    email: str,
) -> None:
    page = me.page

    # Sign up, with one topic; the page's script adds the browser's zone.
    page.goto(me.base + "/subscribe")
    me.check("subscribe")
    page.fill("#email", email)
    page.fill("#name", "Nora")
    page.check("input[value=Technology]")
    page.click("#subscribe")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    me.check("sent")
    drain()

    # Confirm from the mail.
    [confirmation] = outbox_mails(project, email, "Confirm")
    me.mail(confirmation, "confirmation-mail", browser)
    confirm = me.local(link_in(confirmation, "confirm"))
    page.goto(confirm)
    me.check("confirm")
    page.click("#confirm")
    expect(page.locator("h1")).to_have_text("You are subscribed")
    me.check("confirmed")
    record = listed.get(email)
    assert record is not None
    assert (record.state, record.topics, record.timezone) == (
        S.ACTIVE,
        ("Technology",),
        "America/New_York",
    )
    page.goto(confirm)  # the link again, as people do
    expect(page.locator("h1")).to_have_text("You’re already confirmed")
    me.check("confirmed-again")

    # The welcome mail: when editions come on her clock, and her links.
    [welcome] = outbox_mails(project, email, "Welcome")
    me.mail(welcome, "welcome-mail", browser)
    assert "every day at 01:00 (America/New_York time)" in " ".join(plain(welcome).split())
    preferences = me.local(link_in(welcome, "p"))

    # Preferences: her zone is there; she picks another.
    page.goto(preferences)
    expect(page.locator("#timezone")).to_have_value("America/New_York")
    me.check("preferences")
    page.select_option("#timezone", "Asia/Tokyo")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("Saved.")
    expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")
    me.check("preferences-saved")

    # Paused for two weeks, then resumed.
    page.check("input[name=pause][value='2']")
    page.click("#save")
    expect(page.locator("#paused")).to_contain_text("Paused until 8 December 2026")
    me.check("paused")
    assert state_of(listed, email) is S.PAUSED
    page.check("input[name=pause][value='0']")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("Saved.")
    expect(page.locator("#paused")).to_have_count(0)
    me.check("resumed")
    assert state_of(listed, email) is S.ACTIVE

    # Unsubscribed from the preference page ...
    page.click("#unsubscribe")
    expect(page.locator("#message")).to_contain_text("is unsubscribed")
    me.check("unsubscribed")
    assert state_of(listed, email) is S.UNSUBSCRIBED

    # ... and back: "Subscribe again" has her topic ticked.
    page.goto(preferences)
    me.check("preferences-unsubscribed")
    page.click("text=Subscribe again")
    expect(page.locator("input[value=Technology]")).to_be_checked()
    expect(page.locator("input[value=World]")).not_to_be_checked()
    page.fill("#email", email)
    page.click("#subscribe")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    drain()
    again = outbox_mails(project, email, "Confirm")[-1]
    page.goto(me.local(link_in(again, "confirm")))
    expect(page.locator("main")).to_contain_text("with Technology")
    page.click("#confirm")
    expect(page.locator("h1")).to_have_text("You are subscribed")
    record = listed.get(email)
    assert record is not None
    assert (record.state, record.topics, record.timezone) == (
        S.ACTIVE,
        ("Technology",),
        "Asia/Tokyo",  # her choice stays; the browser's guess only fills a gap
    )
    assert len(outbox_mails(project, email, "Welcome")) == 2

    # The archive, once an edition went out.
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = int(json.loads(built.stdout)["id"])
    assert project.cli("approve", str(edition), "--by", "Rosa").exit_code == 0
    assert project.cli("send", str(edition)).exit_code == 0
    page.goto(me.base + "/archive/")
    me.check("archive")
    page.goto(f"{me.base}/archive/{edition}")
    me.check("archive-edition")
    [sent] = [m for m in outbox_mails(project, email, "") if "/archive/" in plain(m)[:200]]
    me.mail(sent, "edition-mail", browser)
    page.goto(me.local(link_in(sent, "u")))
    me.check("unsubscribe")


def state_of(listed: SubscriberStore, email: str) -> S:
    record = listed.get(email)
    assert record is not None
    return record.state


def zone_of(app: App, email: str) -> str:
    record = SubscriberStore(app.store).get(email)
    assert record is not None
    return record.timezone


@pytest.mark.slow
def test_a_reader_without_a_zone_is_offered_the_browsers(
    project: Project, browser: Browser
) -> None:
    project.write_config(extra=CONFIG)
    assert project.cli("subscribers", "add", "ola@example.org").exit_code == 0
    app = App(project.config, clock=Clock())
    readers = app.readers.pages({"DIGEST_SECRET": SECRET})
    record = SubscriberStore(app.store).get("ola@example.org")
    assert record is not None
    assert record.timezone == ""
    link = preferences_url("", readers.preferences, subscriber_id=record.id, email=record.email)
    context = browser.new_context(viewport={"width": 375, "height": 812}, timezone_id="Asia/Tokyo")
    try:
        with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
            scripts_off = browser.new_page(java_script_enabled=False)
            scripts_off.goto(server.url + link)
            # Without scripts the list shows the publication's zone, as stored.
            expect(scripts_off.locator("#timezone")).to_have_value("")
            scripts_off.close()
            page = context.new_page()
            page.goto(server.url + link)
            expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")  # a guess ...
            assert zone_of(app, "ola@example.org") == ""
            page.click("#save")  # ... kept once she saves
            expect(page.locator("#message")).to_contain_text("Saved.")
            assert zone_of(app, "ola@example.org") == "Asia/Tokyo"
    finally:
        context.close()
        app.close()
