"""Preflight: each problem an inbox or a reader would object to produces its finding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.models import Image, Publication, RenderedEdition, Rendition, Story
from digest.render.edition import render_edition
from digest.render.environment import make_environment
from digest.render.frame import Frame
from digest.render.preflight import Finding, has_errors, preflight

from conftest import ROOT, Project

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
ADDRESS = "1 Example Street, 10115 Berlin"
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <brief@news.example.org>",
    base_url="https://news.example.org",
    postal_address=ADDRESS,
)


def own_image(n: int, **kw: str) -> Image:
    """A story image as the build leaves it: with our resized copies for both roles."""
    base = "https://news.example.org/img/"
    return Image(
        url=f"https://img.example.org/{n}.jpg",
        renditions=(
            Rendition("lead", f"{base}{n:032d}.jpg", 592, 333),
            Rendition("thumb", f"{base}{n + 100:032d}.jpg", 96, 96),
        ),
        **kw,
    )


def story(n: int, **kw: object) -> Story:
    base = Story(
        url=f"https://news.example.org/{n}",
        title=f"Story number {n}",
        teaser=f"Teaser {n}. " + "Some words of the story. " * 8,
        source="Wire",
        published=NOW,
        section=("World", "Business")[n % 2],
        image=own_image(n, alt=f"photo {n}") if n < 3 else None,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


STORIES = [story(n) for n in range(6)]


def render(
    stories: Sequence[Story] = STORIES, templates: Path | None = None, pub: Publication = PUB
) -> RenderedEdition:
    return render_edition(
        make_environment(templates),
        stories=stories,
        publication=pub,
        edition_date=date(2026, 11, 25),
    )


def check(
    rendered: RenderedEdition, stories: Sequence[Story] = STORIES, **kw: object
) -> list[Finding]:
    return preflight(rendered, stories=stories, postal_address=ADDRESS, **kw)  # type: ignore[arg-type]


def codes(findings: Sequence[Finding]) -> list[str]:
    return [f.code for f in findings]


def override(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A user templates folder with one packaged template changed (as a newsroom would)."""
    source = (ROOT / "templates" / name).read_text(encoding="utf-8")
    assert old in source
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(source.replace(old, new), encoding="utf-8")
    return tmp_path


def test_default_edition_is_clean() -> None:
    assert check(render()) == []


def test_oversized_edition_is_an_error_above_the_clip_and_a_warning_above_the_budget() -> None:
    many = [story(n, teaser="A long teaser. " * 20, image=None) for n in range(200)]
    rendered = render(many)  # no budget: nothing is moved
    assert len(rendered.html.encode()) > 102_000
    findings = check(rendered, many)
    assert codes(findings) == ["html-size"]
    assert findings[0].level == "error"  # clipped: the footer and unsubscribe link vanish
    assert "Gmail clips" in findings[0].message
    # The budget is configurable: a smaller one flags the ordinary edition, as a warning.
    small = check(render(), html_budget=10_000)
    assert codes(small) == ["html-size"]
    assert small[0].level == "warning"
    assert "over the budget of 10,000" in small[0].message


def test_image_without_alt_warns(tmp_path: Path) -> None:
    templates = override(tmp_path, "_story.mjml.j2", ' alt=""', "")
    findings = check(render(templates=templates))
    assert codes(findings) == ["image-alt", "image-alt"]  # the two thumbnails, not the lead
    assert "/img/00000000000000000000000000000101.jpg" in findings[0].message
    assert findings[0].message.startswith("HTML line ")


def test_lead_alt_is_its_description_or_caption_and_thumbnails_are_decorative() -> None:
    rendered = render()
    assert 'alt="photo 0"' in rendered.html
    assert 'alt="photo 1"' not in rendered.html  # beside its own headline: alt=""
    assert rendered.html.count('alt=""') == 2
    captioned = [story(0, image=own_image(0, caption="The harbour at dawn.")), *STORIES[1:]]
    rendered = render(captioned)
    assert 'alt="The harbour at dawn."' in rendered.html
    assert check(rendered, captioned) == []


def test_images_without_size_and_long_subjects_warn() -> None:
    hotlinked = [story(0, image=Image(url="https://img.example.org/0.jpg", alt="a")), *STORIES[1:]]
    rendered = render_edition(
        make_environment(),
        stories=hotlinked,
        publication=PUB,
        edition_date=date(2026, 11, 25),
        frame=Frame(hotlink=True),
        subject_template="{{ lead.title }} " + "and more " * 8,
    )
    findings = check(rendered, hotlinked)
    assert codes(findings) == ["subject-length", "image-size"]
    assert "the subject is 86 characters" in findings[0].message
    assert findings[1].message.startswith("1 images have no pixel width and height")


