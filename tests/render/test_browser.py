"""Both layouts in a real browser: headless Chromium (Debian) driven by Playwright.

At 320, 375, 600 and 800 px, light and emulated dark mode: no horizontal scrolling, every image
(our own resized copies, served on loopback) loaded and inside the viewport, thumbnails
aligned, body text at least 14 px, links at least 44 px tall, contrast at least 4.5:1,
right-to-left story blocks laid out right to left, and axe-core (from the npm registry)
finds no serious or critical violation. Screenshots go to the folder named by the
DIGEST_SCREENSHOTS environment variable (by default a pytest temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from digest.models import Coverage, Image, Publication, Rendition, Story
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.frame import LAYOUTS, Frame, Picture
from digest.render.images import LEAD, THUMB, Processed, crop_resize, logo
from digest.render.message import Recipient, prepare_message
from digest.testing.http import FixtureServer
from digest.testing.mail import parse_clean

from photos import SHAPES, photo

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address="The Morning Brief, 1 Example Street, 10115 Berlin, Germany",
)
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen"
AXE_VERSION = "4.14.1"
WIDTHS = [320, 375, 600, 800]

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
  const images = [...document.images].filter(visible).map((img) => {
    const r = img.getBoundingClientRect();
    const loaded = img.complete && img.naturalWidth > 0;
    return {src: img.src, left: r.left, right: r.right, width: r.width, height: r.height,
            top: r.top, loaded: loaded, cls: img.className, alt: img.getAttribute('alt'),
            dir: (img.closest('.sx') || img).getAttribute('dir')};
  });
  // How far each line of el's text starts from el's start edge (right for RTL): 0 = flush.
  const starts = (el) => {
    const box = el.getBoundingClientRect();
    const rtl = getComputedStyle(el).direction === 'rtl';
    const range = document.createRange();
    range.selectNodeContents(el);
    const lines = {};
    for (const r of range.getClientRects()) {
      const k = Math.round(r.top);
      lines[k] = lines[k] ? [Math.min(lines[k][0], r.left), Math.max(lines[k][1], r.right)]
                          : [r.left, r.right];
    }
    return Object.values(lines).map(([l, r]) => (rtl ? box.right - r : l - box.left));
  };
  const blocks = [...document.querySelectorAll('.sx')].map((el) => ({
    dir: el.getAttribute('dir'), lang: el.getAttribute('lang'),
    direction: getComputedStyle(el).direction,
    title: (el.querySelector('h1, h3') || el).textContent.trim().slice(0, 40),
    starts: [...el.querySelectorAll('.h a, .tz, .mt')].flatMap(starts),
  }));
  // Contents list items: the bullet needs the list's padding on the side the item starts.
  const items = [...document.querySelectorAll('.toc li')].map((li) => {
    const box = li.getBoundingClientRect();
    const list = li.parentElement.getBoundingClientRect();
    const rtl = getComputedStyle(li).direction === 'rtl';
    return {dir: li.getAttribute('dir'), starts: starts(li.querySelector('a')),
            room: rtl ? list.right - box.right : box.left - list.left};
  });
  const headlines = [...document.querySelectorAll('.h a')]
    .map((a) => rgba(getComputedStyle(a).color));
  const logos = [...document.querySelectorAll('img.lg')].filter(visible).map((i) => i.className);
  const links = [...document.links].filter(visible).map((a) => ({
    href: a.href, text: a.textContent.trim().slice(0, 40),
    height: Math.max(a.getBoundingClientRect().height,
                     ...[...a.querySelectorAll('*')].map((c) => c.getBoundingClientRect().height)),
  }));
  return {
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    innerWidth: window.innerWidth,
    texts, images, links, blocks, items, headlines, logos,
  };
}"""


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


def _serve(server: FixtureServer, made: Processed) -> str:
    server.route(f"/img/{made.key}", made.data, headers={"Content-Type": made.content_type})
    return server.url(f"/img/{made.key}")


def _own(server: FixtureServer, data: bytes) -> tuple[Rendition, ...]:
    out = []
    for shape in (LEAD, THUMB):
        made = crop_resize(data, shape, max_pixels=40_000_000)
        out.append(Rendition(shape.role, _serve(server, made), made.width, made.height))
    return tuple(out)


def _logo(server: FixtureServer, colour: tuple[int, int, int]) -> Picture:
    import io

    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.new("RGBA", (800, 200), (*colour, 255)).save(buffer, "PNG")
    made = logo(buffer.getvalue())
    return Picture(_serve(server, made), made.width, made.height, PUB.name)


