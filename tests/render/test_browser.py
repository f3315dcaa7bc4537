"""The default digest in a real browser: headless Chromium (Debian) driven by Playwright.

At phone (375 px) and desktop-client (600 px) widths: no horizontal scrolling, every image
inside the viewport, body text at least 14 px, links at least 44 px tall; in light and in
emulated dark mode, body text keeps a contrast of at least 4.5:1 against its background.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from digest.models import Image, Publication, Story
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.message import Recipient, prepare_message
from digest.testing.http import FixtureServer
from digest.testing.mail import parse_clean

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address="The Morning Brief, 1 Example Street, 10115 Berlin, Germany",
)
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen"

# Everything measured runs in the page: elements whose own text is visible, their computed
# font size, colour and the first opaque background up the tree.
MEASURE = """() => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && parseFloat(s.opacity) > 0;
  };
  const rgba = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    const p = m[1].split(',').map((x) => parseFloat(x));
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const texts = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own.length || !visible(el)) continue;
    const s = getComputedStyle(el);
    texts.push({
      text: own.map((n) => n.textContent.trim()).join(' ').slice(0, 40),
      size: parseFloat(s.fontSize), color: rgba(s.color), background: background(el),
    });
  }
  const images = [...document.images].map((img) => {
    const r = img.getBoundingClientRect();
    const loaded = img.complete && img.naturalWidth > 0;
    return {src: img.src, left: r.left, right: r.right, loaded: loaded};
  });
  const links = [...document.links].filter(visible).map((a) => ({
    href: a.href, text: a.textContent.trim().slice(0, 40),
    height: Math.max(a.getBoundingClientRect().height,
                     ...[...a.querySelectorAll('*')].map((c) => c.getBoundingClientRect().height)),
  }));
  return {
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    innerWidth: window.innerWidth,
    texts, images, links,
  };
}"""


def png(width: int, height: int) -> bytes:
    """A solid PNG of the given size: large photos must scale down to the viewport."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x90\xa0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    # Text colours with alpha are blended over their background first (WCAG).
    alpha = fg[3]
    blended = [fg[i] * alpha + bg[i] * (1 - alpha) for i in range(3)]
    high, low = sorted((luminance(blended), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture(scope="module")
def images() -> Iterator[FixtureServer]:
    server = FixtureServer()
    server.route("/lead.png", png(1600, 900), headers={"Content-Type": "image/png"})
    server.route("/thumb.png", png(900, 900), headers={"Content-Type": "image/png"})
    with server:
        yield server


@pytest.fixture(scope="module")
def page_html(images: FixtureServer) -> str:
    """The HTML part of a real personalised message, as a mail client gets it."""
    stories = [
        Story(
            url="https://world.example.org/lead",
            title="Lead story with a very large photograph",
            teaser="A teaser that runs to two lines or more on a phone. " * 3,
            source="World Desk",
            published=NOW,
            section="World",
            image=Image(
                url=images.url("/lead.png"), alt="A photo", caption="Caption.", credit="Agency"
            ),
            also_in=("Le Monde",),
        )
    ]
    for n in range(1, 7):
        stories.append(
            Story(
                url=f"https://news.example.org/{n}",
                title=f"Story {n}: {LONG_WORD}" if n == 2 else f"Story number {n}",
                teaser=f"Teaser {n}, with a few words of text. " * 4,
                source="Wire",
                published=NOW,
                section=("World", "Business", "")[n % 3],
                image=Image(url=images.url("/thumb.png"), alt=f"thumb {n}") if n % 2 else None,
            )
        )
    rendered = render_edition(
        make_environment(), stories=stories, publication=PUB, edition_date=date(2026, 11, 25),
        extra={"thin_day": True},
    )  # fmt: skip
    recipient = Recipient(
        email="anna@example.org", name="Anna", unsubscribe_url="https://news.example.org/u/tok"
    )
    data = prepare_message(rendered, PUB).personalise(
        recipient, date=NOW, message_id="<b1@news.example.org>"
    )
    part = parse_clean(data).get_body(("html",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def measure(browser: Browser, html: str, *, width: int, scheme: str) -> dict[str, Any]:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme,  # type: ignore[arg-type]
        java_script_enabled=True,
    )  # fmt: skip
    try:
        page: Page = context.new_page()
        page.set_content(html, wait_until="load")
        result: dict[str, Any] = page.evaluate(MEASURE)
        return result
    finally:
        context.close()


# 375 and 600 px are the acceptance widths; 320 and 800 px are the design's outer limits.
@pytest.mark.parametrize("width", [375, 600, 320, 800])
def test_layout_fits_the_screen(browser: Browser, page_html: str, width: int) -> None:
    m = measure(browser, page_html, width=width, scheme="light")
    assert m["innerWidth"] == width
    assert m["scrollWidth"] <= width, f"horizontal scroll: {m['scrollWidth']} > {width}"
    assert m["bodyScrollWidth"] <= width
    assert len(m["images"]) == 4
    for img in m["images"]:
        assert img["loaded"], img
        assert img["left"] >= 0, img
        assert img["right"] <= width + 0.5, img
    small = [t for t in m["texts"] if t["size"] < 14]
    assert small == [], f"text under 14 px at {width} px: {small}"
    assert len(m["texts"]) > 20  # the measurement did see the digest's text
    short = [a for a in m["links"] if a["height"] < 44]
    assert short == [], f"tap targets under 44 px at {width} px: {short}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_body_text_contrast(browser: Browser, page_html: str, scheme: str) -> None:
    m = measure(browser, page_html, width=375, scheme=scheme)
    low = [
        {**t, "ratio": round(contrast(t["color"], t["background"]), 2)}
        for t in m["texts"]
        if contrast(t["color"], t["background"]) < 4.5
    ]
    assert low == [], f"{scheme} mode: text below 4.5:1 contrast: {low}"
    backgrounds = {tuple(t["background"][:3]) for t in m["texts"]}
    if scheme == "dark":
        # The dark styles really applied: text sits on dark backgrounds, not on white.
        assert all(luminance(list(bg)) < 0.2 for bg in backgrounds), backgrounds
    else:
        assert any(luminance(list(bg)) > 0.8 for bg in backgrounds), backgrounds
