"""The renderer collaborator: one publication's templates and email settings, made once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from digest.models import Publication, RenderedEdition, Story, Variant
from digest.render.edition import render_fitted
from digest.render.fit import Fitted
from digest.render.frame import DEFAULT_SUBJECT, Frame
from digest.render.variants import render_variants


@dataclass(frozen=True, slots=True)
class Renderer:
    """Renders stories into a frozen RenderedEdition (and topic variants) for one publication.

    The edition date is ``day`` (the slot's local date: the day readers get it), else
    ``now`` in the publication's zone, so an edit re-renders an edition exactly as its build
    did when given the same values and ``extra``.
    """

    env: jinja2.Environment
    publication: Publication
    subject: str = DEFAULT_SUBJECT
    preheader: str = "{{ lead.teaser }}"
    utm: Mapping[str, str] = field(default_factory=dict)
    keep_lead: bool = True
    frame: Frame = field(default_factory=Frame)  # layout, note, logo, links, HTML budget

    def fit(
        self,
        stories: Sequence[Story],
        *,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        day: date | None = None,
    ) -> Fitted:
        """Render within the HTML budget, saying which stories became links or were dropped."""
        return render_fitted(
            self.env,
            stories=stories,
            publication=self.publication,
            edition_date=day or now.astimezone(ZoneInfo(self.publication.timezone)).date(),
            subject_template=self.subject,
            preheader_template=self.preheader,
            utm=self.utm,
            extra=extra,
            frame=self.frame,
        )

    def render(
        self,
        stories: Sequence[Story],
        *,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        day: date | None = None,
    ) -> RenderedEdition:
        return self.fit(stories, now=now, extra=extra, day=day).rendered

    def variants(
        self,
        stories: Sequence[Story],
        selections: Iterable[Iterable[str]],
        *,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        day: date | None = None,
    ) -> list[Variant]:
        """Every topic variant the ``selections`` need, rendered now, before approval."""
        variants, _ = render_variants(
            stories,
            selections,
            keep_lead=self.keep_lead,
            render=lambda chosen: self.render(chosen, now=now, extra=extra, day=day),
        )
        return variants
