"""The archive's pages: an index, one page per sent edition, an Atom feed of editions.

Rendered from the stored stories with the readers' templates, never from a recipient's
message, so no page holds anyone's address, name or links. `digest serve` serves them under
/archive/; `digest archive export DIR` writes the same pages as files for a static host.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from digest.config import Settings
from digest.exceptions import DigestError
from digest.models import Story
from digest.render.dates import date_label
from digest.render.edition import group_sections
from digest.store import Store
from digest.store.archive import Published, published, published_edition

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class Links:
    """How the pages link each other and the stylesheets: absolute paths when served,
    relative ones in an export (which may sit under any folder of a static host)."""

    index: str = "/archive/"
    static: str = "/static/"
    edition_prefix: str = "/archive/"
    edition_suffix: str = ""
    feed: str = "/archive/feed.xml"
    signup: str = ""

    def edition(self, edition_id: int, key: str = "") -> str:
        query = f"?k={key}" if key else ""
        return f"{self.edition_prefix}{edition_id}{self.edition_suffix}{query}"


class Archive:
    """Renders the archive of one publication from the store."""

    def __init__(self, env: jinja2.Environment, settings: Settings, store: Store) -> None:
        self.env = env
        self.settings = settings
        self.store = store
        self.zone = ZoneInfo(settings.publication.timezone)

    def _day(self, at: datetime) -> str:
        return date_label(at.astimezone(self.zone).date())

    def _common(self, links: Links) -> dict[str, Any]:
        return {
            "publication": self.settings.publication,
            "static": links.static,
            "home": links.index,
            "feed_url": links.feed,
            "signup": links.signup,
        }

    def index(self, links: Links) -> str:
        items = [
            {
                "href": links.edition(e.id),
                "day": self._day(e.sent_at),
                "headline": e.stories[0].title if e.stories else e.subject,
            }
            for e in published(self.store, limit=100)
        ]
        return self.env.get_template("archive_index.html").render(
            title=f"{self.settings.publication.name}: past editions",
            editions=items,
            **self._common(links),
        )

    def edition(self, edition: Published, links: Links) -> str:
        lead, rest = edition.stories[0], edition.stories[1:]
        return self.env.get_template("archive_edition.html").render(
            title=lead.title,
            edition=edition,
            day=self._day(edition.sent_at),
            lead=lead,
            picture=self.picture(lead, served=links.static.startswith("/")),
            sections=group_sections(rest),
            **self._common(links),
        )

    def picture(self, story: Story, *, served: bool = False) -> dict[str, Any] | None:
        """The lead's image as the page shows it: digest's own copy (its stored lead
        rendition, served from /img/) when images are owned, so the page neither hotlinks
        the source's full-size photo nor tells the source who reads it; the source's URL
        only when images.mode is hotlink, as in the mail."""
        image = story.image
        if image is None:
            return None
        if self.settings.images.mode == "hotlink":
            return {"src": image.url, "alt": image.alt, "width": 0, "height": 0}
        own = image.rendition("lead") or image.rendition("thumb")
        if own is None:  # the build could not fetch or use it: no image, not the original
            return None
        src = own.url
        ours = self.settings.publication.base_url.rstrip("/") + "/img/"
        if served and src.startswith(ours):  # this server's /img/, whatever host serves it
            src = src[len(ours) - len("/img/") :]
        return {"src": src, "alt": image.alt, "width": own.width, "height": own.height}

    def get(self, edition_id: int) -> Published | None:
        return published_edition(self.store, edition_id)

    def feed(self) -> str:
        """The Atom feed (absolute links, under publication.base_url)."""
        base = self.settings.publication.base_url.rstrip("/")
        entries = published(self.store, limit=50)
        updated = max((e.sent_at for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
        return self.env.get_template("archive_feed.xml").render(
            publication=self.settings.publication,
            base=base,
            editions=entries,
            updated=_iso(updated),
            iso=_iso,
        )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def export(archive: Archive, folder: Path) -> int:
    """Write the archive as static files into ``folder``; how many editions it holds.

    index.html, one N/index.html per edition, feed.xml, and the stylesheets in static/.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "static").mkdir(exist_ok=True)
        for name in ("site.css", "readers.css", "readers.js"):
            shutil.copyfile(STATIC / name, folder / "static" / name)
        top = Links(
            index="./", static="static/", edition_prefix="", edition_suffix="/", feed="feed.xml"
        )
        _write(folder / "index.html", archive.index(top), top.static)
        editions = published(archive.store, limit=1_000_000)
        inner = Links(
            index="../",
            static="../static/",
            edition_prefix="../",
            edition_suffix="/",
            feed="../feed.xml",
        )
        for edition in editions:
            page = folder / str(edition.id) / "index.html"
            page.parent.mkdir(exist_ok=True)
            _write(page, archive.edition(edition, inner), inner.static)
        (folder / "feed.xml").write_text(archive.feed(), encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{folder}: cannot write the archive: {exc.strerror}") from exc
    return len(editions)


def _write(path: Path, html: str, static: str) -> None:
    # base.html links its stylesheet from the site root; a static copy may live anywhere.
    path.write_text(html.replace('href="/static/', f'href="{static}'), encoding="utf-8")
