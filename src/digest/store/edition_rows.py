"""An edition's content as stored: a new revision's columns, and an Edition from a row."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from digest.models import Edition, EditionState, RenderedEdition, Story, Variant, edition_hash


@dataclass(frozen=True, slots=True)
class Revision:
    """New content for a pending edition: its stories, rendering and variants.

    ``extra`` (the templates' extra: editor's note, subject override) and ``set_aside``
    (removed stories with their positions, for undo) replace the stored ones when given.
    """

    stories: Sequence[Story]
    rendered: RenderedEdition
    variants: Sequence[Variant]
    extra: Mapping[str, Any] | None = None
    set_aside: Sequence[tuple[int, Story]] | None = None

    @property
    def content_hash(self) -> str:
        return edition_hash(self.rendered, self.variants)


def content_of(revision: Revision) -> dict[str, Any]:
    r = revision.rendered
    return {
        "stories": json.dumps([s.to_dict() for s in revision.stories]),
        "subject": r.subject,
        "preheader": r.preheader,
        "html": r.html,
        "text": r.text,
        "marker": r.marker,
        "content_hash": revision.content_hash,
    }


def edition_of(row: Any) -> Edition:
    rendered = RenderedEdition(
        subject=row["subject"],
        preheader=row["preheader"],
        html=row["html"],
        text=row["text"],
        marker=row["marker"],
    )
    return Edition(
        id=row["id"],
        slot=row["slot"],
        state=EditionState(row["state"]),
        revision=row["revision"],
        stories=tuple(Story.from_dict(s) for s in json.loads(row["stories"])),
        rendered=rendered,
        created_at=row["created_at"],
        content_hash=row["content_hash"],
        warnings=tuple(json.loads(row["warnings"])),
    )