def test_anchor_to_nothing_is_an_error(tmp_path: Path) -> None:
    templates = override(tmp_path, "_masthead.mjml.j2", '"#{{ anchor(story) }}"', '"#nowhere"')
    stories = [story(n) for n in range(6)]
    findings = check(render(stories, templates=templates), stories)
    assert set(codes(findings)) == {"anchor"}
    assert "link '#nowhere' points at no element" in findings[0].message


def test_javascript_link_is_an_error(tmp_path: Path) -> None:
    stories = [*STORIES[:3], story(3, url="javascript:alert(document.cookie)"), *STORIES[4:]]
    rendered = render(stories)
    assert "javascript:" not in rendered.html  # safe_url already refused it...
    findings = check(rendered, stories)
    assert has_errors(findings)
    messages = [f.message for f in findings if f.code == "link-scheme"]
    # ...and preflight says which story and which link.
    assert any(
        "'Story number 3' links to 'javascript:alert(document.cookie)'" in m for m in messages
    )
    assert any("link '#' is not an http(s) URL" in m for m in messages)
    # A template link that bypasses safe_url is caught as well.
    templates = override(
        tmp_path,
        "_footer.mjml.j2",
        ">Unsubscribe</a>",
        '>Unsubscribe</a> <a href="javascript:void(0)">Preferences</a>',
    )
    findings = check(render(templates=templates))
    assert codes(findings) == ["link-scheme"]
    assert "'javascript:void(0)'" in findings[0].message


def test_text_and_html_listing_different_stories_is_an_error(tmp_path: Path) -> None:
    dropped = override(
        tmp_path / "a",
        "digest.txt.j2",
        "{% for story in section.stories %}",
        "{% for story in section.stories if story.title != 'Story number 4' %}",
    )
    findings = check(render(templates=dropped))
    assert codes(findings) == ["parts-differ"]
    assert "'Story number 4' is in the HTML part but not in the text part" in findings[0].message
    reordered = override(
        tmp_path / "b",
        "digest.txt.j2",
        "{% for story in section.stories %}",
        "{% for story in section.stories | reverse %}",
    )
    findings = check(render(templates=reordered))
    assert codes(findings) == ["parts-differ"]
    assert "different orders" in findings[0].message


def test_missing_unsubscribe_and_postal_address(tmp_path: Path) -> None:
    templates = override(
        tmp_path, "_footer.mjml.j2", '<a class="fl" href="{{ recipient.unsubscribe_url }}"', "<a"
    )
    no_address = replace(PUB, postal_address="")
    rendered = render(templates=templates, pub=no_address)
    findings = preflight(rendered, stories=STORIES, postal_address="")
    assert codes(findings) == ["unsubscribe", "postal-address"]
    assert [f.level for f in findings] == ["error", "warning"]
    assert "HTML part has no unsubscribe link" in findings[0].message
    assert "postal_address is empty" in findings[1].message
    # An address in the config that a custom template forgets to show is a warning too.
    findings = check(render(pub=replace(PUB, postal_address="Somewhere else 1")))
    assert codes(findings) == ["postal-address", "postal-address"]


def test_utm_parameters_do_not_confuse_the_comparison() -> None:
    rendered = render_edition(
        make_environment(),
        stories=STORIES,
        publication=PUB,
        edition_date=date(2026, 11, 25),
        utm={"utm_source": "digest", "utm_campaign": "brief-{date}"},
    )
    assert "utm_campaign=brief-2026-11-25" in rendered.text
    assert check(rendered) == []


# The CLI: `digest check EDITION` and `digest preview`.


def test_check_edition_passes_and_fails(project: Project, tmp_path: Path) -> None:
    assert project.cli("build").exit_code == 0
    result = project.cli("check", "1")
    assert result.exit_code == 0, result.output
    assert "edition 1: preflight passed" in result.output
    project.write_config(extra="email:\n  html_budget: 5000\n")
    result = project.cli("check", "1")
    assert result.exit_code == 0, result.output
    assert "edition 1: warning: the HTML part is" in result.output
    assert "preflight passed with warnings" in result.output
    # An edition built with a broken text template: errors, exit 1, one line naming it.
    templates = override(
        tmp_path / "t",
        "digest.txt.j2",
        "{% for story in section.stories %}",
        "{% for story in section.stories[:0] %}",
    )
    project.write_config(extra=f"templates_dir: {templates}\n")
    assert project.cli("check").exit_code == 1  # the sample edition catches it already
    project.write_config(extra="")
    ok = project.cli("check", "1")
    assert ok.exit_code == 0


