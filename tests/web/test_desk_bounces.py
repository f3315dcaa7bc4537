"""The desk shows each edition's bounces and complaints: the Editions list and the edition
page, over real HTTP, after returned mail was read for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

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


def test_editions_list_and_edition_page_show_bounces_and_complaints(rosa: httpx.Client) -> None:
    listed = rosa.get("/editions").text
    assert '<span class="f-bounces">2 hard / 0 soft bounces</span>' in listed
    assert '<span class="f-complaints">1 complaint (33.33%)</span>' in listed
    page = rosa.get("/e/1").text
    assert '<dd id="r-hard">2 <small>66.7%</small></dd>' in page
    assert '<dd id="r-soft">0 <small>0.0%</small></dd>' in page
    assert '<dd id="r-complaints">1 <small>33.33%</small></dd>' in page
