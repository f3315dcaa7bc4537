"""Issue 31 acceptance: the morning desk runs the whole send, in real headless Chromium.

Sign in -> Today -> add a story by URL -> move it up (the page stays at it; no proof
mailed) -> Send proofs
(to the other editor only) -> approve -> send now (the confirmation names the recipients)
-> pause (exact, counted at the SMTP sink) -> resume -> the progress reaches "sent" by
itself -> the edition's figures on the Editions page. Every page at 375x812 and 1280x800:
no horizontal scroll, controls >= 44 px on the phone, no console errors; screenshots to
$DIGEST_SCREENSHOTS.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage
from test_web_browser import PHONE, browser, check_phone_and_desktop, shots

from digest.app import App
from digest.testing.smtp import SMTPSink
from digest.web.app import create_app
from digest.web.auth import hash_password
from digest.web.server import BackgroundServer

from conftest import EDITORS, FIXTURES, SECRET, Clock, Project, wait_for

__all__ = ["browser", "shots"]

READERS = 30
FERRIES = "https://harbour-gazette.example/2026/11/24/electric-ferries/"
SAM = "sam@news.example.org"
PASSWORD = "a long passphrase"
Morning = tuple[Project, str, SMTPSink, list[str]]


def _readers(sink: SMTPSink) -> list[str]:
    return [r for m in sink.messages for r in m.rcpt_tos if not r.endswith("@news.example.org")]


def _proofs_to(sink: SMTPSink) -> list[str]:
    return [r for m in sink.messages if b"X-Digest-Proof:" in m.data for r in m.rcpt_tos]


def _ledger(project: Project) -> Counter[str]:
    store = project.open_store()
    try:
        return Counter(str(r["state"]) for r in store.delivery_rows(1))
    finally:
        store.close()


@pytest.fixture
def morning(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Morning]:
    # As under `digest serve`: proofs and the send read the key from the environment.
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    emails = [f"reader{i:02d}@example.org" for i in range(READERS)]
    rows = "".join(f"  - email: {e}\n    name: Reader {i}\n" for i, e in enumerate(emails))
    (project.root / "subscribers.yaml").write_text("subscribers:\n" + rows, encoding="utf-8")
    editors = EDITORS.replace(
        f"      email: {SAM}\n", f"      email: {SAM}\n      password_hash_env: SAM_HASH\n"
    )
    # Slow enough (6 a second) that the editor pauses while it goes out.
    setup = editors + 'schedule:\n  time: "07:47"\nsend:\n  connections: 1\n  rate_per_second: 6\n'
    with SMTPSink() as sink:
        options = {"host": sink.host, "port": sink.port, "security": "none"}
        project.write_config("smtp", options, extra=setup)
        body = (FIXTURES / "pages" / "article_jsonld.html").read_bytes()
        project.feeds.route("/ferries.html", body, headers={"Content-Type": "text/html"})
        built = project.cli("build")
        assert built.exit_code == 0, built.output
        app = App(project.config, clock=Clock())
        environ = {"DIGEST_SECRET": SECRET, "SAM_HASH": hash_password(PASSWORD)}
        with BackgroundServer(create_app(app, environ=environ)) as server:
            yield project, server.url, sink, emails
        app.close()


@pytest.mark.slow
def test_the_morning_desk_runs_the_whole_send(
    browser: Browser, morning: Morning, shots: Path
) -> None:
    project, server, sink, emails = morning
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def look(name: str) -> None:
        check_phone_and_desktop(page, f"send-{name}", shots)

    # Sign in with a password; a wrong one keeps the typed address.
    page.goto(server + "/")
    assert page.url.endswith("/signin?next=/")
    page.click("details summary")
    page.fill("#pw-email", SAM)
    page.fill("#password", "not it")
    page.click("#password-signin")
    assert "Wrong e-mail address or password." in page.inner_text("#message")
    assert page.input_value("#pw-email") == SAM
    # Chromium logs the refused sign-in's 401 answer; that one is meant. Nothing else may.
    assert [e for e in errors if "status of 401" not in e] == []
    errors.clear()
    page.fill("#password", PASSWORD)
    page.click("#password-signin")
    page.wait_for_url(re.compile(r"/$"))
    look("today")
    page.click("#pending a.btn")
    page.wait_for_url(re.compile(r"/e/1$"))
    proofs = len(_proofs_to(sink))

    # Add a story by its address, fourth: the page returns to it; no proof mailed.
    page.fill("#add-url", project.feeds.url("/ferries.html"))
    page.select_option("#add-position", "4")
    page.click("#add-fetch")
    page.wait_for_url(re.compile(r"n=added.*#story-4$"))
    assert page.locator("#story-4").get_attribute("data-url") == FERRIES
    assert len(_proofs_to(sink)) == proofs
    look("review-added")

    # Move it up: back at that story, now third.
    moved = page.locator("#story-4").get_attribute("data-url")
    page.locator("#story-4 button.up").click()
    page.wait_for_url(re.compile(r"n=revised.*#story-3$"))
    assert page.locator("#story-3").get_attribute("data-url") == moved == FERRIES
    top = page.locator("#story-3").evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < PHONE["height"]  # the story is on the screen, not the page's top
    assert len(_proofs_to(sink)) == proofs
    look("review-moved")

    # Proofs on request, to the other editor only.
    page.click("#send-proofs")
    page.wait_for_url(re.compile(r"n=proofed"))
    assert _proofs_to(sink)[proofs:] == ["rosa@news.example.org"]

    # Keyboard: j / k move between stories, ? shows the help, a opens the approval page.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    assert page.locator("li.story.current").get_attribute("id") == "story-2"
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    assert "next story" in page.inner_text("#shortcuts")
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r"/e/1/approve$"))

    # Approve; then the approve button is gone.
    page.click("#approve")
    page.wait_for_url(re.compile(r"n=approved"))
    assert page.get_attribute("#state", "data-state") == "approved"
    assert page.locator("#approve").count() == 0
    look("review-approved")

    # Send now, after a confirmation naming the recipients.
    page.click("#send-now")
    page.wait_for_url(re.compile(r"/e/1/send$"))
    assert page.inner_text("#recipients") == f"{READERS} recipients"
    look("confirm-send")
    page.click("#confirm-send")
    page.wait_for_url(re.compile(r"n=sending"))
    assert page.get_attribute("#state", "data-state") == "sending"

    # Pause mid-send: once the in-flight messages are done, nothing more arrives.
    wait_for(lambda: len(_readers(sink)) >= 2, what="the first messages")
    page.click("#pause")
    page.wait_for_url(re.compile(r"n=paused"))
    assert "Paused by Sam Lee" in page.inner_text("#p-line")
    wait_for(lambda: _ledger(project)["in_flight"] == 0, what="the in-flight messages")
    paused_at = _ledger(project)["sent"]
    assert 2 <= len(_readers(sink)) == paused_at < READERS
    look("review-paused")
    assert len(_readers(sink)) == paused_at

    # Resume; the page follows the send by itself until it is sent.
    import time

    t0 = time.monotonic()
    page.click("#resume")
    page.wait_for_load_state()
    print("DEBUG", time.monotonic() - t0, page.url)
    page.wait_for_url(re.compile(r"n=resumed"))
    page.wait_for_selector("#state[data-state=sent]", timeout=60_000)
    assert page.inner_text("#p-sent") == str(READERS)
    assert page.inner_text("#p-line").startswith(f"Sent: {READERS} of {READERS} delivered")
    look("review-sent")
    assert Counter(_readers(sink)) == Counter(emails)  # everyone, exactly once

    # The Editions page has the edition's figures.
    page.click("a.tab:has-text('Editions')")
    page.wait_for_url(re.compile(r"/editions$"))
    row = page.locator("#editions li").first
    assert row.locator(".f-recipients").inner_text() == f"{READERS} recipients"
    assert row.locator(".f-sent").inner_text() == f"{READERS} sent"
    assert row.locator(".f-failed").inner_text() == "0 failed"
    look("editions")
    page.select_option("#f-state", "sent")
    page.fill("#f-q", "no such headline anywhere")
    page.click("#filter")
    page.wait_for_url(re.compile(r"state=sent&q=no"))
    assert page.locator("#editions li").count() == 0
    look("editions-none")
    page.click("a.tab:has-text('Sources')")
    page.wait_for_url(re.compile(r"/sources$"))
    assert page.locator("#sources li.source").count() == 2
    look("sources")
    assert errors == []
    context.close()
