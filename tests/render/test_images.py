"""Images we own: Pillow crops and resizes, bad images are refused, stored and served by hash."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import PIL.Image
import pytest

from digest.app import App
from digest.exceptions import ImageError
from digest.http import Fetcher
from digest.images import own_images
from digest.models import Image, Story
from digest.render.images import LEAD, THUMB, crop_resize, logo
from digest.store import Store
from digest.store.images import ImageStore
from digest.testing.http import FixtureServer
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import SECRET, Project
from photos import SHAPES, photo

NOW = datetime(2026, 11, 25, 6, tzinfo=UTC)


def size_of(data: bytes) -> tuple[int, int]:
    with PIL.Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_becomes_a_16_9_lead_and_a_square_thumbnail(shape: str) -> None:
    data = photo(*SHAPES[shape])
    lead = crop_resize(data, LEAD, max_pixels=40_000_000)
    thumb = crop_resize(data, THUMB, max_pixels=40_000_000)
    assert (lead.width, lead.height) == (592, 333)
    assert size_of(lead.data) == (1184, 666)  # twice the display size, for retina screens
    assert (thumb.width, thumb.height) == (96, 96)
    assert size_of(thumb.data) == (192, 192)
    assert lead.key.endswith(".jpg")
    assert len(lead.key) == 36
    assert lead.content_type == "image/jpeg"
    assert len(lead.data) < len(data)
    # Deterministic: the same input gives the same bytes, so the URL is stable.
    assert crop_resize(data, LEAD, max_pixels=40_000_000).key == lead.key


def test_png_with_transparency_and_a_small_image() -> None:
    image = PIL.Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    thumb = crop_resize(out.getvalue(), THUMB, max_pixels=1_000_000)
    with PIL.Image.open(io.BytesIO(thumb.data)) as done:
        assert done.getpixel((10, 10)) == (255, 255, 255)  # flattened onto white, not black
        assert done.size == (192, 192)
    # Smaller than twice the display size but not smaller than it: used as it is.
    lead = crop_resize(photo(800, 450), LEAD, max_pixels=1_000_000)
    assert size_of(lead.data) == (800, 450)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html>not an image</html>", "not an image we accept"),
        (b"GIF89a" + b"\x00" * 10, "not an image we accept"),
        (photo(1600, 900)[:2000], "corrupt or truncated"),
        (photo(300, 200), "too small for a 592x333 lead image"),
    ],
    ids=["html", "garbage-gif", "truncated", "too-small"],
)
def test_bad_images_are_refused_with_one_line(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        crop_resize(data, LEAD, max_pixels=40_000_000)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header claiming a huge size: refused before any pixel is decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = b"IHDR" + header
    chunk = struct.pack(">I", len(header)) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_decompression_bombs_are_refused_before_decoding() -> None:
    with pytest.raises(ImageError, match="over the 40,000,000 pixel limit"):
        crop_resize(bomb_png(8_000, 8_000), LEAD, max_pixels=40_000_000)
    # Far beyond Pillow's own limit: its error becomes ours, never a warning or traceback.
    with pytest.raises(ImageError, match="decompression bomb"):
        crop_resize(bomb_png(200_000, 200_000), LEAD, max_pixels=40_000_000)


def test_logo_keeps_its_shape_and_transparency() -> None:
    image = PIL.Image.new("RGBA", (1200, 300), (200, 30, 30, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    made = logo(out.getvalue())
    assert (made.width, made.height) == (160, 40)
    assert size_of(made.data) == (320, 80)
    assert made.key.endswith(".png")


@pytest.fixture
def photos() -> Iterator[FixtureServer]:
    server = FixtureServer()
    server.route("/wide.jpg", photo(2400, 1350), headers={"Content-Type": "image/jpeg"})
    server.route("/page.jpg", b"<html></html>", headers={"Content-Type": "text/html"})
    server.route("/tiny.jpg", photo(40, 40), headers={"Content-Type": "image/jpeg"})
    with server:
        yield server


def story(n: int, image_url: str | None) -> Story:
    image = Image(url=image_url, alt=f"photo {n}") if image_url else None
    return Story(
        url=f"https://news.example.org/{n}",
        title=f"Story {n}",
        teaser="t",
        source="Local",
        published=NOW,
        image=image,
    )


def test_own_images_fetches_processes_and_warns_per_story(photos: FixtureServer) -> None:
    stories = [
        story(0, photos.url("/wide.jpg")),
        story(1, photos.url("/wide.jpg")),
        story(2, photos.url("/missing.jpg")),  # 404
        story(3, photos.url("/page.jpg")),  # not an image
        story(4, photos.url("/tiny.jpg")),  # too small
        story(5, None),
    ]
    with Fetcher() as fetcher:
        owned = own_images(
            stories,
            fetcher=fetcher,
            shapes=(LEAD, THUMB),
            base_url="https://cdn.example.org/i/",
            needs=lambda i: "lead" if i == 0 else "thumb",
            allow_private=lambda _s: True,
        )
    lead, thumb = owned.stories[0].image, owned.stories[1].image
    assert lead is not None
    assert thumb is not None
    assert [r.role for r in lead.renditions] == ["lead", "thumb"]
    assert lead.rendition("lead") is not None
    assert lead.renditions[0].url.startswith("https://cdn.example.org/i/")
    assert lead.alt == "photo 0"  # the description travels with our copy
    assert [s.image for s in owned.stories[2:]] == [None] * 4
    assert len(owned.warnings) == 3
    assert owned.warnings[0].startswith("story 'Story 2': image dropped (")
    assert "HTTP 404" in owned.warnings[0]
    assert "story 'Story 3': image dropped (served as 'text/html', not an image)" in owned.warnings
    assert "Story 4" in owned.warnings[2]
    assert "too small" in owned.warnings[2]
    assert {f.key for f in owned.files} == {r.url.rsplit("/", 1)[1] for r in lead.renditions}
    # Without allow_private the loopback server is refused, like any other fetch.
    with Fetcher() as fetcher:
        refused = own_images(
            stories[:1],
            fetcher=fetcher,
            shapes=(LEAD,),
            base_url="https://x.org/img",
            needs=lambda _i: "lead",
        )
    assert refused.stories[0].image is None
    assert "non-public address" in refused.warnings[0]


def test_image_store_and_the_img_route(project: Project, tmp_path: Path) -> None:
    made = crop_resize(photo(1600, 900), LEAD, max_pixels=40_000_000)
    store = Store(project.state)
    try:
        images = ImageStore(store, folder=tmp_path / "static")
        images.put(made.key, made.data, made.content_type)
        images.put(made.key, made.data, made.content_type)  # the same bytes: stored once
        assert images.get(made.key) == (made.data, "image/jpeg")
        assert images.get("0" * 32 + ".jpg") is None
        assert images.get("../../etc/passwd") is None
        assert (tmp_path / "static" / made.key).read_bytes() == made.data
    finally:
        store.close()
    app = App(project.config)
    with BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server:
        ok = httpx.get(f"{server.url}/img/{made.key}")
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "image/jpeg"
        assert ok.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert ok.content == made.data
        assert httpx.get(f"{server.url}/img/{'1' * 32}.jpg").status_code == 404
        assert httpx.get(f"{server.url}/img/x.svg").status_code == 404
    app.close()
