"""`digest edit N --add-url URL [--position K]`: the article read like a page source's,
under the sources' address rules (the SSRF attack refused)."""

from __future__ import annotations

import json

from digest.models import Edition
from digest.testing.http import FixtureServer

from conftest import FIXTURES, Project

FERRIES = "https://harbour-gazette.example/2026/11/24/electric-ferries/"


def _built(project: Project) -> dict[str, object]:
    result = project.cli("build", "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _edition(project: Project) -> Edition:
    store = project.open_store()
    try:
        return store.get_edition(1)
    finally:
        store.close()


def test_add_a_story_by_url_at_a_position(project: Project) -> None:
    _built(project)
    body = (FIXTURES / "pages" / "article_jsonld.html").read_bytes()
    headers = {"Content-Type": "text/html; charset=utf-8"}
    project.feeds.route("/ferries.html", body, headers=headers)
    url = project.feeds.url("/ferries.html")  # where an allow_private source lives
    result = project.cli("edit", "1", "--by", "Rosa", "--add-url", url, "--position", "2")
    assert result.exit_code == 0, result.output
    edition = _edition(project)
    assert edition.stories[1].url == FERRIES
    assert edition.stories[1].title == "Ferry operator orders three electric boats & a new pier"
    assert edition.revision == 2
    again = project.cli("edit", "1", "--by", "Rosa", "--add-url", url)
    assert again.exit_code == 1
    assert "has https://harbour-gazette.example" in again.output


def test_add_url_refuses_a_private_address_no_source_lives_at(project: Project) -> None:
    _built(project)
    with FixtureServer(FIXTURES / "pages") as inside:  # the server's own network
        for url in (inside.url("/article_jsonld.html"), "http://169.254.169.254/latest/"):
            result = project.cli("edit", "1", "--by", "Mallory", "--add-url", url)
            assert result.exit_code == 1, result.output
            lines = result.output.strip().splitlines()
            assert len(lines) == 1, lines
            assert lines[0].startswith("Error: could not add the story: "), lines
            assert "Traceback" not in result.output
        assert inside.requests == []  # refused before connecting
    assert _edition(project).revision == 1


def test_add_url_bad_input_is_one_clear_line(project: Project) -> None:
    _built(project)
    for url, says in [
        ("ftp://example.org/x", "is not an http(s) address"),
        (project.feeds.url("/no-such-page.html"), "could not add"),
    ]:
        result = project.cli("edit", "1", "--by", "Rosa", "--add-url", url)
        assert result.exit_code == 1, result.output
        assert says in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
