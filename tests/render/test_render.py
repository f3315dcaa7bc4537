"""Tests for templates and rendering: order, escaping, text twin, placeholders, overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.exceptions import ConfigError, RenderError
from digest.models import Image, Publication, RenderedEdition, Rendition, Story
from digest.render import placeholders
from digest.render.edition import (
    compile_mjml,
    group_sections,
    inline_css,
    render_edition,
)
from digest.render.environment import (
    check_templates,
    make_environment,
    package_templates_dir,
    safe_url,
    wrap72,
)

NOW = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
OWN = "https://brief.example.org/img/"
DAY = date(2026, 11, 25)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <news@example.org>",
    base_url="https://brief.example.org",
    postal_address="1 Example Street, 12345 Sample Town",
)
TEASER = (
    "For many months now, Vladimir Putin has faced the dilemma of how to rustle up enough "
    "warm bodies for his invasion of Ukraine without exposing too much of the population."
)


def story(n: int, section: str, **kw: object) -> Story:
    fields: dict[str, object] = {
        "url": f"https://news.example.org/story-{n}?a=1&b=2",
        "title": f"Headline number {n}",
        "teaser": f"Teaser {n}. {TEASER}",
        "source": f"Source {n}",
        "published": NOW,
        "section": section,
    }
    fields.update(kw)
    return Story(**fields)  # type: ignore[arg-type]


def fixture_stories() -> list[Story]:
    lead = story(
        0,
        "World",
        image=Image(
            url="https://img.example.org/lead.jpg",
            alt="Russian President Vladimir Putin.",
            caption="The president in Moscow.",
            credit="Reuters",
            renditions=(Rendition("lead", OWN + "a" * 32 + ".jpg", 592, 333),),
        ),
        also_in=("Le Monde",),
    )
    thumb = Rendition("thumb", OWN + "b" * 32 + ".jpg", 96, 96)
    one = Image(url="https://img.example.org/1.jpg", alt="thumb one", renditions=(thumb,))
    return [
        lead,
        story(1, "World", image=one),
        story(2, "Business", title="Économie: la croissance ralentit à Zürich"),
        story(3, "World", title="Hack <script>alert(1)</script> & friends"),
        story(4, "Business"),
        story(5, "World", also_in=("The Paper", "Daily")),
        story(6, "Business"),
    ]


# Lead first, then sections in order of first appearance: World (1, 3, 5), Business (2, 4, 6).
EXPECTED_ORDER = [0, 1, 3, 5, 2, 4, 6]


def render(
    stories: Sequence[Story] | None = None, templates_dir: Path | None = None
) -> RenderedEdition:
    env = make_environment(templates_dir)
    return render_edition(
        env,
        stories=fixture_stories() if stories is None else stories,
        publication=PUB,
        edition_date=DAY,
        marker="",  # the canonical spelling: these tests are about where the templates put them
    )


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    return render()


def positions(haystack: str, needles: Sequence[str]) -> list[int]:
    found = [haystack.find(n) for n in needles]
    assert -1 not in found, dict(zip(needles, found, strict=True))
    return found


def test_html_has_stories_in_order(rendered: RenderedEdition) -> None:
    stories = fixture_stories()
    urls = [stories[i].url.replace("&", "&amp;") for i in EXPECTED_ORDER]
    found = positions(rendered.html, [f'href="{u}"' for u in urls])
    assert found == sorted(found)
    assert positions(rendered.html, [">World<", ">Business<"]) == sorted(
        positions(rendered.html, [">World<", ">Business<"])
    )


def test_html_escapes_story_text(rendered: RenderedEdition) -> None:
    assert "<script" not in rendered.html.lower()
    assert "Hack &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in rendered.html
    assert "Économie: la croissance ralentit à Zürich" in rendered.html


def test_html_has_lead_furniture_footer_and_dark_mode(rendered: RenderedEdition) -> None:
    html = rendered.html
    assert html.lower().startswith("<!doctype html>")
    assert 'alt="Russian President Vladimir Putin."' in html
    assert "The president in Moscow." in html
    assert "Photo: Reuters" in html
    assert "Read more" in html
    assert "also in Le Monde" in html
    assert "also in The Paper, Daily" in html
    assert f'<p class="dl">{placeholders.DATE_LINE}</p>' in html  # each reader's own day
    assert "You receive this because you subscribed to The Morning Brief as" in html
    assert f'href="{placeholders.UNSUBSCRIBE_URL}"' in html
    assert PUB.postal_address in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "[data-ogsc]" in html
    assert rendered.preheader in html  # the hidden preview text
    # Body text is at least 14 px; only the hidden preheader and img alt-text styles are smaller.
    body = html.split("</head>", 1)[1]
    body = re.sub(r"<img [^>]*>", "", body).replace("font-size:1px;color:#ffffff", "")
    assert re.findall(r"font-size:\s*(?:[1-9]|1[0-3])px", body) == []


def test_text_part_same_stories_same_order_and_wrapped(rendered: RenderedEdition) -> None:
    stories = fixture_stories()
    text = rendered.text
    found = positions(text, [f"\n{stories[i].url}\n" for i in EXPECTED_ORDER])
    assert found == sorted(found)
    found = positions(text, [stories[i].title for i in EXPECTED_ORDER])
    assert found == sorted(found)
    for line in text.splitlines():
        assert len(line) <= 72 or line.startswith(("https://", placeholders.PREFIX)), line
    assert text.startswith(f"The Morning Brief\n{placeholders.DATE_LINE}\n")
    assert "Hack <script>alert(1)</script> & friends" in text  # plain text is not escaped
    assert f"\n{placeholders.UNSUBSCRIBE_URL}\n" in text
    assert PUB.postal_address in text
    assert text.endswith("\n")


def test_placeholders_survive_rendering(rendered: RenderedEdition) -> None:
    for token in (placeholders.GREETING_NAME, placeholders.EMAIL, placeholders.UNSUBSCRIBE_URL):
        assert token in rendered.html
        assert token in rendered.text


def test_every_token_survives_mjml_and_premailer() -> None:
    env = make_environment()
    source = env.from_string(
        "<mjml><mj-body><mj-section><mj-column>"
        '{% for t in tokens %}<mj-text><a href="{{ t }}" title="{{ t }}">{{ t }}</a></mj-text>'
        '<mj-button href="https://x.org/?e={{ t }}">{{ t }}</mj-button>{% endfor %}'
        "</mj-column></mj-section></mj-body></mjml>"
    ).render(tokens=placeholders.TOKENS)
    html = inline_css(compile_mjml(source))
    for token in placeholders.TOKENS:
        assert html.count(token) == 5, token
    assert placeholders.split(f"a{placeholders.EMAIL}b") == ["a", placeholders.EMAIL, "b"]


def test_substitute_fills_values() -> None:
    values = placeholders.values_for(name="", email="a@b.org", unsubscribe_url="https://u")
    text = f"Hello{placeholders.GREETING_NAME}! {placeholders.EMAIL}"
    assert placeholders.substitute(text, values) == "Hello! a@b.org"
    values = placeholders.values_for(name="Anna", email="a@b.org", unsubscribe_url="https://u")
    assert placeholders.substitute(text, values) == "Hello, Anna! a@b.org"


def test_html_stays_small_for_fifteen_stories() -> None:
    stories = [
        story(
            i,
            ("World", "Business", "Science")[i % 3],
            image=Image(url=f"https://img.example.org/{i}.jpg", alt="a") if i % 2 else None,
        )
        for i in range(15)
    ]
    assert len(render(stories).html.encode("utf-8")) < 90_000


def test_subject_and_preheader_are_single_lines() -> None:
    stories = fixture_stories()
    stories[0] = story(0, "World", title="Line one\n  line   two " + "x" * 300, teaser="a\n\tb")
    result = render(stories)
    assert result.subject == "The Morning Brief: Line one line two…"  # fit: <= 60, a word
    assert result.preheader == "a b"
    long = render_edition(
        make_environment(),
        stories=stories,
        publication=PUB,
        edition_date=DAY,
        subject_template="{{ lead.title }}",
    )
    assert long.subject.startswith("Line one line two x")
    assert len(long.subject) == 200  # without fit, only the hard cap applies
    assert long.subject.endswith("…")


def test_subject_template_errors_raise_render_error() -> None:
    with pytest.raises(RenderError, match="subject template"):
        render_edition(
            make_environment(),
            stories=fixture_stories(),
            publication=PUB,
            edition_date=DAY,
            subject_template="{{ lead.__class__.__mro__ }}",
        )
    with pytest.raises(RenderError, match="preheader template"):
        render_edition(
            make_environment(),
            stories=fixture_stories(),
            publication=PUB,
            edition_date=DAY,
            preheader_template="{{ nope }}",
        )


def test_extra_reaches_subject_template() -> None:
    result = render_edition(
        make_environment(),
        stories=fixture_stories(),
        publication=PUB,
        edition_date=DAY,
        subject_template="{{ extra.edition }} – {{ lead.title }}",
        extra={"edition": "No. 7"},
    )
    assert result.subject == "No. 7 – Headline number 0"


def test_empty_edition_raises() -> None:
    with pytest.raises(RenderError, match="no stories"):
        render([])


def test_user_templates_override_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "Custom {{ publication.name }} {{ lead.title }} <&>\n", encoding="utf-8"
    )
    result = render(templates_dir=tmp_path)
    assert result.text == "Custom The Morning Brief Headline number 0 <&>\n"
    assert "Headline number 6" in result.html  # the packaged HTML template still applies


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "_story.mjml.j2").write_text("<mj-section>\n<mj-column>\n{% if %}\n", "utf-8")
    env = make_environment(tmp_path)
    with pytest.raises(ConfigError) as info:
        check_templates(env)
    assert info.value.file is not None
    assert info.value.file.endswith("_story.mjml.j2")
    assert info.value.line == 3
    assert "_story.mjml.j2:3:" in str(info.value)
    with pytest.raises(RenderError, match=r"_story\.mjml\.j2:3: "):
        render(templates_dir=tmp_path)


def test_runtime_template_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("ok\n{{ lead.nonexistent }}\n", "utf-8")
    with pytest.raises(RenderError, match=r"digest\.txt\.j2:2: .*nonexistent"):
        render(templates_dir=tmp_path)


def test_invalid_mjml_raises_render_error(tmp_path: Path) -> None:
    (tmp_path / "digest.mjml.j2").write_text("<mjml><mj-body><mj-section>", "utf-8")
    with pytest.raises(RenderError, match="MJML does not compile"):
        render(templates_dir=tmp_path)


def test_packaged_templates_compile_and_missing_user_dir_is_reported(tmp_path: Path) -> None:
    assert (package_templates_dir() / "digest.mjml.j2").is_file()
    check_templates(make_environment())
    with pytest.raises(ConfigError, match="does not exist"):
        make_environment(tmp_path / "missing")


def test_group_sections_keeps_first_appearance_order() -> None:
    stories = [story(1, "B"), story(2, "A"), story(3, "B"), story(4, "")]
    groups = group_sections(stories)
    assert [g.title for g in groups] == ["B", "A", ""]
    assert [s.title for s in groups[0].stories] == ["Headline number 1", "Headline number 3"]


def test_safe_url_refuses_script_schemes() -> None:
    assert safe_url("javascript:alert(1)") == "#"
    assert safe_url(" JavaScript:alert(1)") == "#"
    assert safe_url("https://example.org/a") == "https://example.org/a"


def test_publication_defaults() -> None:
    assert PUB.sender_domain == "example.org"
    assert PUB.effective_list_id == "the-morning-brief.example.org"


@given(st.lists(st.text(alphabet="abcdefghij ", min_size=1, max_size=15), max_size=40))
def test_wrap72_keeps_words_and_width(words: list[str]) -> None:
    text = " ".join(words)
    wrapped = wrap72(text)
    assert wrapped.split() == text.split()
    assert all(len(line) <= 72 for line in wrapped.splitlines())


def test_thin_day_note_only_when_set() -> None:
    plain = render()
    assert "quiet news day" not in plain.html
    assert "quiet news day" not in plain.text
    thin = render_edition(
        make_environment(),
        stories=fixture_stories(),
        publication=PUB,
        edition_date=DAY,
        extra={"thin_day": True, "other": 1},
    )
    assert "A quiet news day: fewer stories than usual this time." in thin.html
    assert "A quiet news day: fewer stories than usual this time." in thin.text


def test_utm_parameters_go_on_story_links_only() -> None:
    stories = fixture_stories()
    stories[1] = story(1, "World", url="https://news.example.org/own?utm_source=publisher")
    rendered = render_edition(
        make_environment(),
        stories=stories,
        publication=PUB,
        edition_date=DAY,
        utm={"utm_source": "digest", "utm_medium": "email", "utm_campaign": "brief-{date}"},
        marker="",
    )
    tail = "utm_source=digest&utm_medium=email&utm_campaign=brief-2026-11-25"
    assert f"https://news.example.org/story-0?a=1&b=2&{tail}\n" in rendered.text
    assert (
        f'href="https://news.example.org/story-0?a=1&amp;b=2&amp;{tail.replace("&", "&amp;")}"'
        in (rendered.html)
    )
    # The publisher's own utm_source wins; the others are added.
    assert "own?utm_source=publisher&utm_medium=email&utm_campaign=brief-2026-11-25" in (
        rendered.text
    )
    assert f'href="{placeholders.UNSUBSCRIBE_URL}"' in rendered.html
    assert "utm_" not in rendered.html.split(placeholders.UNSUBSCRIBE_URL)[1].split('"')[0]
    # Off by default: no parameters anywhere, and no tracking pixel either.
    plain = render()
    assert "utm_" not in plain.html
    assert "utm_" not in plain.text
    assert re.findall(r'<img [^>]*(?:width|height)="1"', plain.html) == []


def test_add_and_strip_utm() -> None:
    from digest.render.links import add_utm, check_utm, strip_utm

    assert add_utm("mailto:a@b.org", {"utm_source": "x"}) == "mailto:a@b.org"
    assert (
        add_utm("https://a.org/p#frag", {"utm_source": "x y"})
        == "https://a.org/p?utm_source=x+y#frag"
    )
    assert strip_utm("https://a.org/p?id=1&utm_source=x") == "https://a.org/p?id=1"
    assert strip_utm("https://a.org/p?utm_source=x") == "https://a.org/p"
    assert check_utm({"utm_campaign": 7}) == {"utm_campaign": "7"}
    for bad in ({"source": "x"}, {"utm_source": ["x"]}, {"utm_source": "a\nb"}):
        with pytest.raises(ConfigError, match=r"email\.utm"):
            check_utm(bad)
