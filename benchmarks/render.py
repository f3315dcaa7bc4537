"""Benchmark: render one 15-story edition once, then personalise it for N recipients.

Usage: python benchmarks/render.py [--recipients N]
Prints one JSON line: render_ms (Jinja + MJML + premailer, once per edition), html_kb,
per_recipient_us (placeholder substitution into prepared bytes) and messages_per_s.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime, timedelta

from digest.models import Image, Story
from digest.render.edition import Publication, render_edition
from digest.render.environment import make_environment
from digest.render.message import Recipient, make_message_id, prepare_message

PUBLICATION = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address="1 Example Street, Berlin",
)


def stories(n: int) -> list[Story]:
    now = datetime(2026, 11, 24, 6, tzinfo=UTC)
    return [
        Story(
            url=f"https://news.example.org/2026/11/story-{i}",
            title=f"Story number {i}: a headline of a realistic length for a digest",
            teaser=("A teaser of a couple of sentences that says what happened and why it "
                    "matters to the reader, cut at a word boundary. ") * 2,
            source="World Desk" if i % 2 else "Tech Wire",
            published=now - timedelta(hours=i),
            section=("World", "Technology", "Business")[i % 3],
            image=Image(url=f"https://images.example.org/{i}.jpg", alt="Photo", caption="A caption",
                        credit="Reuters") if i % 3 == 0 else None,
        )
        for i in range(n)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=20_000)
    args = parser.parse_args()
    env = make_environment()
    items = stories(15)
    start = time.perf_counter()
    rendered = render_edition(env, stories=items, publication=PUBLICATION,
                              edition_date=date(2026, 11, 24))  # fmt: skip
    render_s = time.perf_counter() - start
    prepared = prepare_message(rendered, PUBLICATION)
    when = datetime(2026, 11, 24, 6, tzinfo=UTC)
    start = time.perf_counter()
    size = 0
    for i in range(args.recipients):
        data = prepared.personalise(
            Recipient(email=f"reader{i}@example.org", name=f"Reader {i}",
                      unsubscribe_url=f"https://news.example.org/u/token{i}"),
            date=when,
            message_id=make_message_id("news.example.org"),
        )  # fmt: skip
        size += len(data)
    per = (time.perf_counter() - start) / args.recipients
    print(json.dumps({
        "render_ms": round(render_s * 1000, 1),
        "html_kb": round(len(rendered.html.encode()) / 1024, 1),
        "message_kb": round(size / args.recipients / 1024, 1),
        "recipients": args.recipients,
        "per_recipient_us": round(per * 1e6, 1),
        "messages_per_s": round(1 / per),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
