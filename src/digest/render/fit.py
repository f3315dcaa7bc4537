"""Fit, never clip: move the last stories to a "More stories" list, then drop, under budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from digest.models import RenderedEdition, Story

RenderOnce = Callable[[int, int], RenderedEdition]
"""``render(full, more)``: the first ``full`` stories in full, the next ``more`` as links."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A rendering whose HTML is within ``budget`` bytes (0: no budget), and what it took."""

    rendered: RenderedEdition
    full: tuple[Story, ...]
    more: tuple[Story, ...]
    dropped: tuple[Story, ...]
    budget: int

    @property
    def stories(self) -> tuple[Story, ...]:
        """The stories that are in the email, in order (full ones, then the links)."""
        return (*self.full, *self.more)

    def warnings(self) -> list[str]:
        out = []
        size = len(self.rendered.html.encode("utf-8"))
        if self.budget and size > self.budget:
            out.append(
                f"HTML budget ({self.budget:,} bytes): the lead story alone makes "
                f"{size:,} bytes; shorten the templates or raise email.html_budget"
            )
        if self.more:
            out.append(
                f"HTML budget ({self.budget:,} bytes): {len(self.more)} stories moved to "
                f'"More stories" as plain links: {_titles(self.more)}'
            )
        if self.dropped:
            out.append(
                f"HTML budget ({self.budget:,} bytes): {len(self.dropped)} stories dropped: "
                f"{_titles(self.dropped)}"
            )
        return out


def _titles(stories: Sequence[Story]) -> str:
    return "; ".join(repr(s.title) for s in stories)


def _size(rendered: RenderedEdition) -> int:
    return len(rendered.html.encode("utf-8"))


def _smallest(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """The smallest k in [lo, hi] with fits(k), given fits(hi); fits is monotonic in k."""
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def fit_to_budget(render: RenderOnce, stories: Sequence[Story], budget: int) -> Fitted:
    """Render in full if it fits; else move the fewest last stories to links; else drop links.

    The lead always stays in full. Each step is a real rendering (sizes are measured, not
    estimated), found by bisection: a few renderings for a 30-story edition.
    """
    n = len(stories)
    cache: dict[tuple[int, int], RenderedEdition] = {}

    def size(full: int, more: int) -> int:
        if (full, more) not in cache:
            cache[full, more] = render(full, more)
        return _size(cache[full, more])

    def done(full: int, more: int) -> Fitted:
        size(full, more)
        return Fitted(
            cache[full, more],
            tuple(stories[:full]),
            tuple(stories[full : full + more]),
            tuple(stories[full + more :]),
            budget,
        )

    if budget <= 0 or size(n, 0) <= budget:
        return done(n, 0)
    if size(1, n - 1) <= budget:
        moved = _smallest(1, n - 1, lambda k: size(n - k, k) <= budget)
        return done(n - moved, moved)
    if size(1, 0) > budget:
        return done(1, 0)  # the lead alone: preflight reports the size (an error if clipped)
    dropped = _smallest(1, n - 1, lambda k: size(1, n - 1 - k) <= budget)
    return done(1, n - 1 - dropped)
