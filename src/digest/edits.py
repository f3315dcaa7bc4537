"""An editor's changes to a pending edition (pure): stories, order, wording, note, subject.

``apply_edits`` takes the edition's current draft and a list of edits and returns the new
draft with one line per change for the audit trail (what changed, old and new wording).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from digest.exceptions import DigestError
from digest.models import Coverage, Story

HEADLINE_MAX = 300
TEASER_MAX = 2000
NOTE_MAX = 2000
SUBJECT_MAX = 200
_QUOTE = 80  # how much of an old or new wording the audit line quotes

NOTHING_TO_CHANGE = (
    "nothing to change: give --remove URL, --pin URL, --split URL, --merge URL URL, "
    "--note TEXT or --subject TEXT"
)


class Kind(enum.StrEnum):
    """What an edit does; ``url`` names the story, ``text`` the new wording."""

    REMOVE = "remove"
    RESTORE = "restore"
    UP = "up"
    DOWN = "down"
    PIN = "pin"  # to ``position`` (1 = lead)
    HEADLINE = "headline"
    TEASER = "teaser"
    NOTE = "note"  # the editor's note, an intro paragraph ("" removes it)
    SUBJECT = "subject"  # the edition's subject ("" goes back to email.subject)
    SPLIT = "split"  # ``url``: a story of an event's coverage becomes an item of its own
    MERGE = "merge"  # ``text``'s event joins ``url``'s: one item, ``url`` leading
    ADD = "add"  # ``story`` (digest.added) at ``position``


@dataclass(frozen=True, slots=True)
class Edit:
    """One change; several make one revision."""

    kind: Kind
    url: str = ""
    text: str = ""
    position: int = 1
    story: Story | None = None  # for ADD


@dataclass(frozen=True, slots=True)
class Draft:
    """What an edit changes: the stories in order, the removed ones, the templates' extra."""

    stories: tuple[Story, ...]
    set_aside: tuple[tuple[int, Story], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def apply_edits(
    draft: Draft, edits: Sequence[Edit], *, edition_id: int, subject: str = ""
) -> tuple[Draft, list[str]]:
    """The draft after ``edits`` (in order) and one audit line per change.

    ``subject`` is the edition's current subject, quoted when it is overridden. DigestError
    names the edition and what to do when an edit cannot apply; nothing is half-applied.
    """
    if not edits:
        raise DigestError(NOTHING_TO_CHANGE)
    stories = list(draft.stories)
    aside = list(draft.set_aside)
    extra = dict(draft.extra)
    changes: list[str] = []
    for edit in edits:
        changes.append(_one(edit, stories, aside, extra, edition_id, subject))
    return Draft(tuple(stories), tuple(aside), extra), changes


def _one(
    edit: Edit,
    stories: list[Story],
    aside: list[tuple[int, Story]],
    extra: dict[str, Any],
    edition_id: int,
    subject: str,
) -> str:
    kind = edit.kind
    if kind is Kind.NOTE:
        return _set_extra(
            extra,
            "note",
            _text(edit.text, NOTE_MAX, "note", multiline=True),
            "editor's note",
            old_default="",
        )
    if kind is Kind.SUBJECT:
        new = _text(edit.text, SUBJECT_MAX, "subject")
        return _set_extra(extra, "subject", new, "subject", old_default=subject)
    if kind is Kind.SPLIT:
        return _split(edit.url, stories, edition_id)
    if kind is Kind.MERGE:
        return _merge(edit.url, edit.text, stories, edition_id)
    if kind is Kind.ADD:
        if edit.story is None:
            raise DigestError(f"edition {edition_id}: nothing to add")
        if any(s.url == edit.story.url for s in stories):
            raise DigestError(f"edition {edition_id} has {edit.story.url} already")
        at = min(max(edit.position, 1), len(stories) + 1)
        stories.insert(at - 1, edit.story)
        return f"added {edit.story.url} at {at}"
    if kind is Kind.RESTORE:
        for i, (position, story) in enumerate(aside):
            if story.url == edit.url:
                del aside[i]
                at = min(max(position, 1), len(stories) + 1)
                stories.insert(at - 1, story)
                return f"restored {story.url} at {at}"
        raise DigestError(
            f"edition {edition_id}: {edit.url} is not among the removed stories; "
            "only a story removed from this edition can be restored"
        )
    index = _index(stories, edit.url, edition_id)
    story = stories[index]
    if kind is Kind.REMOVE:
        if len(stories) == 1:
            raise DigestError(
                f"edition {edition_id}: removing every story leaves nothing to send; "
                "reject the edition instead"
            )
        del stories[index]
        aside.append((index + 1, story))
        return f"removed {story.url}"
    if kind in (Kind.UP, Kind.DOWN, Kind.PIN):
        to = edit.position if kind is Kind.PIN else index + (0 if kind is Kind.UP else 2)
        if not 1 <= to <= len(stories):
            raise DigestError(f"edition {edition_id}: position {to} is outside 1..{len(stories)}")
        del stories[index]
        stories.insert(to - 1, story)
        word = "pinned" if kind is Kind.PIN else f"moved {kind.value}"
        return f"{word} {story.url} at {to}"
    if kind is Kind.HEADLINE:
        title = _text(edit.text, HEADLINE_MAX, "headline")
        if not title:
            raise DigestError(f"edition {edition_id}: a headline cannot be empty")
        if title == story.title:
            raise DigestError("nothing to change: the headline is as it was")
        stories[index] = replace(story, title=title)
        return f"headline of {story.url}: {_quote(story.title)} -> {_quote(title)}"
    teaser = _text(edit.text, TEASER_MAX, "teaser")
    if teaser == " ".join(story.teaser.split()):
        raise DigestError("nothing to change: the teaser is as it was")
    stories[index] = replace(story, teaser=teaser)
    return f"teaser of {story.url}: {_quote(story.teaser)} -> {_quote(teaser)}"


def _split(url: str, stories: list[Story], edition_id: int) -> str:
    """The story ``url`` leaves the coverage of the event it was grouped into and becomes
    an item of its own, right after that event's lead, in the lead's section."""
    for i, lead in enumerate(stories):
        found = next((c for c in lead.coverage if c.url == url), None)
        if found is None:
            continue
        rest = tuple(c for c in lead.coverage if c.url != url)
        still = {c.source for c in rest}
        # Its source stays in also_in only if it carries the event another way.
        also = tuple(n for n in lead.also_in if n != found.source or n in still)
        stories[i] = replace(lead, coverage=rest, also_in=also)
        alone = Story(
            url=found.url,
            title=found.title,
            teaser="",
            source=found.source,
            published=found.published,
            section=lead.section,
        )
        stories.insert(i + 1, alone)
        return f"split {url} from the event of {lead.url}: now an item of its own at {i + 2}"
    if any(s.url == url for s in stories):
        raise DigestError(
            f"edition {edition_id}: {url} leads its own item; split a story listed under "
            "another (`digest status` shows each item's coverage)"
        )
    raise DigestError(
        f"edition {edition_id} has no story with URL {url} in any event's coverage; "
        f"`digest status {edition_id}` lists its stories"
    )


def _merge(url: str, other: str, stories: list[Story], edition_id: int) -> str:
    """The item ``other`` (and its own coverage) joins the event led by ``url``."""
    if url == other:
        raise DigestError(f"edition {edition_id}: give two different stories to --merge")
    into = _index(stories, url, edition_id)
    gone = _index(stories, other, edition_id)
    lead, joined = stories[into], stories[gone]
    seen = {lead.url, *(c.url for c in lead.coverage)}
    more = [
        c
        for c in (
            Coverage(joined.source, joined.url, joined.title, joined.published),
            *joined.coverage,
        )
        if c.url not in seen
    ]
    names = [joined.source, *joined.also_in]
    also = lead.also_in + tuple(
        dict.fromkeys(n for n in names if n != lead.source and n not in lead.also_in)
    )
    stories[into] = replace(lead, coverage=lead.coverage + tuple(more), also_in=also)
    del stories[gone]
    return f"merged {other} into the event of {url}"


def _index(stories: Sequence[Story], url: str, edition_id: int) -> int:
    for i, story in enumerate(stories):
        if story.url == url:
            return i
    raise DigestError(
        f"edition {edition_id} has no story with URL {url}; "
        f"`digest status {edition_id}` lists its stories"
    )


def _text(value: str, limit: int, what: str, *, multiline: bool = False) -> str:
    """Trimmed text; one line unless ``multiline`` (then paragraphs split by a blank line)."""
    if multiline:
        paragraphs = [" ".join(p.split()) for p in value.replace("\r\n", "\n").split("\n\n")]
        text = "\n\n".join(p for p in paragraphs if p)
    else:
        text = " ".join(value.split())
    if len(text) > limit:
        raise DigestError(f"the {what} is {len(text)} characters long; keep it to {limit}")
    return text


def _set_extra(extra: dict[str, Any], key: str, new: str, what: str, *, old_default: str) -> str:
    old = str(extra.get(key) or "")
    if new == old or (not old and new == old_default):
        raise DigestError(f"nothing to change: the {what} is as it was")
    if new:
        extra[key] = new
    else:
        extra.pop(key, None)
    if not new:
        return f"{what} removed (was {_quote(old or old_default)})"
    return f"{what}: {_quote(old or old_default)} -> {_quote(new)}"


def _quote(text: str) -> str:
    one = " ".join(text.split())
    return '"' + (one if len(one) <= _QUOTE else one[: _QUOTE - 1] + "…") + '"'
