"""Article pages as `kind: page`: hit rates over the saved real-world page shapes.

Each page in tests/fixtures/articles has a sidecar with what a reader sees: the headline,
the page's own excerpt (its description, if any), its first paragraph and its date. The
bars are the issue's: title exact after whitespace folding >= 95%, teaser starting like
the page's excerpt >= 85% where it has one, a teaser on >= 95%, a real date on >= 60%,
no crash. Pages without an excerpt should start with the article's first paragraph.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from digest.models import Story
from digest.normalize import ELLIPSIS
from digest.sources.base import Fetched
from digest.sources.page import PageSource

from conftest import FIXTURES

ARTICLES = FIXTURES / "articles"
SIDECARS = sorted(ARTICLES.glob("*.expected.yaml"))
START = 40  # characters of the excerpt a teaser must start with


@dataclass(frozen=True)
class Result:
    name: str
    spec: dict[str, Any]
    story: Story | None
    fetched: Fetched
    error: str = ""


def fold(text: str) -> str:
    return " ".join(text.split())


def starts_like(teaser: str, reference: str) -> bool:
    teaser, reference = fold(teaser).removesuffix(ELLIPSIS).strip(), fold(reference)
    n = min(START, len(reference), len(teaser))
    return n > 0 and teaser[:n].casefold() == reference[:n].casefold()


def run(sidecar: Path) -> Result:
    spec = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    fetched = Fetched(
        url=spec["fetched"]["url"],
        body=sidecar.with_name(sidecar.name.replace(".expected.yaml", ".html")).read_bytes(),
        headers={"content-type": spec["fetched"]["content_type"]},
        fetched_at=datetime.fromisoformat(spec["fetched"]["fetched_at"]),
    )
    name = sidecar.name.removesuffix(".expected.yaml")
    try:
        (story,) = PageSource(name=name, url=fetched.url).parse(fetched)
    except Exception as exc:  # counted: the bar is zero crashes
        return Result(name, spec, None, fetched, f"{type(exc).__name__}: {exc}")
    return Result(name, spec, story, fetched)


@pytest.fixture(scope="module")
def results() -> list[Result]:
    return [run(s) for s in SIDECARS]


def test_the_set_has_at_least_forty_shapes() -> None:
    assert len(SIDECARS) >= 40
    for sidecar in SIDECARS:
        assert sidecar.with_name(sidecar.name.replace(".expected.yaml", ".html")).is_file()


def test_hit_rates_meet_the_bars(results: list[Result]) -> None:
    crashes = [r for r in results if r.story is None]
    ok = [r for r in results if r.story is not None]
    titles = [r for r in ok if fold(r.story.title) == fold(r.spec["expect"]["title"])]  # type: ignore[union-attr]
    with_excerpt = [r for r in ok if r.spec["expect"]["excerpt"]]
    excerpt_hits = [
        r for r in with_excerpt if starts_like(r.story.teaser, r.spec["expect"]["excerpt"])
    ]  # type: ignore[union-attr]
    teasers = [r for r in ok if r.story.teaser]  # type: ignore[union-attr]
    without = [r for r in ok if not r.spec["expect"]["excerpt"]]
    body_hits = [
        r for r in without if starts_like(r.story.teaser, r.spec["expect"]["first_paragraph"])
    ]  # type: ignore[union-attr]
    dated = [r for r in ok if not r.story.undated]  # type: ignore[union-attr]
    rates = {
        "pages": len(results),
        "title_exact": len(titles) / len(results),
        "teaser_like_excerpt": len(excerpt_hits) / max(1, len(with_excerpt)),
        "teaser_present": len(teasers) / len(results),
        "teaser_like_first_paragraph": len(body_hits) / max(1, len(without)),
        "dated": len(dated) / len(results),
    }
    print(json.dumps({k: round(v, 3) for k, v in rates.items()}))
    misses = {
        "title": [(r.name, r.story.title) for r in ok if r not in titles],  # type: ignore[union-attr]
        "excerpt": [(r.name, r.story.teaser[:60]) for r in with_excerpt if r not in excerpt_hits],  # type: ignore[union-attr]
        "body": [(r.name, r.story.teaser[:60]) for r in without if r not in body_hits],  # type: ignore[union-attr]
        "crash": [(r.name, r.error) for r in crashes],
    }
    assert crashes == [], misses
    assert rates["title_exact"] >= 0.95, misses
    assert rates["teaser_like_excerpt"] >= 0.85, misses
    assert rates["teaser_present"] >= 0.95, misses
    assert rates["teaser_like_first_paragraph"] >= 0.85, misses
    assert rates["dated"] >= 0.60, misses


def test_dates_found_are_the_pages_own(results: list[Result]) -> None:
    for r in results:
        expected = r.spec["expect"]["published"]
        if r.story is None or r.story.undated or not expected:
            continue
        want = datetime.fromisoformat(expected)
        if want.tzinfo is None:  # a date without a time: the day is what must match
            assert r.story.published.date() == want.date(), r.name
        else:
            assert r.story.published == want, r.name


def test_no_markup_and_fallbacks_recorded(results: list[Result]) -> None:
    for r in results:
        assert r.story is not None
        dumped = json.dumps(r.story.to_dict(), ensure_ascii=False)
        assert not re.search(r"<[a-zA-Z/!]", dumped), r.name
        if not r.spec["expect"]["excerpt"] and r.story.teaser:
            assert "teaser from the article's text (no description)" in r.fetched.fallbacks


def test_encoding_fallbacks_keep_cafe_and_zurich(results: list[Result]) -> None:
    by_name = {r.name: r for r in results}
    for name in ("plain-windows1252", "mislabelled-utf8"):
        r = by_name[name]
        assert r.story is not None
        assert "Zürich" in r.story.title, r.story.title
        assert "café" in r.story.title.casefold(), r.story.title
        assert any(f.startswith("encoding guessed: cp1252") for f in r.fetched.fallbacks)
    assert "Zürich" in (by_name["plain-latin1-meta"].story or Story).title  # type: ignore[arg-type]