def edition_stories(server: FixtureServer) -> list[Story]:
    """A lead, thumbnails cut from photos of four shapes, RTL and CJK stories, a long word."""
    shapes = sorted(SHAPES)
    stories = [
        Story(
            url="https://world.example.org/lead",
            title="Lead story with a very large photograph",
            teaser="A teaser that runs to two lines or more on a phone. " * 3,
            source="World Desk",
            published=NOW,
            section="World",
            author="Rosa Diaz",
            word_count=900,
            image=Image(
                url="https://images.example.org/lead.jpg",
                alt="A harbour at dawn",
                caption="Caption.",
                credit="Agency",
                renditions=_own(server, photo(*SHAPES["16x9"])),
            ),
            also_in=("Le Monde",),
            # A grouped event: the other sources that told it, linked under it.
            coverage=tuple(
                Coverage(
                    name, f"https://{slug}.example.org/harbour", f"Harbour reopens ({name})", NOW
                )
                for name, slug in (("Harbour Herald", "herald"), ("Coast Times", "coast"))
            ),
        )
    ]
    for n in range(1, 9):
        image = None
        if n % 2:
            data = photo(*SHAPES[shapes[n % 4]], hue=40 * n)
            image = Image(
                url=f"https://images.example.org/{n}.jpg",
                alt=f"thumb {n}",
                renditions=_own(server, data),
            )
        stories.append(
            Story(
                url=f"https://news.example.org/{n}",
                title=f"Story {n}: {LONG_WORD}" if n == 2 else f"Story number {n}",
                teaser=f"Teaser {n}, with a few words of text. " * 4,
                source="Wire",
                published=NOW,
                section=("World", "Business", "")[n % 3],
                image=image,
                author="Sam Lee" if n % 3 == 1 else "",
                word_count=400 * n,
                coverage=(Coverage("Daily Wire", "https://wire.example.org/1", "Story 1", NOW),)
                if n == 1
                else (),
            )
        )
    stories.insert(  # second in the running order: in the contents list too
        1,
        Story(
            url="https://arabic.example.org/beirut",
            title="لبنان يعيد فتح مرفأ بيروت",
            teaser="أعادت السلطات اللبنانية فتح الجزء الشمالي من مرفأ بيروت أمام السفن التجارية.",
            source="Arabic Service",
            published=NOW,
            section="World",
            language="ar",
            image=Image(
                url="https://images.example.org/ar.jpg",
                renditions=_own(server, photo(*SHAPES["1x1"], hue=90)),
            ),
        ),
    )
    stories.append(
        Story(
            url="https://asia.example.org/tokyo",
            title="東京都、来年度予算案を発表",
            teaser="東京都は二十五日、来年度の予算案を発表した。総額は過去最大となった。",
            source="Asia Desk",
            published=NOW,
            section="Business",
            language="ja",
        )
    )
    return stories


