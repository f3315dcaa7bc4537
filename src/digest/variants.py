"""Per-subscriber composition: one rendered variant per distinct topic selection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import SQLAlchemyError

from digest.exceptions import StoreError
from digest.models import Edition, RenderedEdition, Story, Subscriber

if TYPE_CHECKING:
    from digest.backends.base import Envelope
    from digest.rank import Candidate
    from digest.send import EnvelopeFactory, Personaliser
    from digest.store import Store

ALL = "[]"
"""The key of the variant for subscribers without topics: the whole edition."""

Render = Callable[[Sequence[Story]], RenderedEdition]

metadata = MetaData()

edition_variants = Table(
    "edition_variants",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("key", String, primary_key=True),
    Column("stories", Text, nullable=False),  # JSON list of the variant's URLs, in order
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("content_hash", String, nullable=False),
    # The edition's hash when rendered: a revised edition makes the variant stale.
    Column("base_hash", String, nullable=False),
    Column("created_at", String, nullable=False),
)

edition_ranking = Table(
    "edition_ranking",
    metadata,
    Column("edition_id", Integer, primary_key=True),
    Column("candidates", Text, nullable=False),  # JSON: rank.Candidate.to_dict() each
    Column("extra", Text, nullable=False),  # JSON: the template's ``extra`` (thin_day ...)
)


def topic_names(topics: Iterable[str]) -> frozenset[str]:
    """A subscriber's topics as compared with story sections: trimmed and casefolded."""
    return frozenset(t.strip().casefold() for t in topics if t.strip())


def variant_key(topics: Iterable[str]) -> str:
    """The same key for the same selection, whatever its order or case; ALL for none."""
    return json.dumps(sorted(topic_names(topics)), ensure_ascii=False)


def compose(
    stories: Sequence[Story], topics: Iterable[str], *, keep_lead: bool
) -> tuple[Story, ...]:
    """The stories of the edition in the chosen sections (all of them when none chosen).

    With ``keep_lead`` the edition's lead opens every variant that has any chosen story.
    Empty means the subscriber gets nothing from this edition.
    """
    chosen = topic_names(topics)
    if not chosen:
        return tuple(stories)
    picked = [s for s in stories if s.section.casefold() in chosen]
    if not picked:
        return ()
    if keep_lead and picked[0].url != stories[0].url:
        picked.insert(0, stories[0])
    return tuple(picked)


@dataclass(frozen=True, slots=True)
class Variant:
    key: str
    stories: tuple[Story, ...]
    rendered: RenderedEdition


@dataclass(frozen=True, slots=True)
class VariantSet:
    """The variants of one edition; ``renders`` counts the times a template was rendered."""

    variants: dict[str, Variant]
    renders: int


def render_variants(
    stories: Sequence[Story],
    rendered: RenderedEdition,
    subscribers: Iterable[Subscriber],
    *,
    keep_lead: bool,
    render: Render,
) -> VariantSet:
    """One variant per distinct, non-empty topic selection among ``subscribers``.

    The whole edition (``rendered``) serves every selection that covers all its stories;
    selections that come to the same stories share one rendering.
    """
    whole = tuple(s.url for s in stories)
    by_stories: dict[tuple[str, ...], RenderedEdition] = {whole: rendered}
    variants: dict[str, Variant] = {}
    renders = 0
    for subscriber in subscribers:
        key = variant_key(subscriber.topics)
        if key in variants or key == ALL:
            continue
        chosen = compose(stories, subscriber.topics, keep_lead=keep_lead)
        if not chosen:
            continue
        urls = tuple(s.url for s in chosen)
        if urls not in by_stories:
            by_stories[urls] = render(chosen)
            renders += 1
        variants[key] = Variant(key, chosen, by_stories[urls])
    return VariantSet(variants, renders)


