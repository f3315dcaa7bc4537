"""The desk shows each edition's bounces and complaints: the Editions list and the edition
page, over real HTTP, after returned mail was read for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright
from test_web_browser import CHROMIUM_ARGS, PHONE, check_phone_and_desktop

from bouncemail import arf, dsn
from digest.app import App
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import EDITORS, SECRET, Clock, Project, loopback_client, reader_mail, sign_in_by_link


@pytest.fixture
def rosa(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    project.write_config(extra=EDITORS + "email:\n  return_path_domain: bounce.news.example.org\n")
    assert project.cli("build").exit_code == 0
    assert project.cli("approve", "1", "--by", "Rosa Diaz").exit_code == 0
    assert project.cli("send", "1").exit_code == 0
    sent = {e.recipient: e for e in reader_mail()}
    folder = project.root / "returned"
    folder.mkdir()
    anna = sent["anna@example.org"]
    (folder / "1.eml").write_bytes(dsn("anna@example.org", bounce_to=anna.sender))
    (folder / "2.eml").write_bytes(
        arf("ben@example.net", message_id=sent["ben@example.net"].message_id)
    )
    (folder / "3.eml").write_bytes(
        dsn("dmitri@example.org", message_id=sent["dmitri@example.org"].message_id)
    )
    imported = project.cli("bounces", "import", str(folder))
    assert imported.exit_code == 0, imported.output
    assert "edition 1: past the bounce or complaint alarm" in imported.output
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as client,
    ):
        sign_in_by_link(client, "rosa@news.example.org")
        yield client
    app.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DIGEST_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_editions_list_and_edition_page_show_bounces_and_complaints(rosa: httpx.Client) -> None:
    listed = rosa.get("/editions").text
    assert '<span class="f-bounces">2 hard / 0 soft bounces</span>' in listed
    assert '<span class="f-complaints">1 complaint (33.33%)</span>' in listed
    page = rosa.get("/e/1").text
    assert '<dd id="r-hard">2 <small>66.7%</small></dd>' in page
    assert '<dd id="r-soft">0 <small>0.0%</small></dd>' in page
    assert '<dd id="r-complaints">1 <small>33.33%</small></dd>' in page


def test_the_figures_fit_a_phone_and_a_desktop(
    rosa: httpx.Client, shots: Path, browser: Browser
) -> None:
    """No sideways scroll at 375 px or 1280 px, controls >= 44 px on the phone."""
    context = browser.new_context(viewport=PHONE)
    base = str(rosa.base_url).rstrip("/")
    context.add_cookies(
        [
            {"name": c.name, "value": c.value or "", "url": base.replace("http:", "https:", 1)}
            for c in rosa.cookies.jar
        ]
    )
    page = context.new_page()
    for path, name, shown in (
        ("/editions", "editions-bounces", ".f-complaints"),
        ("/e/1", "edition-bounces", "#r-complaints"),
    ):
        page.goto(f"{base}{path}")
        assert page.locator(shown).is_visible()  # signed in: the figures are there
        check_phone_and_desktop(page, name, shots)
    context.close()