@pytest.fixture(scope="module")
def images() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture(scope="module")
def pages(images: FixtureServer) -> dict[str, str]:
    """The HTML part of a real personalised message per layout, as a mail client gets it."""
    stories = edition_stories(images)
    light, dark = _logo(images, (20, 40, 90)), _logo(images, (230, 230, 240))
    out = {}
    for layout in LAYOUTS:
        frame = Frame(
            layout=layout,
            editor_note="Good morning. Today: a harbour reopens.",
            logo=light,
            logo_dark=dark,
            archive_url="https://news.example.org/archive/{date}",
            preferences=True,
            signup_url="https://news.example.org/subscribe",
            html_budget=100_000,
        )
        rendered = render_edition(
            make_environment(),
            stories=stories,
            publication=PUB,
            edition_date=date(2026, 11, 25),
            extra={"thin_day": True},
            frame=frame,
        )
        recipient = Recipient(
            email="anna@example.org",
            name="Anna Schmidt",
            unsubscribe_url="https://news.example.org/u/t",
        )
        data = prepare_message(
            rendered, PUB, preferences_url="https://news.example.org/p"
        ).personalise(recipient, date=NOW, message_id="<b1@news.example.org>")
        part = parse_clean(data).get_body(("html",))
        assert part is not None
        content = part.get_content()
        assert isinstance(content, str)
        assert "Hello, Anna!" in content  # the first name only
        out[layout] = content
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $DIGEST_SCREENSHOTS, or a temporary folder."""
    folder = os.environ.get("DIGEST_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def measure(
    browser: Browser, html: str, *, width: int, scheme: str, shot: Path | None = None
) -> dict[str, Any]:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        java_script_enabled=True,
    )
    try:
        page: Page = context.new_page()
        page.set_content(html, wait_until="load")
        result: dict[str, Any] = page.evaluate(MEASURE)
        if shot is not None:
            page.screenshot(path=str(shot), full_page=True)
        return result
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_fits_the_screen(
    browser: Browser, pages: dict[str, str], shots: Path, layout: str, width: int, scheme: str
) -> None:
    shot = shots / f"{layout}-{width}-{scheme}.png" if width != 800 else None
    m = measure(browser, pages[layout], width=width, scheme=scheme, shot=shot)
    assert m["innerWidth"] == width
    assert m["scrollWidth"] <= width, f"horizontal scroll: {m['scrollWidth']} > {width}"
    assert m["bodyScrollWidth"] <= width
    thumbs = [i for i in m["images"] if i["cls"] == "ti"]
    leads = [i for i in m["images"] if i["cls"] == "li"]
    assert len(leads) == 1
    assert len(thumbs) == (5 if layout == "cards" else 0)
    for img in m["images"]:
        assert img["loaded"], img
        assert img["left"] >= 0, img
        assert img["right"] <= width + 0.5, img
    # One logo shows, the dark one in dark mode.
    assert m["logos"] == (["lg lgd"] if scheme == "dark" else ["lg lgl"])
    # Thumbnails: all the same size, at the same distance from the edge they start at
    # (left for left-to-right stories, right for the Arabic one), beside their headlines.
    ltr = [t for t in thumbs if t["dir"] != "rtl"]
    for group, edge in ((ltr, "left"), ([t for t in thumbs if t not in ltr], "right")):
        assert len({round(t[edge]) for t in group}) <= 1, group
    assert {(round(t["width"]), round(t["height"])) for t in thumbs} <= {(96, 96)}
    assert all(t["alt"] == "" for t in thumbs)
    rtl = [b for b in m["blocks"] if b["dir"] == "rtl"]
    assert [b["lang"] for b in rtl] == ["ar"]
    assert all(b["direction"] == "rtl" for b in rtl)
    # Right-to-left text starts at the right: every line flush with the block's right edge.
    assert all(b["starts"] and max(b["starts"]) < 1 for b in rtl), rtl
    rtl_items = [i for i in m["items"] if i["dir"] == "rtl"]
    assert len(rtl_items) == 1
    assert all(i["starts"] and max(i["starts"]) < 1 for i in rtl_items), rtl_items
    assert all(i["room"] >= 16 for i in m["items"]), m["items"]  # each bullet inside the list
    assert all(b["direction"] == "ltr" for b in m["blocks"] if b["dir"] == "auto")
    small = [t for t in m["texts"] if t["size"] < 14]
    assert small == [], f"text under 14 px at {width} px: {small}"
    assert len(m["texts"]) > 20  # the measurement did see the digest's text
    short = [a for a in m["links"] if a["height"] < 44]
    assert short == [], f"tap targets under 44 px at {width} px: {short}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_text_contrast_and_headline_colour(
    browser: Browser, pages: dict[str, str], layout: str, scheme: str
) -> None:
    m = measure(browser, pages[layout], width=375, scheme=scheme)
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
    # Headlines keep the text colour in both schemes; they do not turn link blue.
    want = [230, 237, 243, 1] if scheme == "dark" else [31, 35, 40, 1]
    assert {tuple(c) for c in m["headlines"]} == {tuple(want)}


def axe_script() -> Path:
    """axe-core from the npm registry, installed once into a cache folder with npm."""
    root = Path(os.environ.get("DIGEST_AXE_DIR", Path.home() / ".cache" / "digest-tests"))
    folder = root / f"axe-core-{AXE_VERSION}"
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: install Debian's npm (axe-core comes from the registry)")
        folder.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(folder),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr
    return script


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_axe_finds_no_serious_violation(
    browser: Browser, pages: dict[str, str], layout: str, scheme: str
) -> None:
    script = axe_script()
    context = browser.new_context(viewport={"width": 375, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.set_content(pages[layout], wait_until="load")
        page.add_script_tag(path=str(script))
        result = page.evaluate("async () => JSON.stringify(await axe.run(document))")
    finally:
        context.close()
    report = json.loads(result)
    assert report["passes"], "axe ran no check"
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:80] for n in v["nodes"]][:3]}
        for v in report["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"axe-core ({layout}, {scheme}): {bad}"
