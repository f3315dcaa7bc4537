"""Benchmark: build-time rendering and image processing for 30 stories, then per-recipient cost.

Usage: python benchmarks/render.py [--stories 30] [--recipients N] [--layout cards|briefing]
Prints one JSON line: images_ms (fetch over loopback + check + crop/resize with Pillow, both
roles, every story with a large photo of one of four shapes), render_ms (Jinja + MJML +
premailer with the HTML budget fitted, once per edition and variant), html_kb and the
stories in full, per_recipient_us (placeholder substitution into prepared bytes: MJML and
premailer never run per subscriber) and messages_per_s.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import PIL.Image
import PIL.ImageDraw

from digest.http import Fetcher
from digest.images import own_images
from digest.models import Image, Publication, Story
from digest.render.edition import render_fitted
from digest.render.environment import make_environment
from digest.render.frame import Frame
from digest.render.images import LEAD, THUMB
from digest.render.message import Recipient, make_message_id, prepare_message

PUBLICATION = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address="1 Example Street, Berlin",
)
SHAPES = [(2400, 1350), (1200, 1800), (1600, 1600), (2400, 800)]  # 16:9, 2:3, 1:1, 3:1


def photo(width: int, height: int) -> bytes:
    image = PIL.Image.new("RGB", (width, height), (70, 110, 170))
    PIL.ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, width // 2, height // 2), fill=(240, 200, 60)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


class PhotoServer:
    """The photos on a loopback HTTP server, as a newsroom's image CDN would serve them."""

    def __init__(self) -> None:
        photos = {f"/{i}.jpg": photo(*shape) for i, shape in enumerate(SHAPES)}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = photos[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def stories(n: int, server: PhotoServer) -> list[Story]:
    now = datetime(2026, 11, 24, 6, tzinfo=UTC)
    return [
        Story(
            url=f"https://news.example.org/2026/11/story-{i}",
            title=f"Story number {i}: a headline of a realistic length for a digest",
            teaser=(
                "A teaser of a couple of sentences that says what happened and why it "
                "matters to the reader, cut at a word boundary. "
            )
            * 2,
            source="World Desk" if i % 2 else "Tech Wire",
            published=now - timedelta(hours=i),
            section=("World", "Technology", "Business")[i % 3],
            author="Rosa Diaz" if i % 4 == 0 else "",
            word_count=800 + 10 * i,
            image=Image(
                url=f"{server.url}/{i % 4}.jpg", alt="Photo", caption="A caption", credit="Reuters"
            ),
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stories", type=int, default=30)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--layout", choices=["cards", "briefing"], default="cards")
    args = parser.parse_args()
    server = PhotoServer()
    frame = Frame(layout=args.layout, html_budget=100_000)
    items = stories(args.stories, server)
    start = time.perf_counter()
    with Fetcher() as fetcher:
        owned = own_images(
            items,
            fetcher=fetcher,
            shapes=(LEAD, THUMB),
            base_url="https://news.example.org/img",
            needs=frame.role,
            allow_private=lambda _s: True,
        )
    images_s = time.perf_counter() - start
    env = make_environment()
    start = time.perf_counter()
    fitted = render_fitted(
        env,
        stories=owned.stories,
        publication=PUBLICATION,
        edition_date=date(2026, 11, 24),
        frame=frame,
    )
    render_s = time.perf_counter() - start
    rendered = fitted.rendered
    prepared = prepare_message(rendered, PUBLICATION)
    when = datetime(2026, 11, 24, 6, tzinfo=UTC)
    start = time.perf_counter()
    size = 0
    for i in range(args.recipients):
        data = prepared.personalise(
            Recipient(
                email=f"reader{i}@example.org",
                name=f"Reader {i}",
                unsubscribe_url=f"https://news.example.org/u/token{i}",
            ),
            date=when,
            message_id=make_message_id("news.example.org"),
        )
        size += len(data)
    per = (time.perf_counter() - start) / args.recipients
    server.httpd.shutdown()
    print(
        json.dumps(
            {
                "layout": args.layout,
                "stories": args.stories,
                "images_ms": round(images_s * 1000, 1),
                "image_files": len(owned.files),
                "image_kb": round(sum(len(f.data) for f in owned.files) / 1024, 1),
                "render_ms": round(render_s * 1000, 1),
                "html_kb": round(len(rendered.html.encode()) / 1024, 1),
                "in_full": len(fitted.full),
                "as_links": len(fitted.more),
                "message_kb": round(size / args.recipients / 1024, 1),
                "recipients": args.recipients,
                "per_recipient_us": round(per * 1e6, 1),
                "messages_per_s": round(1 / per),
            }
        )
    )


if __name__ == "__main__":
    main()
