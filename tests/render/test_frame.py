"""The editorial frame: layouts, note, contents list, bylines, subjects, scripts, fit, footer."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.models import Image, Publication, Rendition, Story
from digest.render import placeholders
from digest.render.edition import render_edition, render_fitted
from digest.render.environment import make_environment
from digest.render.frame import Frame, Picture, byline, direction, fit, is_rtl
from digest.render.message import Recipient, prepare_message
from digest.render.preflight import preflight
from digest.render.wrap import display_width, wrap_text

NOW = datetime(2026, 11, 25, 5, tzinfo=UTC)
DAY = date(2026, 11, 25)
PUB = Publication(
    name="The Morning Brief",
    sender="The Morning Brief <news@example.org>",
    base_url="https://brief.example.org",
    postal_address="1 Example Street, Sample Town",
)
OWN = "https://brief.example.org/img/"


def story(n: int, **kw: object) -> Story:
    fields: dict[str, object] = {
        "url": f"https://news.example.org/{n}",
        "title": f"Headline number {n}",
        "teaser": f"Teaser {n}, " + "a sentence of the story. " * 10,
        "source": "Wire",
        "published": NOW,
        "section": ("World", "Business")[n % 2],
        "image": Image(
            url=f"https://img.example.org/{n}.jpg",
            alt=f"photo {n}",
            renditions=(
                Rendition("lead", f"{OWN}{n:032d}.jpg", 592, 333),
                Rendition("thumb", f"{OWN}{n + 500:032d}.jpg", 96, 96),
            ),
        ),
    }
    fields.update(kw)
    return Story(**fields)  # type: ignore[arg-type]


STORIES = [story(n) for n in range(8)]


def render(stories: list[Story] = STORIES, **frame: object):  # type: ignore[no-untyped-def]
    return render_fitted(
        make_environment(),
        stories=stories,
        publication=PUB,
        edition_date=DAY,
        frame=Frame(**frame),  # type: ignore[arg-type]
        marker="",  # canonical tokens, and two renderings compare equal
    )


def test_both_layouts_come_from_the_same_partials() -> None:
    cards, briefing = render(layout="cards").rendered, render(layout="briefing").rendered
    assert cards.html.count('class="ti"') == 7  # a square thumbnail beside each headline
    assert briefing.html.count('class="ti"') == 0  # text first: only the lead has an image
    assert cards.html.count('class="li"') == briefing.html.count('class="li"') == 1
    assert 'class="btn"' in cards.html
    assert 'class="btn"' not in briefing.html
    assert cards.text == briefing.text  # one plain-text twin
    with pytest.raises(Exception, match="unknown layout 'magazine'"):
        render(layout="magazine")


def test_editor_note_from_config_or_for_one_edition() -> None:
    html = render(editor_note="Good morning.\n\nSecond paragraph.").rendered
    assert '<p class="nt" dir="auto">Good morning.</p>' in html.html
    assert '<p class="nt" dir="auto">Second paragraph.</p>' in html.html
    assert "Good morning.\n\nSecond paragraph.\n" in html.text
    own = render_edition(
        make_environment(),
        stories=STORIES,
        publication=PUB,
        edition_date=DAY,
        frame=Frame(editor_note="Every day."),
        extra={"note": "Only <today>."},
    )
    assert "Only &lt;today&gt;." in own.html  # escaped like any text
    assert "Every day." not in own.html
    assert "Here is today" not in own.html
    assert "Here is today" in render().rendered.html  # no note: the plain greeting


def test_contents_list_links_to_the_stories_in_running_order() -> None:
    html = render().rendered.html
    toc = html.split('<ul class="toc">', 1)[1].split("</ul>", 1)[0]
    anchors = re.findall(r'href="#(s\d+)"', toc)
    # The lead, then Business (1, 3, 5, 7), the first section: the order stories appear in.
    assert anchors == ["s1", "s2", "s4", "s6", "s8"]
    for anchor in anchors:
        assert f'id="{anchor}"' in html
    assert preflight(render().rendered, stories=STORIES, postal_address=PUB.postal_address) == []
    text = render().rendered.text
    assert "IN TODAY'S EDITION\n- Headline number 0\n- Headline number 1\n" in text
    few = render(STORIES[:2]).rendered
    assert 'class="toc"' not in few.html  # no contents list for two stories


def test_byline_reading_time_and_the_lead_marked_in_the_text() -> None:
    lead = story(0, author="Rosa Diaz", word_count=1000, also_in=("Le Monde",))
    assert byline(lead) == "By Rosa Diaz · 5 min read · Wire · also in Le Monde"
    assert byline(story(1)) == "Wire"
    rendered = render([lead, *STORIES[1:]]).rendered
    assert "By Rosa Diaz · 5 min read · Wire · also in Le Monde" in rendered.html
    assert "TOP STORY\n\nHeadline number 0\nBy Rosa Diaz" in rendered.text


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Short subject", "Short subject"),
        (
            "The Morning Brief: Putin poaches the neighbors for his Ukraine invasion",
            "The Morning Brief: Putin poaches the neighbors for his…",
        ),
        (
            "The Morning Brief: leaders meet, talk, and part — without a deal after all",
            "The Morning Brief: leaders meet, talk, and part — without a…",
        ),
        ("x" * 80, "x" * 59 + "…"),
    ],
)
def test_fit_keeps_subjects_to_sixty_characters_at_a_word(title: str, expected: str) -> None:
    assert fit(title) == expected
    assert len(fit(title)) <= 60


def test_default_subject_uses_fit() -> None:
    long = story(0, title="An extraordinarily long headline that goes on and on about it all")
    subject = render([long, *STORIES[1:]]).rendered.subject
    assert subject == "The Morning Brief: An extraordinarily long headline that…"


def test_rtl_and_language_per_story() -> None:
    arabic = story(3, title="لبنان يعيد فتح مرفأ بيروت", language="ar", image=None)
    hebrew = story(5, title="כותרת", language="he-IL", image=None)
    html = render([STORIES[0], STORIES[1], STORIES[2], arabic, STORIES[4], hebrew]).rendered.html
    assert '<div class="sx" dir="rtl" lang="ar">' in html
    assert '<div class="sx" dir="rtl" lang="he-IL">' in html
    assert '<div class="sx" dir="auto">' in html  # unknown language: the browser decides
    assert ' lang="' not in html.split('<div class="sx" dir="auto">', 1)[1][:20]
    assert direction(arabic) == "rtl"
    assert direction(story(1, language="en")) == "auto"
    assert [is_rtl(t) for t in ("ar", "fa-IR", "ku-Arab", "ku", "ha-Latn", "en", "")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_text_wraps_cjk_by_display_width_and_keeps_every_character() -> None:
    teaser = (
        "東京都は二十五日、来年度の予算案を発表した。"
        "総額は過去最大となり、子育て支援と防災対策に重点を置いた。"
    )
    wrapped = wrap_text(teaser)
    assert all(display_width(line) <= 72 for line in wrapped.splitlines())
    assert len(wrapped.splitlines()) == 2
    assert wrapped.replace("\n", "") == teaser
    # Closing punctuation never starts a line.
    assert not any(line.startswith(("、", "。")) for line in wrapped.splitlines())
    mixed = wrap_text("日本語とEnglishの混在した文章です。" * 6)
    assert "English" in mixed.replace("\n", "")
    assert all(display_width(line) <= 72 for line in mixed.splitlines())
    assert "Eng\n" not in mixed  # a Latin word is never split


def test_no_normalisation_that_changes_the_text() -> None:
    decomposed = unicodedata.normalize("NFD", "Zürich café")
    odd = f"{decomposed} ﬁ ① ｆｕｌｌ\u3000wide 𝐁old"
    rendered = render([story(0, title=odd, teaser=odd), *STORIES[1:]]).rendered
    assert odd in rendered.text
    assert odd in rendered.html


@given(
    st.lists(
        st.sampled_from(["東", "京", "。", "abc", "Zürich", " ", "、", "longword"]), max_size=60
    )
)
def test_wrap_keeps_non_space_characters_and_width(parts: list[str]) -> None:
    text = "".join(parts)
    wrapped = wrap_text(text, 20)
    assert wrapped.replace("\n", "").replace(" ", "") == text.replace(" ", "")
    for line in wrapped.splitlines():
        assert display_width(line) <= 20 or " " not in line  # one unit wider than a line


def test_budget_moves_the_last_stories_to_links_then_drops_them() -> None:
    full = render().rendered
    size = len(full.html.encode())
    fitted = render(html_budget=size - 2000)
    assert len(fitted.rendered.html.encode()) <= size - 2000
    assert fitted.more
    assert fitted.full[0] == STORIES[0]
    assert fitted.stories == tuple(STORIES)  # moved, not lost
    assert list(fitted.more) == STORIES[-len(fitted.more) :]
    assert fitted.warnings()[0].startswith(f"HTML budget ({size - 2000:,} bytes): ")
    assert ">More stories<" in fitted.rendered.html
    assert "== MORE STORIES ==" in fitted.rendered.text
    assert (
        preflight(fitted.rendered, stories=fitted.stories, postal_address=PUB.postal_address) == []
    )
    tiny = render(html_budget=len(render(STORIES[:1]).rendered.html.encode()) + 300)
    assert tiny.dropped
    assert "stories dropped" in tiny.warnings()[-1]
    alone = render(html_budget=1000)
    assert alone.full == (STORIES[0],)
    assert "the lead story alone makes" in alone.warnings()[0]


def test_footer_slots_show_only_when_configured() -> None:
    plain = render().rendered
    for text in ("Manage preferences", "View in browser", "Forwarded this?"):
        assert text not in plain.html
        assert text not in plain.text
    assert placeholders.PREFERENCES_URL not in plain.html
    full = render(
        preferences=True,
        archive_url="https://brief.example.org/a/{date}",
        signup_url="https://brief.example.org/join",
    ).rendered
    assert f'href="{placeholders.PREFERENCES_URL}">Manage preferences' in full.html
    assert 'href="https://brief.example.org/a/2026-11-25">View in browser' in full.html
    assert 'Forwarded this? <a class="fl" href="https://brief.example.org/join">' in full.html
    # Filled per recipient after approval: their own URL, else the configured page.
    prepared = prepare_message(full, PUB, preferences_url="https://brief.example.org/p")
    when = {"date": NOW, "message_id": "<m1@example.org>"}
    own = Recipient("a@example.org", "A", "https://brief.example.org/u/1", "https://p.org/a")
    assert b"https://p.org/a" in prepared.personalise(own, **when)  # type: ignore[arg-type]
    other = Recipient("b@example.org", "B", "https://brief.example.org/u/2")
    assert b"https://brief.example.org/p" in prepared.personalise(other, **when)  # type: ignore[arg-type]


def test_logo_with_a_dark_variant_and_hotlink_mode() -> None:
    light = Picture(f"{OWN}{'c' * 32}.png", 160, 40, PUB.name)
    dark = Picture(f"{OWN}{'d' * 32}.png", 160, 40, PUB.name)
    html = render(logo=light, logo_dark=dark).rendered.html
    assert f'class="lg lgl" src="{light.src}" width="160" height="40"' in html
    assert 'class="lg lgd" style="display:none;mso-hide:all;"' in html
    assert ">The Morning Brief</p>" not in html  # the logo replaces the name
    hotlinked = [story(n, image=Image(url=f"https://img.example.org/{n}.jpg")) for n in range(3)]
    html = render(hotlinked, hotlink=True).rendered.html
    assert 'src="https://img.example.org/0.jpg" width="592" alt=""' in html
    html = render(hotlinked).rendered.html  # own mode without our copy: no image at all
    assert "img.example.org" not in html


@pytest.mark.parametrize("layout", ["cards", "briefing"])
def test_twenty_five_stories_with_images_fit_well_under_the_budget(layout: str) -> None:
    many = [story(n, teaser="A teaser of about three hundred characters. " * 7) for n in range(25)]
    fitted = render(many, layout=layout, html_budget=100_000)
    assert fitted.more == ()
    assert len(fitted.rendered.html.encode()) < 60_000


def test_stories_stored_before_the_new_fields_still_load() -> None:
    old = {
        "url": "https://a.org/1",
        "title": "t",
        "teaser": "x",
        "source": "s",
        "published": NOW.isoformat(),
        "image": {"url": "https://a.org/i.jpg", "alt": "", "caption": "", "credit": ""},
    }
    loaded = Story.from_dict(old)
    assert (loaded.author, loaded.word_count, loaded.language) == ("", 0, "")
    assert loaded.image is not None
    assert loaded.image.renditions == ()
    again = Story.from_dict(STORIES[0].to_dict())
    assert again == STORIES[0]
