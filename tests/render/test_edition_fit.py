"""A 30-story edition with large photos of four shapes: built, fitted, mailed, never clipped.

The photos are served by a local HTTP server; `digest build` fetches and resizes them,
`digest serve` (the real app, on loopback) serves our copies, `digest send` mails them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape, unescape

import httpx
import PIL.Image
import pytest

from digest.app import App
from digest.backends import memory
from digest.store import Store
from digest.testing.http import FixtureServer
from digest.testing.mail import parse_clean
from digest.web.app import create_app
from digest.web.server import BackgroundServer
from digest.workflow import enforce_deadline

from conftest import EDITORS, SECRET, Project
from photos import SHAPES, photo

BASE = "https://news.example.org"
PUBLISHED = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
SECTIONS = ("World", "Business", "Science")


def feed(server: FixtureServer, n: int, *, teaser_words: int = 45) -> bytes:
    """An RSS feed of ``n`` stories; story i has a photo of shape i % 4, story 7 a 404."""
    shapes = sorted(SHAPES)
    items = []
    for i in range(n):
        image = server.url(f"/photos/{shapes[i % 4]}.jpg" if i != 7 else "/photos/gone.jpg")
        when = format_datetime(PUBLISHED - timedelta(minutes=10 * i))
        teaser = " ".join(f"word{i}x{w}" for w in range(teaser_words))
        items.append(
            f"<item><title>Story {i:02d} with a headline of ordinary length</title>"
            f"<link>https://news.example.org/2026/11/story-{i}</link>"
            f"<description>{escape(teaser)}.</description><pubDate>{when}</pubDate>"
            f"<category>{SECTIONS[i % 3]}</category>"
            f'<enclosure url="{image}" type="image/jpeg" length="1"/></item>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>https://news.example.org/</link>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def photos() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        for name, (w, h) in SHAPES.items():
            server.route(f"/photos/{name}.jpg", photo(w, h), headers={"Content-Type": "image/jpeg"})
        server.route("/feed.rss", feed(server, 30), headers={"Content-Type": "application/rss+xml"})
        yield server


def configure(project: Project, photos: FixtureServer, extra: str = "") -> None:
    sources = f"sources:\n  - name: Wire\n    url: {photos.url('/feed.rss')}\n    max_items: 40\n"
    sources += "    allow_private: true\n"
    project.write_config(
        sources=sources,
        extra="ranking:\n  max_stories: 30\n  max_age_hours: 100000\n  diversity: 0\napproval:\n"
        "  auto_approve: true\n" + extra,
    )


def images_of(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', tag)) for tag in re.findall(r"<img [^>]*>", html)]


def test_thirty_stories_with_large_photos_fit_and_are_mailed(
    project: Project, photos: FixtureServer
) -> None:
    configure(project, photos)
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "approved"
    assert "story 'Story 07 with a headline of ordinary length': image dropped" in built.output
    store = Store(project.state)
    try:
        edition = store.get_edition(1)
    finally:
        store.close()
    html = edition.rendered.html
    assert len(html.encode()) < 100_000
    full = re.findall(r'<h[13] id="s\d+"', html)
    assert len(full) >= 15
    assert len(full) == 30  # ~1 KB a story: all thirty fit in full
    imgs = images_of(html)
    assert len(imgs) == 29  # the lead and 28 thumbnails; the 404 was dropped
    for img in imgs:
        assert img["src"].startswith(f"{BASE}/img/"), img
        assert re.fullmatch(r"[0-9a-f]{32}\.jpg", img["src"].rsplit("/", 1)[1]), img
        assert img["width"].isdigit(), img
        assert img["height"].isdigit(), img
    assert imgs[0]["width"] == "592"
    assert imgs[0]["height"] == "333"
    assert {(i["width"], i["height"]) for i in imgs[1:]} == {("96", "96")}
    assert {i["alt"] for i in imgs[1:]} == {""}  # decorative, beside their headlines

    # `digest serve` serves exactly those files, at twice the display size.
    app = App(project.config)
    try:
        with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
            for img in imgs[:5]:
                got = httpx.get(server.url + unescape(img["src"])[len(BASE) :])
                assert got.status_code == 200
                with PIL.Image.open(io.BytesIO(got.content)) as picture:
                    assert picture.size == (int(img["width"]) * 2, int(img["height"]) * 2)
    finally:
        app.close()

    sent = project.cli("send", "1")
    assert sent.exit_code == 0, sent.output
    assert len(memory.outbox) == 3
    for envelope in memory.outbox:
        part = parse_clean(envelope.data).get_body(("html",))
        assert part is not None
        body = part.get_content()
        assert len(body.encode()) < 100_500  # the per-recipient values add a few bytes
        assert len(images_of(body)) == 29


def test_a_small_budget_moves_stories_to_links_then_drops(
    project: Project, photos: FixtureServer
) -> None:
    configure(project, photos, "email:\n  html_budget: 25000\n")
    built = project.cli("build")
    assert built.exit_code == 0, built.output
    moved = re.search(r"(\d+) stories moved to \"More stories\" as plain links: (.*)", built.output)
    assert moved, built.output
    store = Store(project.state)
    try:
        edition = store.get_edition(1)
    finally:
        store.close()
    count = int(moved.group(1))
    # The last stories of the running order are the ones moved, in that order.
    assert moved.group(2) == "; ".join(repr(s.title) for s in edition.stories[-count:])
    html, text = edition.rendered.html, edition.rendered.text
    assert len(html.encode()) <= 25_000
    assert ">More stories<" in html
    assert "== MORE STORIES ==" in text
    in_full = len(re.findall(r'<h[13] id="s\d+"', html))
    assert in_full + count == 30
    assert len(edition.stories) == 30
    assert project.cli("check", "1").exit_code == 0  # both parts list the same stories

    configure(project, photos, "email:\n  html_budget: 15000\n")
    project.state.unlink()
    built = project.cli("build")
    assert built.exit_code == 0, built.output
    assert re.search(r"\d+ stories dropped: 'Story \d\d", built.output), built.output
    store = Store(project.state)
    try:
        edition = store.get_edition(1)
    finally:
        store.close()
    assert len(edition.rendered.html.encode()) <= 15_000
    assert len(edition.stories) < 30  # dropped stories are not part of the edition


def test_an_auto_approved_edition_is_never_clipped(project: Project, photos: FixtureServer) -> None:
    # Long teasers and a budget above Gmail's clip: the build may fit to the budget, but
    # it must not approve anything Gmail would clip.
    photos.route("/feed.rss", feed(photos, 30, teaser_words=600))
    configure(project, photos, "email:\n  html_budget: 200000\n  teaser_length: 5000\n")
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "pending_approval"
    assert "not auto-approved: the HTML of the whole edition is over 102,000 bytes" in (
        built.output
    )
    assert project.cli("send", "1").exit_code == 1  # not approved: nothing goes out
    assert memory.outbox == []
    # With the default budget the same day fits, moving stories to links, and is approved.
    configure(project, photos, "email:\n  teaser_length: 5000\n")
    project.state.unlink()
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "approved"
    assert 'moved to "More stories"' in built.output
    store = Store(project.state)
    try:
        assert len(store.get_edition(1).rendered.html.encode()) < 100_000
    finally:
        store.close()


def test_a_clipped_edition_is_not_approved_at_the_deadline_either(
    project: Project, photos: FixtureServer
) -> None:
    # approval.at_deadline: send approves whatever is pending at the deadline, but not an
    # edition Gmail would clip: that one expires, and nothing goes out.
    photos.route("/feed.rss", feed(photos, 30, teaser_words=600))
    sources = f"sources:\n  - name: Wire\n    url: {photos.url('/feed.rss')}\n    max_items: 40\n"
    project.write_config(
        sources=sources + "    allow_private: true\n",
        extra="ranking:\n  max_stories: 30\n  max_age_hours: 100000\n  diversity: 0\n"
        "email:\n  html_budget: 200000\n  teaser_length: 5000\n"
        + EDITORS
        + "  deadline_minutes: 30\n  at_deadline: send\n",
    )
    built = project.cli("build", "--json", env={"DIGEST_NOW": "2026-11-24T05:00:00+00:00"})
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["state"] == "pending_approval"
    at = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)  # 30 minutes before 07:00 in Berlin
    app = App(project.config)
    try:
        deadline = app.schedule.deadline(app.store.get_edition(1))
        assert deadline == at
        edition = enforce_deadline(
            app.store, 1, policy=app.settings.approval, deadline=deadline, now=at
        )
    finally:
        app.close()
    assert edition.state == "expired"
    status = json.loads(project.cli("status", "1", "--json").stdout)
    last = status["audit"][-1]
    assert (last["to"], last["via"]) == ("expired", "deadline")
    assert "the HTML of the whole edition is over 102,000 bytes" in last["note"]
    memory.clear()
    sent = project.cli("send", "1", env={"DIGEST_NOW": "2026-11-24T06:00:00+00:00"})
    assert sent.exit_code == 1
    assert memory.outbox == []
