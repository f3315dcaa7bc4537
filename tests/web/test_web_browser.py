"""An editor in real headless Chromium: proof link -> review -> remove a story -> approve -> send.

Proofs and the edition travel through a real SMTP server (aiosmtpd); the review pages are
served by uvicorn on 127.0.0.1; the browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from digest.app import App
from digest.models import RenderedEdition
from digest.render import placeholders
from digest.store import Store
from digest.testing.smtp import SMTPSink
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import BASE, EDITORS, SECRET, Clock, Project, footer_values

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
REMOVED = "https://world.example.org/2026/11/haiti-elections"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # A missing /usr/bin/chromium fails here (CI installs it); it is never skipped.
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _review_link(sink: SMTPSink, editor: str) -> str:
    for received in sink.messages:
        msg = _parse(received.data)
        if received.rcpt_tos == [editor] and str(msg["Subject"]).startswith("[Proof r1]"):
            body = msg.get_body(("plain",))
            assert body is not None
            found = re.search(r"^Review: (\S+)", body.get_content(), re.M)
            assert found
            return found.group(1)
    raise AssertionError(f"no proof reached {editor}")


def _subscriber_messages(sink: SMTPSink) -> dict[str, EmailMessage]:
    return {
        m.rcpt_tos[0]: _parse(m.data)
        for m in sink.messages
        if not m.rcpt_tos[0].endswith("@news.example.org")
    }


@pytest.fixture
def newsroom(project: Project, smtp_server: SMTPSink) -> Iterator[tuple[Project, str, SMTPSink]]:
    project.write_config(
        "smtp", {"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        extra=EDITORS,
    )  # fmt: skip
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "pending_approval"
    app = App(project.config, clock=Clock())
    with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
        yield project, server.url, smtp_server


def _open_review(page: Page, server: str, sink: SMTPSink) -> None:
    link = _review_link(sink, "rosa@news.example.org")
    assert link.startswith(BASE + "/e/1?t=")
    # The public base URL is a reverse proxy in production; here it maps to the test server.
    page.goto(server + link[len(BASE) :])
    assert page.locator("#state").inner_text() == "pending_approval"


def test_editor_removes_a_story_approves_and_exactly_that_is_sent(
    browser: Browser, newsroom: tuple[Project, str, SMTPSink]
) -> None:
    project, server, sink = newsroom
    page = browser.new_page()
    _open_review(page, server, sink)
    # The page shows the email in a frame, with a working mobile width toggle.
    frame = page.frame_locator("#email")
    assert "Putin poaches the neighbors" in frame.locator("body").inner_text()
    page.click("label[for=w-mobile]")
    assert page.locator("#email").evaluate("e => e.getBoundingClientRect().width") == 375
    assert "Haiti sets an election date" in page.locator("#text").inner_text()

    page.click(f"tr[data-url='{REMOVED}'] button.remove")
    page.wait_for_url(re.compile(r"/e/1\?n=revised&t="))
    assert page.locator("#revision").inner_text() == "2"
    assert page.locator(f"tr[data-url='{REMOVED}']").count() == 0
    assert "Haiti sets an election date" not in page.locator("#text").inner_text()

    page.click("#approve")
    page.wait_for_url(re.compile(r"/e/1\?n=approved"))
    assert page.locator("#state").inner_text() == "approved"
    page.close()

    sent = project.cli("send", "1")
    assert sent.exit_code == 0, sent.output
    received = _subscriber_messages(sink)
    assert sorted(received) == ["anna@example.org", "ben@example.net", "dmitri@example.org"]

    store = Store(project.state)
    try:
        edition = store.get_edition(1)
        approved = [a for a in store.audit_trail(1) if a.to_state.value == "approved"]
    finally:
        store.close()
    # The approval was of revision 2, by Rosa on the web, and names the hash of what is stored.
    assert [(a.revision, a.actor, a.via) for a in approved] == [(2, "Rosa Diaz", "web")]
    stored = RenderedEdition(
        subject=edition.rendered.subject, preheader=edition.rendered.preheader,
        html=edition.rendered.html, text=edition.rendered.text,
    )  # fmt: skip
    assert stored.content_hash == approved[0].content_hash == edition.content_hash
    for email, msg in received.items():
        html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
        assert html_part is not None
        assert text_part is not None
        sent_html = html_part.get_content().replace("\r\n", "\n")
        sent_text = text_part.get_content().replace("\r\n", "\n")
        assert REMOVED not in sent_html
        assert "Haiti" not in sent_text
        # Undo the per-recipient substitution: what remains is the approved revision, byte
        # for byte, so its hash is the approved hash.
        unsubscribe = re.search(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"]))
        assert unsubscribe
        name = str(msg["To"]).rsplit(" <", 1)[0].strip('"') if "<" in str(msg["To"]) else ""
        values = placeholders.values_for(
            name=name, email=email, unsubscribe_url=unsubscribe.group(1),
            **footer_values(sent_text),
        )  # fmt: skip
        html_values = {k: html.escape(v, quote=True) for k, v in values.items()}
        assert sent_html == placeholders.substitute(stored.html, html_values)
        assert sent_text == placeholders.substitute(stored.text, values)
        rebuilt = RenderedEdition(
            subject=str(msg["Subject"]), preheader=stored.preheader,
            html=_untemplate(sent_html, html_values), text=_untemplate(sent_text, values),
        )  # fmt: skip
        assert rebuilt.content_hash == approved[0].content_hash


def _untemplate(body: str, values: dict[str, str]) -> str:
    """Put the placeholders back where the recipient's values were substituted."""
    # Longest values first, so ", Anna" (greeting) is restored before "Anna" (name).
    for token, value in sorted(values.items(), key=lambda kv: -len(kv[1])):
        # A token the template does not use (SIGNED_UP) has a value found in other text.
        if value and token != placeholders.SIGNED_UP:
            body = body.replace(value, token)
    return body


def test_rejected_edition_sends_nothing(
    browser: Browser, newsroom: tuple[Project, str, SMTPSink]
) -> None:
    project, server, sink = newsroom
    page = browser.new_page()
    _open_review(page, server, sink)
    page.fill("#reason", "the lead story is wrong")
    page.click("#reject")
    page.wait_for_url(re.compile(r"/e/1\?n=rejected"))
    assert page.locator("#state").inner_text() == "rejected"
    assert page.locator("#approve").count() == 0
    page.close()
    result = project.cli("send", "1")
    assert result.exit_code == 1
    assert "rejected" in result.output
    assert _subscriber_messages(sink) == {}
    trail = json.loads(project.cli("status", "1", "--json").stdout)["audit"]
    assert trail[-1]["note"] == "the lead story is wrong"
    assert (trail[-1]["by"], trail[-1]["via"]) == ("Rosa Diaz", "web")
