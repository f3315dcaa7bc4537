"""An editor's morning in real headless Chromium, on a phone and on a desktop.

Sign-in link read from the outbox (a real Maildir) -> Today -> Review -> edit a teaser ->
remove and restore a story -> test send -> approve; then `digest send` delivers exactly the
approved bytes. Every page is checked, as it is reached, for horizontal scroll at 375x812 and
again at 1280x800 (the same page, resized: a POST's answer or a single-use link cannot be
opened a second time) and, on the phone, for controls under 44 px; each page's screenshot goes
to $DIGEST_SCREENSHOTS (or a temporary folder) as desk-<page>-375.png and desk-<page>-1280.png.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from digest.app import App
from digest.models import edition_hash
from digest.passwords import hash_password
from digest.render import placeholders
from digest.store import Store
from digest.testing.smtp import SMTPSink
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import BASE, EDITORS, SECRET, Clock, Project, footer_values, wait_for

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
REMOVED = "https://world.example.org/2026/11/haiti-elections"
EDITED = "https://tech.example.com/chips-power"
READERS = """\
subscribers:
  - email: anna@example.org
    name: Anna Schmidt
  - email: ben@example.net
    name: Ben Okafor
    topics: [Technology]
  - email: dmitri@example.org
    name: Дмитрий Иванов
