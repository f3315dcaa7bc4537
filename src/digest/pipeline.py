"""The edition pipeline: collect, rank, render, store, approve. Collaborators are passed in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from digest.approval import transition
from digest.collect import CollectResult, ProgressCallback, collect
from digest.config import Settings
from digest.exceptions import DigestError
from digest.http import Fetcher, FetchSettings
from digest.models import Edition, EditionState, RenderedEdition, Story, Subscriber
from digest.rank import Candidate, ThinDay, choose, thin_day_message
from digest.render.edition import Publication, render_edition
from digest.render.environment import make_environment
from digest.sources.base import Source, load_source
from digest.sourcestate import SourceState
from digest.store import Store
from digest.variants import VariantStore, render_variants


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
            include=s.include,
            exclude=s.exclude,
            teaser_length=settings.email.teaser_length,
            **dict(s.options),
        )
        for s in settings.sources
    ]


def make_fetcher(settings: Settings) -> Fetcher:
    f = settings.fetch
    return Fetcher(
        settings=FetchSettings(
            timeout=f.timeout,
            deadline=f.deadline,
            max_bytes=f.max_bytes,
            retries=f.retries,
            concurrency=f.concurrency,
            per_host=f.per_host,
        )
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
    extra: Mapping[str, Any] | None = None,
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
        utm=settings.email.utm,
        extra=extra,
    )


def collect_sources(
    settings: Settings, *, store: Store, fetcher: Fetcher, now: datetime,
    progress: ProgressCallback | None = None,
) -> CollectResult:  # fmt: skip
    """Collect every configured source with conditional GET and health kept in ``store``.

    A read-only store (Store.open_readonly) is read but never written.
    """
    return collect(
        make_sources(settings),
        fetcher,
        now=now,
        max_workers=settings.fetch.concurrency,
        state=SourceState(store),
        failure_alert=settings.fetch.failure_alert,
        deadline=settings.fetch.deadline,
        progress=progress,
    )


def plan_edition(
    settings: Settings, *, store: Store, fetcher: Fetcher, now: datetime, order: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> Plan:  # fmt: skip
    """Collect, rank and render; only source state (cache, health) is written, and only to
    a writable store. ``order``: the editor's manual order of URLs for this edition."""
    result = collect_sources(settings, store=store, fetcher=fetcher, now=now, progress=progress)
    seen = store.seen_urls(s.url for s in result.stories)
    ranking = choose(result.stories, now=now, settings=settings.ranking, seen=seen, order=order)
    stories = ranking.stories
    warnings = [*result.warnings, *ranking.warnings]
    if ranking.thin_day:
        warnings.append(thin_day_message(len(stories), settings.ranking))
    skip = ranking.thin_day and settings.ranking.thin_day_policy == "skip"
    if not stories:
        detail = "; ".join(result.warnings) or "every story was already mailed or too old"
        if skip:
            raise ThinDay(f"no stories to send ({detail})", candidates=ranking.candidates)
        raise DigestError(f"no stories to send ({detail})")
    extra = {"thin_day": True} if ranking.thin_day and not skip else {}
    rendered = render(settings, stories, now=now, extra=extra)
    slot = slot_for(settings, now)
    return Plan(slot, ranking.candidates, stories, rendered, warnings, ranking.thin_day, extra)


def build_edition(
    settings: Settings, *, store: Store, fetcher: Fetcher, now: datetime,
    subscribers: Sequence[Subscriber] = (), order: Sequence[str] = (), slot: str | None = None,
    progress: ProgressCallback | None = None,
) -> Edition:  # fmt: skip
    """Plan, store the edition and its topic variants, and submit it for approval.

    ``slot`` is the send slot the edition is for (the scheduler passes it); by default the
    slot of ``now``'s local date.

    A thin day with ``ranking.thin_day_policy: skip`` raises ThinDay and stores nothing.
    """
    plan = plan_edition(
        settings, store=store, fetcher=fetcher, now=now, order=order, progress=progress
    )
    if plan.thin_day and settings.ranking.thin_day_policy == "skip":
        message = thin_day_message(len(plan.stories), settings.ranking)
        raise ThinDay(message, candidates=plan.candidates)
    variants = render_variants(
        plan.stories, plan.rendered, subscribers, keep_lead=settings.ranking.lead_in_every_variant,
        render=lambda stories: render(settings, stories, now=now, extra=plan.extra),
    )  # fmt: skip
    edition = store.create_edition(
        slot=slot or plan.slot, stories=plan.stories, rendered=plan.rendered, now=now,
        warnings=plan.warnings,
    )  # fmt: skip
    extras = VariantStore(store)
    extras.save_variants(edition, variants.variants.values(), now=now)
    extras.save_ranking(edition.id, plan.candidates, plan.extra)
    edition = apply(
        store, edition, EditionState.PENDING_APPROVAL, actor="digest", via="build", now=now
    )
    if settings.approval.auto_approve:
        edition = apply(
            store, edition, EditionState.APPROVED, actor="digest", via="auto-approve", now=now,
            note="approval.auto_approve is set in the config",
        )  # fmt: skip
    else:
        from digest.proofs import send_proofs  # proofs builds on this module

        # A proof that cannot be sent is a warning, never fatal: the edition is stored and
        # pending, and `digest proof` retries.
        problems = send_proofs(settings, store, edition, now=now)
        edition = dataclasses.replace(edition, warnings=(*edition.warnings, *problems))
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