def test_check_edition_with_errors_exits_1(project: Project, tmp_path: Path) -> None:
    templates = override(
        tmp_path,
        "digest.txt.j2",
        "{% for story in section.stories %}",
        "{% for story in section.stories | reverse %}",
    )
    project.write_config(extra=f"templates_dir: {templates}\n")
    assert project.cli("build").exit_code == 0
    result = project.cli("check", "1")
    assert result.exit_code == 1
    assert "edition 1: error: the HTML and text parts list the stories in different orders" in (
        result.output
    )
    assert "Error: edition 1 fails preflight" in result.output


def test_check_unknown_edition_is_one_line(project: Project) -> None:
    result = project.cli("check", "42")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error:")


def test_preview_prints_preflight_warnings(project: Project, tmp_path: Path) -> None:
    project.write_config(extra="email:\n  html_budget: 5000\n")
    result = project.cli("preview", "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    assert "warning: preflight: warning: the HTML part is" in result.output


def test_template_errors_fail_check_with_file_and_line(project: Project, tmp_path: Path) -> None:
    (tmp_path / "t1").mkdir()
    (tmp_path / "t1" / "_story.mjml.j2").write_text(
        "<mj-section>\n<mj-column>\n<mj-text>{{ story.nope }}</mj-text>\n</mj-column>\n"
        "</mj-section>\n",
        encoding="utf-8",
    )
    project.write_config(extra=f"templates_dir: {tmp_path / 't1'}\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "_story.mjml.j2:3: " in result.output
    assert "nope" in result.output
    (tmp_path / "t2").mkdir()
    (tmp_path / "t2" / "digest.txt.j2").write_text("ok\n{% for x in %}\n", encoding="utf-8")
    project.write_config(extra=f"templates_dir: {tmp_path / 't2'}\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "digest.txt.j2:2: template syntax error" in result.output
    # A footer without the unsubscribe link fails check before any edition exists.
    link = '<a class="fl" href="{{ recipient.unsubscribe_url }}"'
    override(tmp_path / "t3", "_footer.mjml.j2", link, "<a")
    project.write_config(extra=f"templates_dir: {tmp_path / 't3'}\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "sample edition fails preflight: the HTML part has no unsubscribe link" in result.output


def test_check_reports_sample_warnings(project: Project) -> None:
    project.config.write_text(
        project.config.read_text(encoding="utf-8").replace(
            "  postal_address: 1 Example Street, Berlin\n", ""
        ),
        encoding="utf-8",
    )
    result = project.cli("check")
    assert result.exit_code == 0, result.output
    assert "warning: templates (the built-in templates): publication.postal_address is empty" in (
        result.output
    )


@pytest.mark.parametrize("bad", ["bad", "[utm_source]"])
def test_email_settings_errors(project: Project, bad: str) -> None:
    project.write_config(extra=f"email:\n  html_budget: 0\n  utm: {bad}\n")
    result = project.cli("check")
    assert result.exit_code == 1
    assert "digest.yaml:" in result.output


def test_image_that_is_not_http_warns() -> None:
    stories = [story(0, image=Image(url="data:image/png;base64,AAAA", alt="x")), *STORIES[1:]]
    rendered = render_edition(
        make_environment(),
        stories=stories,
        publication=PUB,
        edition_date=date(2026, 11, 25),
        frame=Frame(hotlink=True),
    )
    findings = [f for f in check(rendered, stories) if f.code != "image-size"]
    assert codes(findings) == ["image-scheme"]
    assert findings[0].level == "warning"
    assert "image '#' is not an http(s) URL" in findings[0].message


def test_story_in_neither_part_is_an_error(tmp_path: Path) -> None:
    override(tmp_path, "_story.mjml.j2", "{{ story.url | safe_url }}", "https://example.org/x")
    override(tmp_path, "digest.txt.j2", "{{ story.url }}\n{% endmacro %}", "\n{% endmacro %}")
    findings = check(render(templates=tmp_path))
    # The lead has its own HTML template, so it is only missing from the text part.
    assert codes(findings) == ["parts-differ"] + ["story-missing"] * (len(STORIES) - 1)
    assert "'Story number 0' is in the HTML part but not in the text part" in findings[0].message
    assert "'Story number 1' is in neither the HTML nor the text part" in findings[1].message