"""
# Every control an editor touches; links inside running text (<p>) are exempt, as WCAG's
# target-size rule exempts inline links.
CONTROLS = """() => {
  const sel = 'button, input:not([type=hidden]), select, textarea, summary, a, .seg > label';
  return [...document.querySelectorAll(sel)].filter(e => {
    if (e.classList.contains('sr-only')) return false;
    if (e.tagName === 'A' && e.closest('p')) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  }).map(e => ({what: e.outerHTML.slice(0, 90), height: e.getBoundingClientRect().height}));
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # A missing /usr/bin/chromium fails here (CI installs it); it is never skipped.
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_page(page: Page, name: str, shots: Path) -> None:
    """No horizontal scroll; on the phone every control at least 44 px tall; a screenshot."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"{name} at {width} px scrolls sideways ({scroll} px wide)"
    if width <= 375:
        small = [c for c in page.evaluate(CONTROLS) if c["height"] < 44]
        assert small == [], f"{name}: controls under 44 px at {width} px: {small}"
    screenshot(page, shots / f"desk-{name}-{width}.png")


def check_phone_and_desktop(page: Page, name: str, shots: Path) -> None:
    """check_page on the phone, then on a desktop, then back to the phone. The page as
    reached: revisiting it later would measure something else (a GET of a POST's answer, a
    used sign-in link, an edition approved since)."""
    assert page.viewport_size == PHONE
    check_page(page, name, shots)
    page.set_viewport_size(DESKTOP)
    check_page(page, name, shots)
    page.set_viewport_size(PHONE)


def screenshot(page: Page, path: Path) -> None:
    """The whole page. Chromium's full-page capture leaves iframes blank, so the viewport is
    made as tall as the page for one shot (the page's own sizes do not depend on it)."""
    size = page.viewport_size
    assert size is not None
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    # Two animation frames: the resized page, iframes included, has been painted.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def outbox_mail(folder: Path, to: str, subject: str) -> list[EmailMessage]:
    found = []
    for path in sorted((folder / "new").glob("*")) if (folder / "new").is_dir() else []:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["To"] and to in str(msg["To"]) and str(msg["Subject"]).startswith(subject):
            found.append(msg)
    return found


def text_of(msg: EmailMessage, kind: str = "plain") -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.fixture
def morning(project: Project) -> Iterator[tuple[Project, str, Path]]:
    (project.root / "subscribers.yaml").write_text(READERS, encoding="utf-8")
    # Sam may also use a password (the sign-in page then offers it); a source whose long
    # URL fails puts a long unbroken warning on the review and approve pages.
    editors = EDITORS.replace(
        "      email: sam@news.example.org\n",
        "      email: sam@news.example.org\n      password_hash_env: SAM_HASH\n",
    )
    setup = editors + '  deadline_minutes: 30\nschedule:\n  time: "07:47"\n'
    gone = "/gone/" + "very-long-path-segment-" * 8 + "feed.rss"
    long_url = project.feeds.url(gone)
    sources = "sources:\n" + "".join(
        f"  - name: {name}\n    url: {project.feeds.url(path)}\n    allow_private: true\n"
        + (f"    section: {section}\n" if section else "")
        for name, path, section in [
            ("World Desk", "/world.rss", ""),
            ("Tech Wire", "/tech.atom", "Technology"),
            ("Long Gone", gone, ""),
        ]
    )
    project.write_config("outbox", {"path": "outbox"}, extra=setup, sources=sources)
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert long_url in built.output  # warned about
    app = App(project.config, clock=Clock())
    environ = {"DIGEST_SECRET": SECRET, "SAM_HASH": hash_password("a long passphrase")}
    with BackgroundServer(create_app(app, environ=environ)) as server:
        yield project, server.url, project.root / "outbox"
    app.close()


@pytest.mark.slow
def test_the_whole_morning_on_a_phone(
    browser: Browser, morning: tuple[Project, str, Path], shots: Path
) -> None:
    project, server, outbox = morning
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    visited: list[tuple[str, str]] = []

    def look(name: str) -> None:
        check_phone_and_desktop(page, name, shots)
        visited.append((name, page.url))

    # Sign in with a link from the outbox.
    page.goto(server + "/e/1")
    assert page.url.endswith("/signin?next=/e/1")
    page.click("details summary")  # the password form, open
    look("signin")
    page.fill("#email", "rosa@news.example.org")
    page.click("#send-link")
    assert "a sign-in link is on its way" in page.inner_text("#message")
    look("signin-sent")
    wait_for(lambda: outbox_mail(outbox, "rosa@", "Sign in"), what="the sign-in mail")
    link = re.search(r"https://\S+/s/[\w.-]+", text_of(outbox_mail(outbox, "rosa@", "Sign in")[0]))
    assert link
    page.goto(server + link.group(0)[len(BASE) :])
    assert page.inner_text("h1") == "Sign in as Rosa Diaz?"
    look("signin-link")
    page.click("#signin")
    page.wait_for_url(re.compile(r"/e/1$"))  # where she was going

    # Today.
    page.click("a.tab:has-text('Today')")
    page.wait_for_url(re.compile(r"/$"))
    assert "Approve by 07:17, in 17 min." in page.inner_text("#pending")
    look("today")
    page.click("#pending a.btn")
    page.wait_for_url(re.compile(r"/e/1$"))

    # Review: what goes out, and when.
    assert page.inner_text("#send-line") == (
        "Goes to 3 recipients (2 variants) at 07:47 Europe/Berlin, in 47 min."
    )
    assert page.get_attribute("#state", "data-state") == "pending_approval"
    look("review")
    assert page.locator("#email").evaluate("e => e.getBoundingClientRect().width") <= 375

    # Edit a teaser.
    story = page.locator(f"li.story[data-url='{EDITED}']")
    story.locator("summary").click()
    story.locator("textarea").fill("Chip plants now draw as much power as a small city.")
    look("review-edit")
    story.locator("button.save-teaser").click()
    page.wait_for_url(re.compile(r"n=revised"))
    assert page.inner_text("#revision") == "2"
    assert (
        "as much power as a small city" in page.frame_locator("#email").locator("body").inner_text()
    )

    # Remove a story, then put it back.
    page.locator(f"#stories li[data-url='{REMOVED}'] button.remove").click()
    page.wait_for_url(re.compile(r"n=removed"))
    assert page.locator(f"#stories li[data-url='{REMOVED}']").count() == 0
    assert "Haiti" not in page.inner_text("#text")
    look("review-removed")
    page.click("#undo")
    page.wait_for_url(re.compile(r"n=restored"))
    assert page.locator(f"#stories li[data-url='{REMOVED}']").count() == 1
    assert page.inner_text("#revision") == "4"

    # A test send to any address.
    page.fill("#test-to", "checker@example.com")
    page.click("#test-send")
    page.wait_for_url(re.compile(r"n=tested"))
    assert page.inner_text("#tested") == "checker@example.com"
    test = outbox_mail(outbox, "checker@example.com", "[TEST] ")
    assert len(test) == 1

    # The old proof link is superseded; the confirmation page approves.
    proof = outbox_mail(outbox, "rosa@", "[Proof r1]")[0]
    old = re.search(r"^Approve: (\S+)", text_of(proof), re.M)
    assert old
    page.goto(server + old.group(1)[len(BASE) :])
    assert "replaced by revision 4" in page.inner_text("#message")
    look("link-superseded")
    page.goto(server + "/e/1/approve")
    assert page.inner_text("h1") == "Approve edition 1?"
    look("confirm")
    page.click("#approve")
    page.wait_for_url(re.compile(r"n=approved"))
    assert page.get_attribute("#state", "data-state") == "approved"
    look("review-approved")
    page.click("a.tab:has-text('Editions')")
    page.wait_for_url(re.compile(r"/editions$"))
    look("editions")

    # On a desktop the frame shows the email at a phone's width on request.
    wide = browser.new_context(viewport=DESKTOP)
    wide.add_cookies(context.cookies())
    desk = wide.new_page()
    frame_width = "e => e.getBoundingClientRect().width"
    desk.goto(dict(visited)["review"])
    assert desk.locator("#email").evaluate(frame_width) > 600
    desk.click("label[for=w-mobile]")
    assert desk.locator("#email").evaluate(frame_width) == 375
    wide.close()
    context.close()

    # The next `digest send` delivers exactly the approved bytes, variants included.
    sent = project.cli("send", "1")
    assert sent.exit_code == 0, sent.output
    _assert_sent_is_approved(project, outbox)


def _assert_sent_is_approved(project: Project, outbox: Path) -> None:
    store = Store(project.state)
    try:
        edition = store.get_edition(1)
        variants = {v.key: v.rendered for v in store.variants(edition)}
        recomputed = edition_hash(edition.rendered, store.variants(edition))
        approved = [a for a in store.audit_trail(1) if a.to_state.value == "approved"]
        rows = {r["email"]: r["variant_hash"] for r in store.delivery_rows(1)}
    finally:
        store.close()
    assert [(a.revision, a.actor, a.via) for a in approved] == [(4, "Rosa Diaz", "web")]
    # What was approved is what is stored: the hash of the stored bytes, recomputed.
    assert approved[0].content_hash == edition.content_hash == recomputed
    by_hash = {edition.rendered.content_hash: edition.rendered} | {
        r.content_hash: r for r in variants.values()
    }
    assert set(rows) == {"anna@example.org", "ben@example.net", "dmitri@example.org"}
    for email, variant_hash in rows.items():
        (msg,) = outbox_mail(outbox, email, "")
        stored = by_hash[variant_hash]
        unsubscribe = re.search(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"]))
        assert unsubscribe
        name = str(msg["To"]).rsplit(" <", 1)[0].strip('"') if "<" in str(msg["To"]) else ""
        values = placeholders.values_for(
            name=name,
            email=email,
            unsubscribe_url=unsubscribe.group(1),
            **footer_values(text_of(msg)),
        )
        html_values = {k: html.escape(v, quote=True) for k, v in values.items()}
        assert text_of(msg, "html") == placeholders.substitute(
            stored.html, html_values, stored.marker
        )
        assert text_of(msg) == placeholders.substitute(stored.text, values, stored.marker)
        assert str(msg["Subject"]) == stored.subject
        assert "as much power as a small city" in text_of(msg)
    assert rows["ben@example.net"] != rows["anna@example.org"]  # Ben got his variant


def test_rejected_edition_sends_nothing(
    browser: Browser, project: Project, smtp_server: SMTPSink, shots: Path
) -> None:
    project.write_config(
        "smtp",
        {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        extra=EDITORS,
    )
    assert project.cli("build").exit_code == 0
    app = App(project.config, clock=Clock())
    proof = next(m for m in smtp_server.messages if m.rcpt_tos == ["rosa@news.example.org"])
    body = text_of(_parse(proof.data))
    link = re.search(r"^Review: (\S+)", body, re.M)
    assert link
    with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
        page = browser.new_page(viewport=PHONE)
        page.goto(server.url + link.group(1)[len(BASE) :])
        page.click("details.reject summary")
        page.fill("#reason", "the lead story is wrong")
        check_phone_and_desktop(page, "review-reject", shots)
        page.click("#reject")
        page.wait_for_url(re.compile(r"/e/1\?n=rejected"))
        assert page.get_attribute("#state", "data-state") == "rejected"
        assert page.locator("#approve").count() == 0
        page.close()
    app.close()
    result = project.cli("send", "1")
    assert result.exit_code == 1
    assert "rejected" in result.output
    assert [
        m for m in smtp_server.messages if not m.rcpt_tos[0].endswith("@news.example.org")
    ] == []
    trail = json.loads(project.cli("status", "1", "--json").stdout)["audit"]
    assert trail[-1]["note"] == "the lead story is wrong"
    assert (trail[-1]["by"], trail[-1]["via"]) == ("Rosa Diaz", "web")


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg
