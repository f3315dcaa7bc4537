"""Topic variants (pure): one rendering per distinct topic selection, and which approved
variant a reader gets. Nothing here renders after approval: it only chooses among variants."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

from digest.models import Edition, RenderedEdition, Story, Variant

ALL = "[]"
"""The key of the whole edition: the selection of subscribers without topics."""

Render = Callable[[Sequence[Story]], RenderedEdition]


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


def render_variants(
    stories: Sequence[Story],
    selections: Iterable[Iterable[str]],
    *,
    keep_lead: bool,
    render: Render,
) -> tuple[list[Variant], int]:
    """One variant per distinct topic selection that is not the whole edition, and how many
    times a template was rendered (selections that come to the same stories share one).

    Selections with no story in the edition get no variant: those readers get nothing.
    """
    whole = tuple(s.url for s in stories)
    by_stories: dict[tuple[str, ...], RenderedEdition] = {}
    variants: dict[str, Variant] = {}
    for topics in selections:
        key = variant_key(topics)
        if key in variants or key == ALL:
            continue
        chosen = compose(stories, topics, keep_lead=keep_lead)
        urls = tuple(s.url for s in chosen)
        if not chosen or urls == whole:
            continue
        if urls not in by_stories:
            by_stories[urls] = render(chosen)
        variants[key] = Variant(key, chosen, by_stories[urls])
    return sorted(variants.values(), key=lambda v: v.key), len(by_stories)


def approved_variant(
    edition: Edition, variants: Sequence[Variant], topics: Iterable[str], *, keep_lead: bool
) -> tuple[str, RenderedEdition] | None:
    """(key, rendering) a reader with ``topics`` gets, chosen only among what was approved.

    Their own variant if it was rendered with the edition; else the smallest approved
    variant holding every story they chose (a reader who joined after approval with a new
    selection); else the whole edition. None when no story of the edition is in their
    topics. The chosen key is ALL for the whole edition.
    """
    chosen = compose(edition.stories, topics, keep_lead=keep_lead)
    if not chosen:
        return None
    if chosen == edition.stories:
        return ALL, edition.rendered
    key = variant_key(topics)
    for variant in variants:
        if variant.key == key:
            return key, variant.rendered
    wanted = {s.url for s in chosen}
    holding = [v for v in variants if wanted <= {s.url for s in v.stories}]
    if holding:
        best = min(holding, key=lambda v: (len(v.stories), v.key))
        return best.key, best.rendered
    return ALL, edition.rendered
