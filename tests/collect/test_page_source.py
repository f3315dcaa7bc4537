"""Page and JSON Feed sources, kind detection, and `digest collect --json URL` on every fixture."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from digest.cli import cli
from digest.exceptions import ConfigError, SourceError
from digest.sources.base import Fetched, load_source
from digest.sources.detect import AutoSource, detect_kind
from digest.sources.htmlmeta import article_meta, json_ld, parse_html
from digest.testing.http import FixtureServer

from conftest import FIXTURES

DIRS = ("pages", "jsonfeed")
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def sidecars(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (FIXTURES / d).glob("*.expected.yaml"))


def body_for(sidecar: Path) -> Path:
    stem = sidecar.name.removesuffix(".expected.yaml")
    (body,) = [p for p in sidecar.parent.iterdir() if p.stem == stem and p.suffix != ".yaml"]
    return body


def load(sidecar: Path) -> tuple[dict[str, Any], Fetched]:
    spec = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
    fetched = Fetched(
        url=spec["fetched"]["url"],
        body=body_for(sidecar).read_bytes(),
        headers={"content-type": spec["fetched"]["content_type"]},
        fetched_at=spec["fetched"]["fetched_at"],
    )
    return spec, fetched


def check(spec: dict[str, Any], stories: list[dict[str, Any]], *, urls: bool = True) -> None:
    """``stories`` as the sidecar says; with ``urls`` off, only what a bare URL must reproduce
    (served from elsewhere, with default options: no URLs, nothing the source config sets)."""
    assert len(stories) == spec.get("count", len(spec["stories"]))
    configured = {"url", "source", "weight", *spec["source"]}
    if "teaser_length" in configured:
        configured.add("teaser")
    for actual, expected in zip(stories, spec["stories"], strict=False):
        for key, value in expected.items():
            if key in configured and not urls:
                continue
            if key == "image" and value and not urls:
                assert {k: v for k, v in actual["image"].items() if k != "url"} == {
                    k: v for k, v in value.items() if k != "url"
                }
                continue
            assert actual[key] == value, key
    dumped = json.dumps(stories, ensure_ascii=False).lower()
    for needle in spec.get("forbidden", []):
        assert needle.lower() not in dumped, f"{needle!r} reached a story"


def test_fixture_set_is_complete() -> None:
    names = {body_for(s).name for s in sidecars(*DIRS)}
    assert {"front.html", "article_jsonld.html", "article_og.html", "jsonfeed11.json"} <= names
    for d in DIRS:
        bodies = {p.name for p in (FIXTURES / d).iterdir() if not p.name.endswith(".yaml")}
        assert bodies == {body_for(s).name for s in sidecars(d)}


@pytest.mark.parametrize("sidecar", sidecars(*DIRS), ids=lambda p: p.name.split(".")[0])
def test_fixture_matches_sidecar(sidecar: Path) -> None:
    spec, fetched = load(sidecar)
    source = dict(spec["source"])
    options = source.pop("options", {})
    stories = load_source(spec["kind"], url=fetched.url, **source, **options).parse(fetched)
    check(spec, [s.to_dict() for s in stories])
    for story in stories:
        assert story.published.tzinfo is UTC
        assert len(story.teaser) <= source.get("teaser_length", 300)


@pytest.mark.parametrize("sidecar", sidecars(*DIRS), ids=lambda p: p.name.split(".")[0])
def test_detection_gives_the_same_stories_without_options(sidecar: Path) -> None:
    spec, fetched = load(sidecar)
    assert detect_kind(fetched) == spec["kind"]
    source = {k: v for k, v in spec["source"].items() if k != "options"}
    stories = AutoSource(url=fetched.url, **source).parse(fetched)
    check(spec, [s.to_dict() for s in stories])


def test_front_page_lead_and_four_teasers_with_captions_and_credits() -> None:
    _spec, fetched = load(FIXTURES / "pages" / "front.expected.yaml")
    stories = load_source("page", name="Signal", url=fetched.url).parse(fetched)
    lead, *teasers = stories
    assert lead.title == "Putin poaches the neighbors for his Ukraine invasion"
    assert lead.image is not None
    assert lead.image.credit == "Reuters"
    assert len(teasers) == 4
    for story in teasers:
        assert story.image is not None
        assert story.image.caption
        assert story.image.credit
        assert not story.teaser.startswith(story.image.alt)  # the repeated alt text is dropped
    assert all(s.url.startswith("https://signal.example/") for s in stories)


def test_article_metadata_order_and_site_name() -> None:
    _, fetched = load(FIXTURES / "pages" / "article_jsonld.expected.yaml")
    doc = parse_html(fetched.body, fetched.headers, "x")
    meta = article_meta(doc, json_ld(doc))
    assert meta.is_article
    assert meta.site_name == "Harbour Gazette"  # JSON-LD publisher outranks og:site_name
    assert meta.url == "https://harbour-gazette.example/2026/11/24/electric-ferries/"
    assert meta.published == "2026-11-24T06:15:00+01:00"


def page(body: str, **options: Any) -> list[dict[str, Any]]:
    fetched = Fetched(url="https://p.example/x/", body=body.encode(), headers={}, fetched_at=NOW)
    return [
        s.to_dict()
        for s in load_source("page", name="p", url=fetched.url, **options).parse(fetched)
    ]


def test_page_with_only_a_title_is_one_undated_story() -> None:
    (story,) = page("<html><head><title>Council meets</title></head><body></body></html>")
    assert (story["title"], story["url"], story["undated"]) == (
        "Council meets",
        "https://p.example/x/",
        True,
    )


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        ("", {}, r"^p: empty response"),
        ("<html><body><p>no title</p></body></html>", {}, r"^p: .* has no article title"),
        ("<html><body><div>x</div></body></html>", {"item": "li.story"}, r"no teaser items"),
    ],
)
def test_page_problems_are_source_errors(body: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        page(body, **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"item": "li[["}, r"source 'p' \(page\): item selector 'li\[\[' is invalid"),
        ({"mode": "magazine"}, r"mode must be one of auto, article, front"),
        ({"colour": "red"}, r"unknown option\(s\) colour"),
        ({"include": ["("]}, r"source 'p': include pattern '\(' is invalid"),
    ],
)
def test_bad_page_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_source("page", name="p", url="https://p.example/", **options)


def test_hostile_cards_keep_nothing_executable() -> None:
    body = """<html><body>
      <article><h2><a href="javascript:alert(1)">Bad link</a></h2></article>
      <article><h2 onclick="alert(2)"><a href="/ok">Fine <script>alert(3)</script>title</a></h2>
        <img src="x.jpg" onerror="alert(4)" alt="&lt;img src=x onerror=alert(5)&gt;">
        <p>Text<iframe src="javascript:alert(6)"></iframe> here __DIGEST_EMAIL__</p></article>
      <article><h2><a href="/two">Second</a></h2></article></body></html>"""
    stories = page(body)
    assert [s["title"] for s in stories] == ["Fine title", "Second"]
    dumped = json.dumps(stories).lower()
    for needle in ("alert(", "javascript:", "onerror", "<img", "__digest_"):
        assert needle not in dumped


def test_jsonfeed_problems_are_source_errors() -> None:
    def parse(body: bytes) -> None:
        fetched = Fetched(url="https://j.example/f", body=body, headers={}, fetched_at=NOW)
        load_source("jsonfeed", name="j", url=fetched.url).parse(fetched)

    with pytest.raises(SourceError, match=r"^j: https://j\.example/f is not JSON"):
        parse(b"{not json")
    with pytest.raises(SourceError, match=r"is not a JSON Feed"):
        parse(b'{"version": "1", "items": []}')
    with pytest.raises(SourceError, match=r"has no items list"):
        parse(b'{"version": "https://jsonfeed.org/version/1", "items": 3}')


def served_fixtures() -> list[Path]:
    feeds = [s for s in sidecars("feeds") if "error" not in yaml.safe_load(s.read_text("utf-8"))]
    return feeds + sidecars(*DIRS)


@pytest.mark.parametrize("sidecar", served_fixtures(), ids=lambda p: p.name.split(".")[0])
def test_collect_url_without_config_detects_the_kind(sidecar: Path, tmp_path: Path) -> None:
    spec, fetched = load(sidecar)
    with FixtureServer() as server:
        path = "/" + body_for(sidecar).name
        server.route(path, fetched.body, headers={"Content-Type": spec["fetched"]["content_type"]})
        result = CliRunner().invoke(
            cli,
            [
                "--config",
                str(tmp_path / "absent.yaml"),
                "collect",
                "--json",
                "--allow-private",
                server.url(path),
            ],
            env={"DIGEST_NOW": "2026-11-24T07:00:00+00:00"},
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    stories = json.loads(result.stdout)
    assert {s["source"] for s in stories} <= {server.url(path).split("://", 1)[1]}
    check(spec, stories, urls=False)
    assert list(tmp_path.iterdir()) == []  # no config needed, no state written


def test_collect_urls_refuses_loopback_without_allow_private(tmp_path: Path) -> None:
    with FixtureServer(FIXTURES / "pages") as server:
        result = CliRunner().invoke(
            cli, ["--config", str(tmp_path / "none.yaml"), "collect", server.url("/front.html")]
        )
    assert result.exit_code == 1
    assert "non-public address 127.0.0.1" in result.stderr
    assert "allow_private" in result.stderr


JSONFEED = b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": []}'
RSS_DOCTYPE = (
    b'<?xml version="1.0"?>\n<!-- generated -->\n<!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>\n'
    b'<rss version="2.0"><channel><title>x</title><description><![CDATA[<body>]]>'
    b"</description></channel></rss>"
)


@pytest.mark.parametrize(
    ("body", "ctype", "kind"),
    [
        (RSS_DOCTYPE, "text/html", "feed"),  # the root element beats a generic type
        (RSS_DOCTYPE, "", "feed"),
        (
            b"\xef\xbb\xbf<feed xmlns='http://www.w3.org/2005/Atom'><title>a</title></feed>",
            "text/plain",
            "feed",
        ),
        (b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', "", "feed"),
        (
            b"<!DOCTYPE html><html><head><title>rss feed of the day</title></head></html>",
            "application/xml",
            "page",
        ),  # "rss" in the text is no feed
        (b"<html><body>not a feed</body></html>", "application/rss+xml", "feed"),  # type says
        (JSONFEED, "text/plain", "jsonfeed"),
        (JSONFEED, "application/feed+json", "jsonfeed"),
        (b'{"version": "1.0", "note": "jsonfeed.org/version/1 in a string"}', "", "feed"),
        (b"<p>A fragment without html</p>", "", "page"),
    ],
)
def test_detection_by_content_type_then_root_element(body: bytes, ctype: str, kind: str) -> None:
    fetched = Fetched(
        url="https://d.example/x", body=body, headers={"content-type": ctype}, fetched_at=NOW
    )
    assert detect_kind(fetched) == kind
