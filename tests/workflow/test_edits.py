"""Editors' edits (digest.edits) and the workflow around them: undo, note, subject, audience."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.app import App
from digest.edits import Draft, Edit, Kind, apply_edits
from digest.exceptions import DigestError
from digest.models import Story, Subscriber
from digest.workflow import audience

from conftest import EDITORS, Clock, Project

T = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


def story(n: int, section: str = "") -> Story:
    return Story(f"https://x.example/{n}", f"Title {n}", f"Teaser {n}", "X", T, section=section)


STORIES = tuple(story(n) for n in range(1, 5))


def urls(draft: Draft) -> list[str]:
    return [s.url.rsplit("/", 1)[1] for s in draft.stories]


def test_edits_apply_in_order_and_say_what_changed() -> None:
    draft, changes = apply_edits(
        Draft(STORIES),
        [
            Edit(Kind.REMOVE, STORIES[1].url),
            Edit(Kind.DOWN, STORIES[0].url),
            Edit(Kind.PIN, STORIES[3].url, position=1),
            Edit(Kind.HEADLINE, STORIES[2].url, "  New\ttitle  "),
            Edit(Kind.NOTE, text="One.\n\n\nTwo  words."),
            Edit(Kind.SUBJECT, text="Today's subject"),
        ],
        edition_id=7,
        subject="Usual subject",
    )
    assert urls(draft) == ["4", "3", "1"]
    assert draft.stories[1].title == "New title"
    assert draft.set_aside == ((2, STORIES[1]),)
    assert draft.extra == {"note": "One.\n\nTwo words.", "subject": "Today's subject"}
    assert changes == [
        "removed https://x.example/2",
        "moved down https://x.example/1 at 2",
        "pinned https://x.example/4 at 1",
        'headline of https://x.example/3: "Title 3" -> "New title"',
        'editor\'s note: "" -> "One. Two words."',
        'subject: "Usual subject" -> "Today\'s subject"',
    ]


def test_restore_puts_a_story_back_where_it_was_even_after_other_edits() -> None:
    removed, _ = apply_edits(
        Draft(STORIES),
        [Edit(Kind.REMOVE, STORIES[2].url), Edit(Kind.REMOVE, STORIES[0].url)],
        edition_id=1,
    )
    assert urls(removed) == ["2", "4"]
    back, changes = apply_edits(removed, [Edit(Kind.RESTORE, STORIES[2].url)], edition_id=1)
    assert urls(back) == ["2", "4", "3"]  # position 3 of a shorter list is its end
    assert changes == ["restored https://x.example/3 at 3"]
    assert back.set_aside == ((1, STORIES[0]),)
    first, _ = apply_edits(back, [Edit(Kind.RESTORE, STORIES[0].url)], edition_id=1)
    assert urls(first) == ["1", "2", "4", "3"]


def test_clearing_the_note_and_subject() -> None:
    draft = Draft(STORIES, extra={"note": "Hi", "subject": "S", "thin_day": True})
    cleared, changes = apply_edits(
        draft, [Edit(Kind.NOTE, text=" "), Edit(Kind.SUBJECT, text="")], edition_id=1
    )
    assert cleared.extra == {"thin_day": True}
    assert changes == ['editor\'s note removed (was "Hi")', 'subject removed (was "S")']


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (Edit(Kind.UP, STORIES[0].url), "position 0 is outside 1..4"),
        (Edit(Kind.DOWN, STORIES[3].url), "position 5 is outside 1..4"),
        (Edit(Kind.RESTORE, STORIES[0].url), "not among the removed stories"),
        (Edit(Kind.HEADLINE, STORIES[0].url, "Title 1"), "nothing to change"),
        (Edit(Kind.TEASER, STORIES[0].url, "x" * 2001), "keep it to 2000"),
        (Edit(Kind.SUBJECT, text="Usual"), "nothing to change: the subject is as it was"),
        (Edit(Kind.NOTE, text=""), "nothing to change"),
        (Edit(Kind.REMOVE, "https://x.example/9"), "edition 1 has no story with URL"),
    ],
)
def test_bad_edits_name_the_problem(edit: Edit, message: str) -> None:
    with pytest.raises(DigestError, match=message):
        apply_edits(Draft(STORIES), [edit], edition_id=1, subject="Usual")


def test_the_last_story_cannot_be_removed() -> None:
    one = Draft(STORIES[:1])
    with pytest.raises(DigestError, match="reject the edition instead"):
        apply_edits(one, [Edit(Kind.REMOVE, STORIES[0].url)], edition_id=1)


def test_audience_streams_and_skips_like_a_send() -> None:
    from digest.models import Edition, EditionState, RenderedEdition, Variant

    rendered = RenderedEdition("s", "p", "<html></html>", "t")
    stories = (story(1, "World"), story(2, "Tech"), story(3, "World"))
    edition = Edition(1, "2026-11-24T07:00", EditionState.PENDING_APPROVAL, 1, stories, rendered, T)
    tech = Variant('["tech"]', (stories[0], stories[1]), rendered)
    readers = [
        Subscriber("a@x.org"),
        Subscriber("b@x.org", topics=("Tech",)),
        Subscriber("C@x.org"),
        Subscriber("d@x.org", topics=("Culture",)),
        Subscriber("e@x.org", topics=("tech",)),
    ]
    asked: list[list[str]] = []

    def suppressed(batch: list[str]) -> set[str]:
        asked.append(batch)
        return {"c@x.org"}

    counted = audience(
        edition, [tech], iter(readers), suppressed=suppressed, keep_lead=True, chunk=2
    )
    assert counted.recipients == 3
    assert counted.by_variant == {"[]": 1, '["tech"]': 2}
    assert counted.skipped == 2  # C is suppressed; d reads only Culture, which has nothing
    assert [len(b) for b in asked] == [2, 2, 1]  # in chunks, never the whole list


def test_a_subject_override_is_text_not_a_template(project: Project) -> None:
    project.write_config(extra=EDITORS)
    assert project.cli("build").exit_code == 0
    app = App(project.config, clock=Clock())
    try:
        subject = Edit(Kind.SUBJECT, text="{{ publication.name }} & more")
        edition = app.editions.revise(1, by="Rosa Diaz", via="test", edits=[subject])
    finally:
        app.close()
    assert edition.rendered.subject == "{{ publication.name }} & more"
    assert "<title>{{ publication.name }} &amp; more</title>" in edition.rendered.html
