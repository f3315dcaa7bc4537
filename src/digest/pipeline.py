"""The edition pipeline: collect, rank, render, store, approve. Collaborators are passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

from digest.approval import transition
from digest.collect import collect
from digest.config import Settings
from digest.exceptions import DigestError
from digest.http import Fetcher, FetchSettings
from digest.models import Edition, EditionState, RenderedEdition, Story
from digest.rank import Candidate, rank, selected
from digest.render.edition import Publication, render_edition
from digest.render.environment import make_environment
from digest.sources.base import Source, load_source
from digest.store import Store


@dataclass(frozen=True, slots=True)
class Plan:
    """What an edition would be if it were built now; nothing is stored."""

    slot: str
    candidates: list[Candidate]
    stories: list[Story]
    rendered: RenderedEdition
    warnings: list[str]


def make_sources(settings: Settings) -> list[Source]:
    return [
        load_source(
            s.kind,
            name=s.name,
            url=s.url,
            weight=s.weight,
            section=s.section,
            max_items=s.max_items,
            allow_private=s.allow_private,
            teaser_length=settings.email.teaser_length,
            **dict(s.options),
        )
        for s in settings.sources
    ]


def make_fetcher(settings: Settings) -> Fetcher:
    f = settings.fetch
    return Fetcher(
        settings=FetchSettings(timeout=f.timeout, max_bytes=f.max_bytes, retries=f.retries)
    )


def publication(settings: Settings) -> Publication:
    p = settings.publication
    return Publication(
        name=p.name,
        sender=p.sender,
        base_url=p.base_url,
        postal_address=p.postal_address,
        reply_to=p.reply_to,
        domain=p.domain,
        list_id=p.list_id,
        language=p.language,
    )


def slot_for(settings: Settings, now: datetime) -> str:
    """The send slot an edition built at ``now`` belongs to: local date and send time."""
    tz = ZoneInfo(settings.schedule.timezone)
    return f"{now.astimezone(tz).date().isoformat()}T{settings.schedule.time:%H:%M}"


def render(
    settings: Settings,
    stories: Sequence[Story],
    *,
    now: datetime,
    env: jinja2.Environment | None = None,
) -> RenderedEdition:
    env = env or make_environment(settings.templates_dir)
    tz = ZoneInfo(settings.publication.timezone)
    return render_edition(
        env,
        stories=stories,
        publication=publication(settings),
        edition_date=now.astimezone(tz).date(),
        subject_template=settings.email.subject,
        preheader_template=settings.email.preheader,
    )


def plan_edition(settings: Settings, *, store: Store, fetcher: Fetcher, now: datetime) -> Plan:
    """Collect, rank and render without writing anything."""
    result = collect(
        make_sources(settings), fetcher, now=now, max_workers=settings.fetch.concurrency
    )
    seen = store.seen_urls(s.url for s in result.stories)
    candidates = rank(result.stories, now=now, settings=settings.ranking, seen=seen)
    stories = selected(candidates)
    if not stories:
        detail = "; ".join(result.warnings) or "every story was already mailed or too old"
        raise DigestError(f"no stories to send ({detail})")
    rendered = render(settings, stories, now=now)
    return Plan(slot_for(settings, now), candidates, stories, rendered, list(result.warnings))


def build_edition(settings: Settings, *, store: Store, fetcher: Fetcher, now: datetime) -> Edition:
    """Plan, store the edition and submit it for approval (auto-approving if configured)."""
    plan = plan_edition(settings, store=store, fetcher=fetcher, now=now)
    edition = store.create_edition(
        slot=plan.slot, stories=plan.stories, rendered=plan.rendered, now=now,
        warnings=plan.warnings,
    )  # fmt: skip
    edition = apply(
        store, edition, EditionState.PENDING_APPROVAL, actor="digest", via="build", now=now
    )
    if settings.approval.auto_approve:
        edition = apply(
            store, edition, EditionState.APPROVED, actor="digest", via="auto-approve", now=now,
            note="approval.auto_approve is set in the config",
        )  # fmt: skip
    return edition


def apply(
    store: Store,
    edition: Edition,
    to: EditionState,
    *,
    actor: str,
    via: str,
    now: datetime,
    note: str = "",
) -> Edition:
    """Check the move against the transition table, record it, return the updated edition."""
    store.record_transition(transition(edition, to, actor=actor, via=via, now=now, note=note))
    return store.get_edition(edition.id)


def approve(store: Store, edition_id: int, *, by: str, via: str, now: datetime) -> Edition:
    edition = store.get_edition(edition_id)
    return apply(store, edition, EditionState.APPROVED, actor=by, via=via, now=now)


def reject(
    store: Store, edition_id: int, *, by: str, reason: str, via: str, now: datetime
) -> Edition:
    if not reason.strip():
        raise DigestError("a rejection needs a reason (--reason TEXT)")
    edition = store.get_edition(edition_id)
    return apply(store, edition, EditionState.REJECTED, actor=by, via=via, now=now, note=reason)
