"""Benchmark: article metadata on real article pages (tests/collect/data/articles_real).

Run: python benchmarks/articles.py [--misses]   (prints one JSON line; --misses then lists
the pages each metric missed, with what we found and what was expected)

Each page is parsed as a `kind: page` source would parse it after fetching it:
``PageSource(...).parse(Fetched(...))`` at the page's own URL (its canonical or og:url, else
``https://<name>.example/article``). The metrics are issue 30's:

- headline: ours equals the expected title after whitespace folding, or equals it with the
  site's name part removed, or the expected title equals ours with the site's name removed
  (a leading or trailing part, between separators, naming the site: the expected site name
  or the host's name);
- teaser like excerpt: over pages with an expected excerpt, our teaser starts like it (first
  40 characters, case and whitespace folded, our ellipsis removed);
- teaser: a teaser at all; dated: a date of the page's own (the story is not undated).

tests/collect/test_articles_real.py asserts the bars on the same measure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.models import Story
from digest.normalize import ELLIPSIS
from digest.sources.base import Fetched
from digest.sources.page import PageSource

DATA = Path(__file__).resolve().parent.parent / "tests" / "collect" / "data" / "articles_real"
START = 40  # characters of the excerpt a teaser must start with
FETCHED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_SEPARATOR = re.compile(r"\s+[\-–—·•:»/~|]\s+|\s*[|｜]\s*")
_HOST_NOISE = {"www", "m", "en", "edition", "amp", "mobile"}


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    expected: dict[str, str]
    story: Story | None
    error: str = ""


def fold(text: str) -> str:
    return " ".join(text.split())


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if c.isalnum())


def without_site(title: str, site_name: str, url: str) -> str:
    """``title`` without a leading or trailing part naming the site."""
    parts = [p for p in _SEPARATOR.split(fold(title)) if p]
    labels = [h for h in (urlsplit(url).hostname or "").lower().split(".") if h not in _HOST_NOISE]
    names = {k for k in (_key(site_name), *(_key(h) for h in labels[:-1])) if len(k) >= 2}

    def is_site(part: str) -> bool:
        key = _key(part)
        return bool(key) and any(key == n or (len(n) >= 4 and n in key) for n in names)

    while len(parts) > 1 and is_site(parts[-1]):
        parts.pop()
    while len(parts) > 1 and is_site(parts[0]):
        parts.pop(0)
    if len(parts) == len(_SEPARATOR.split(fold(title))):
        return fold(title)
    # The kept parts as they stood in the title (their separators included).
    text = fold(title)
    return text[text.index(parts[0]) : text.rindex(parts[-1]) + len(parts[-1])]


def headline_right(ours: str, expected: str, site_name: str, url: str) -> bool:
    ours, expected = fold(ours), fold(expected)
    return (
        ours == expected
        or ours == without_site(expected, site_name, url)
        or expected == without_site(ours, site_name, url)
    )


def starts_like(teaser: str, reference: str) -> bool:
    teaser, reference = fold(teaser).removesuffix(ELLIPSIS).strip(), fold(reference)
    n = min(START, len(reference), len(teaser))
    return n > 0 and teaser[:n].casefold() == reference[:n].casefold()


def names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in DATA.glob("*.json"))


def parse(name: str) -> Page:
    spec = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    fetched = Fetched(
        url=spec["url"],
        body=gzip.decompress((DATA / f"{name}.html.gz").read_bytes()),
        headers={"content-type": "text/html"},
        fetched_at=FETCHED_AT,
    )
    try:
        (story,) = PageSource(name=name, url=fetched.url).parse(fetched)
    except Exception as exc:  # counted as a miss of every metric
        return Page(name, spec["url"], spec["expected"], None, f"{type(exc).__name__}: {exc}")
    return Page(name, spec["url"], spec["expected"], story)


def measure(pages: list[Page]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The rates and counts of the module docstring, and the misses of each metric."""
    misses: dict[str, list[Any]] = {"headline": [], "excerpt": [], "teaser": [], "date": []}
    with_excerpt = 0
    for p in pages:
        e, s = p.expected, p.story
        if s is None:
            for metric in misses:
                misses[metric].append((p.name, p.error))
            with_excerpt += bool(e["excerpt"])
            continue
        if not headline_right(s.title, e["title"], e["site_name"], p.url):
            misses["headline"].append((p.name, s.title, e["title"]))
        if e["excerpt"]:
            with_excerpt += 1
            if not starts_like(s.teaser, e["excerpt"]):
                misses["excerpt"].append((p.name, s.teaser[:80], e["excerpt"][:80]))
        if not s.teaser:
            misses["teaser"].append((p.name, ""))
        if s.undated:
            misses["date"].append((p.name, e["published"]))
    total = len(pages)
    hits = {
        "headline": total - len(misses["headline"]),
        "teaser_like_excerpt": with_excerpt - len(misses["excerpt"]),
        "teaser": total - len(misses["teaser"]),
        "dated": total - len(misses["date"]),
    }
    figures: dict[str, Any] = {"pages": total, "with_excerpt": with_excerpt}
    for metric, hit in hits.items():
        figures[metric] = round(hit / max(1, with_excerpt if "excerpt" in metric else total), 3)
        figures[f"{metric}_hits"] = hit
    figures["crashes"] = sum(p.story is None for p in pages)
    return figures, misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the misses per metric")
    args = parser.parse_args()
    figures, misses = measure([parse(n) for n in names()])
    print(json.dumps(figures))
    if args.misses:
        for metric, rows in misses.items():
            print(f"\n{metric}: {len(rows)} missed")
            for row in rows:
                print("  " + " | ".join(str(x) for x in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
