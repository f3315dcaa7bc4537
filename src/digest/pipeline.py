"""The edition pipeline: collect, rank, render, store, submit. Collaborators are passed in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from digest.approval import apply
from digest.collect import CollectResult, ProgressCallback, collect
from digest.exceptions import DigestError, StateError, ThinDay
from digest.http import Fetcher
from digest.images import ImageWork
from digest.models import Candidate, Edition, EditionState, RenderedEdition, Story
from digest.rank import RankingSettings, choose, thin_day_message
from digest.render.images import Processed
from digest.render.preflight import GMAIL_CLIP_BYTES, clipped
from digest.render.renderer import Renderer
from digest.slots import slot_day
from digest.sources.base import Source
from digest.store import Revision, Store
from digest.store.images import ImageStore
from digest.store.sources import SourceState

# A new build for a slot supersedes these; these make a new build for the slot an error.
_SUPERSEDABLE = frozenset({EditionState.PENDING_APPROVAL, EditionState.APPROVED})
_BLOCKING = frozenset({EditionState.SENDING, EditionState.SENT, EditionState.FAILED})


@dataclass(frozen=True, slots=True)
class Plan:
    """What an edition would be if it were built now; nothing is stored."""

    slot: str
    candidates: list[Candidate]
    stories: list[Story]
    rendered: RenderedEdition
    warnings: list[str]
    thin_day: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # the templates' ``extra``
    images: tuple[Processed, ...] = ()  # our processed story images, stored by build


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Everything one build needs; App makes it from the settings.

    ``store`` may be read-only (Store.open_readonly): collection then reads the source
    cache and health but writes nothing, which is how `digest preview` plans an edition.
    """

    store: Store
    sources: Sequence[Source]
    fetcher: Fetcher
    renderer: Renderer
    ranking: RankingSettings
    concurrency: int = 8
    failure_alert: int = 0
    deadline: float = 30.0  # each source's whole exchange, from the start of the run
    images: ImageWork | None = None  # None: hotlink the sources' images
    image_folder: Path | None = None  # also write each stored image here (static host)

    def collect(self, *, now: datetime, progress: ProgressCallback | None = None) -> CollectResult:
        """Every source with conditional GET under the deadline, health recorded."""
        return collect(
            self.sources,
            self.fetcher,
            now=now,
            max_workers=self.concurrency,
            state=SourceState(self.store),
            failure_alert=self.failure_alert,
            deadline=self.deadline,
            progress=progress,
        )

    def plan(
        self,
        *,
        now: datetime,
        slot: str,
        order: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> Plan:
        """Collect, rank and render. ``order``: the editor's manual order for this edition."""
        result = self.collect(now=now, progress=progress)
        seen = self.store.seen_urls(s.url for s in result.stories)
        ranking = choose(result.stories, now=now, settings=self.ranking, seen=seen, order=order)
        stories = ranking.stories
        warnings = [*result.warnings, *ranking.warnings]
        if ranking.thin_day:
            warnings.append(thin_day_message(len(stories), self.ranking))
        skip = ranking.thin_day and self.ranking.thin_day_policy == "skip"
        if not stories:
            detail = "; ".join(result.warnings) or "every story was already mailed or too old"
            if skip:
                raise ThinDay(f"no stories to send ({detail})", candidates=ranking.candidates)
            raise DigestError(f"no stories to send ({detail})")
        extra = {"thin_day": True} if ranking.thin_day and not skip else {}
        files: tuple[Processed, ...] = ()
        if self.images is not None:
            owned = self.images.own(stories, self.fetcher)
            stories, files = list(owned.stories), owned.files
            warnings.extend(owned.warnings)
        # Dated the slot's day: the day its readers get it, not the day it was built.
        fit = self.renderer.fit(stories, now=now, extra=extra, day=slot_day(slot))
        warnings.extend(fit.warnings())
        return Plan(
            slot,
            ranking.candidates,
            list(fit.stories),
            fit.rendered,
            warnings,
            ranking.thin_day,
            extra,
            files,
        )

    def build(
        self,
        *,
        now: datetime,
        slot: str,
        selections: Iterable[Sequence[str]] = (),
        order: Sequence[str] = (),
        auto_approve: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Edition:
        """Plan, store the edition with a variant per topic selection, submit it for approval.

        Every selection in ``selections`` (the subscribers' topics) is rendered now: what is
        approved covers each of them, and nothing is rendered after approval. A thin day with
        ``ranking.thin_day_policy: skip`` raises ThinDay and stores nothing.
        """
        plan = self.plan(now=now, slot=slot, order=order, progress=progress)
        if plan.thin_day and self.ranking.thin_day_policy == "skip":
            message = thin_day_message(len(plan.stories), self.ranking)
            raise ThinDay(message, candidates=plan.candidates)
        variants = self.renderer.variants(
            plan.stories, selections, now=now, extra=plan.extra, day=slot_day(slot)
        )
        revision = Revision(plan.stories, plan.rendered, variants)
        images = ImageStore(self.store, folder=self.image_folder)
        for processed in plan.images:
            images.put(processed.key, processed.data, processed.content_type)
        # What Gmail would clip hides the footer and its unsubscribe link: never auto-approved.
        too_big = clipped(plan.rendered, variants)
        warnings = list(plan.warnings)
        if too_big and auto_approve:
            auto_approve = False
            warnings.append(
                f"not auto-approved: the HTML of {', '.join(too_big)} is over "
                f"{GMAIL_CLIP_BYTES:,} bytes and Gmail would clip it (lower email.html_budget); "
                "an editor must approve"
            )
        # One transaction: nobody ever sees a draft, or a pending edition about to be approved,
        # or two sendable editions for one slot.
        with self.store.transaction() as tx:
            older = [e for e in tx.slot_editions(slot) if e.state in _SUPERSEDABLE | _BLOCKING]
            blocking = [e for e in older if e.state in _BLOCKING]
            if blocking:
                e = blocking[-1]
                raise StateError(
                    f"slot {slot} already has edition {e.id} ({e.state}); a slot is sent once, "
                    "so build for another slot (--slot YYYY-MM-DDTHH:MM)"
                )
            edition_id = tx.insert_edition(slot=slot, revision=revision, now=now, warnings=warnings)
            for e in older:
                apply(
                    tx,
                    e,
                    EditionState.SUPERSEDED,
                    actor="digest",
                    via="build",
                    now=now,
                    note=f"superseded by edition {edition_id}, built for the same slot",
                )
            tx.save_ranking(edition_id, plan.candidates, plan.extra)
            edition = tx.get_edition(edition_id)
            apply(tx, edition, EditionState.PENDING_APPROVAL, actor="digest", via="build", now=now)
            if auto_approve:
                pending = replace(edition, state=EditionState.PENDING_APPROVAL)
                apply(
                    tx,
                    pending,
                    EditionState.APPROVED,
                    actor="digest",
                    via="auto-approve",
                    now=now,
                    note="approval.auto_approve is set in the config",
                )
        return self.store.get_edition(edition_id)