class VariantStore:
    """The variants and the ranking explanation of stored editions (own tables)."""

    def __init__(self, store: Store) -> None:
        from digest.store import create_tables

        self.store = store
        try:
            create_tables(store.engine, metadata)
        except SQLAlchemyError as exc:
            raise StoreError(f"{store.path}: cannot create the variant tables: {exc}") from exc

    def save_variants(
        self, edition: Edition, variants: Iterable[Variant], *, now: datetime
    ) -> None:
        rows = [
            {"edition_id": edition.id, "key": v.key,
             "stories": json.dumps([s.url for s in v.stories]), "subject": v.rendered.subject,
             "preheader": v.rendered.preheader, "html": v.rendered.html, "text": v.rendered.text,
             "content_hash": v.rendered.content_hash, "base_hash": edition.content_hash,
             "created_at": now.astimezone(UTC).isoformat()}
            for v in variants
        ]  # fmt: skip
        if rows:
            self._write(insert(edition_variants).prefix_with("OR REPLACE"), rows)

    def save_ranking(
        self, edition_id: int, candidates: Sequence[Candidate], extra: dict[str, Any]
    ) -> None:
        """Keep the build's explanation (``preview EDITION --explain``) and template extras."""
        row = {
            "edition_id": edition_id,
            "candidates": json.dumps([c.to_dict() for c in candidates], ensure_ascii=False),
            "extra": json.dumps(extra),
        }
        self._write(insert(edition_ranking).prefix_with("OR REPLACE"), [row])

    def _write(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        try:
            with self.store.engine.begin() as conn:
                conn.execute(statement, rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: cannot store the variants: {exc}") from exc

    def get(self, edition: Edition, key: str) -> RenderedEdition | None:
        """The stored variant, unless missing or rendered from another revision."""
        query = (
            select(edition_variants)
            .where(edition_variants.c.edition_id == edition.id)
            .where(edition_variants.c.key == key)
        )
        row = self._one(query)
        if row is None or row.base_hash != edition.content_hash:
            return None
        return RenderedEdition(
            subject=row.subject, preheader=row.preheader, html=row.html, text=row.text
        )

    def keys(self, edition_id: int) -> list[str]:
        query = (
            select(edition_variants.c.key)
            .where(edition_variants.c.edition_id == edition_id)
            .order_by(edition_variants.c.key)
        )
        try:
            with self.store.engine.connect() as conn:
                return list(conn.execute(query).scalars())
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc

    def ranking(self, edition_id: int) -> tuple[list[Candidate], dict[str, Any]] | None:
        """The candidates and template extras recorded when the edition was built."""
        from digest.rank import Candidate

        row = self._one(select(edition_ranking).where(edition_ranking.c.edition_id == edition_id))
        if row is None:
            return None
        candidates = [Candidate.from_dict(c) for c in json.loads(row.candidates)]
        return candidates, dict(json.loads(row.extra))

    def _one(self, query: Any) -> Any:
        try:
            with self.store.engine.connect() as conn:
                return conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc


@dataclass
class Variants:
    """Finds (or renders, and keeps) the variant for a topic selection of one edition.

    Variants are rendered at build time; one missing here (a subscriber who joined with a
    new selection, or an edition built before variants existed) is rendered from the
    edition's frozen stories and, with a ``store``, kept for the rest of the run.
    """

    edition: Edition
    render: Render
    keep_lead: bool = True
    store: VariantStore | None = None

    def rendered(self, topics: Iterable[str], *, now: datetime) -> RenderedEdition | None:
        """None when the selection has no story in this edition."""
        stories = compose(self.edition.stories, topics, keep_lead=self.keep_lead)
        if not stories:
            return None
        if stories == self.edition.stories:
            return self.edition.rendered
        key = variant_key(topics)
        found = self.store.get(self.edition, key) if self.store else None
        if found is not None:
            return found
        rendered = self.render(stories)
        if self.store is not None and self.edition.id:
            self.store.save_variants(self.edition, [Variant(key, stories, rendered)], now=now)
        return rendered


def envelope_factory(
    variants: Variants, personaliser: Callable[[Edition], Personaliser]
) -> EnvelopeFactory:
    """The send engine's hook: each subscriber gets their variant, or None (skipped).

    One Personaliser per variant, made on first use and cached for the run; the whole
    edition's is made at once so a missing secret fails before anything is sent.
    """
    edition = variants.edition
    makers: dict[str, Personaliser | None] = {ALL: personaliser(edition)}

    def make(subscriber: Subscriber, now: datetime) -> Envelope | None:
        key = variant_key(subscriber.topics)
        if key not in makers:
            rendered = variants.rendered(subscriber.topics, now=now)
            makers[key] = (
                None if rendered is None else personaliser(replace(edition, rendered=rendered))
            )
        maker = makers[key]
        return None if maker is None else maker.envelope(subscriber, now=now)

    return make
