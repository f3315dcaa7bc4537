"""A subject can ask for the lead's short headline (``{{ lead | short_headline }}``): the one
its source gives, else the headline's first phrase when it stands alone."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.models import Publication, Story
from digest.render.edition import render_fitted
from digest.render.environment import make_environment
from digest.render.frame import DEFAULT_SUBJECT, short_headline
from digest.testing.http import FixtureServer

from conftest import Project


def story(title: str) -> Story:
    when = datetime(2026, 11, 25, 5, tzinfo=UTC)
    return Story(url="https://n.example/a", title=title, teaser="", source="S", published=when)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (
            "Open-source browser engine passes 95% of web platform tests, beating rivals",
            "Open-source browser engine passes 95% of web platform tests",
        ),
        ("Brexit: Theresa May loses vote by 230 – live", "Theresa May loses vote by 230"),
        (
            "Paris, Texas wins the festival's top prize",
            "Paris, Texas wins the festival's top prize",
        ),
        ("Storm Bert floods Wales", "Storm Bert floods Wales"),
        ("Live: markets fall", "markets fall"),
        ("Ukraine war: what we know on day 500", "what we know on day 500"),
    ],
)
def test_short_headline_is_the_first_phrase_that_stands_alone(title: str, expected: str) -> None:
    assert short_headline(title) == expected
    assert short_headline(story(title)) == expected


def test_a_short_headline_the_source_gives_comes_first() -> None:
    given = replace(story("A very long headline, with a clause"), short_title=" Short  one ")
    assert short_headline(given) == "Short one"


def test_a_subject_can_ask_for_the_leads_short_headline() -> None:
    lead = story("Open-source browser engine passes 95% of web platform tests, beating rivals")
    other = replace(story("Second story"), url="https://n.example/b")
    publication = Publication(
        name="The Harbour Herald",
        sender="The Harbour Herald <news@example.org>",
        base_url="https://herald.example.org",
        postal_address="1 Example Street, Sample Town",
    )

    def subject(template: str) -> str:
        return render_fitted(
            make_environment(),
            stories=[lead, other],
            publication=publication,
            edition_date=date(2026, 11, 25),
            subject_template=template,
            marker="",
        ).rendered.subject

    short = "Open-source browser engine passes 95% of web platform tests"
    assert subject(DEFAULT_SUBJECT) == short + "…"  # fitted: cut, and says so
    assert subject("{{ lead | short_headline | fit }}") == short  # a headline of its own
    with_name = subject('{{ (publication.name ~ ": " ~ (lead | short_headline)) | fit }}')
    assert with_name == short  # the name goes first when the headline would be cut


def test_the_setting_reaches_the_edition(project: Project) -> None:
    project.write_config(extra="email:\n  subject: '{{ lead | short_headline }} (brief)'\n")
    assert project.cli("check").exit_code == 0
    edition = json.loads(project.cli("build", "--json").stdout)
    assert edition["subject"] == "Putin poaches the neighbors for his Ukraine invasion (brief)"


HEAD = """<html><head><title>{title} - The Harbour Herald</title>
<meta property="og:site_name" content="The Harbour Herald">
<meta property="og:type" content="article">
<meta property="article:published_time" content="2026-11-24T05:00:00Z">
<meta name="description" content="A small team's engine now renders nearly all of the web.">
{extra}</head><body><article><h1>{title}</h1><p>Some text.</p></article></body></html>"""
LONG = "Open-source browser engine passes 95% of web platform tests, beating rivals on speed"


def og(title: str) -> str:
    return f'<meta property="og:title" content="{title}">'


def alternative(title: str) -> str:
    node = {"@type": "NewsArticle", "headline": LONG, "alternativeHeadline": title}
    return f'<script type="application/ld+json">{json.dumps(node)}</script>'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (og("Browser engine passes 95% of web tests"), "Browser engine passes 95% of web tests"),
        (og("Browser engine aces web tests | The Harbour Herald"), "Browser engine aces web tests"),
        (alternative("Engine passes web tests"), "Engine passes web tests"),
        # Not a short headline: cut short, two words, as long as the headline.
        (og("Open-source browser engine passes 95%..."), ""),
        (og("Browser engine"), ""),
        (og(LONG), ""),
    ],
)
def test_a_page_gives_its_short_headline(extra: str, expected: str) -> None:
    page = HEAD.format(title=LONG, extra=extra).encode()
    with FixtureServer() as server:
        server.route("/a", page, headers={"Content-Type": "text/html; charset=utf-8"})
        result = CliRunner().invoke(
            cli,
            ["--config", "none.yaml", "collect", "--allow-private", "--json", server.url("/a")],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    (story,) = json.loads(result.stdout)
    assert story["title"] == LONG
    assert story["short_title"] == expected
