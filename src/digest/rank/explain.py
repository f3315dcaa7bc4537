"""`--explain`: every candidate with its score broken down by factor and why it is in or out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from digest.models import Candidate
from digest.rank.score import FACTORS

_TITLE_WIDTH = 60


def explain_lines(candidates: Sequence[Candidate]) -> list[str]:
    """A table for the terminal: kept stories in edition order, then the dropped ones."""
    kept = sum(1 for c in candidates if c.kept)
    lines = [
        f"{len(candidates)} candidates: {kept} kept, {len(candidates) - kept} dropped",
        "score = " + " x ".join(FACTORS),
        f"{'pos':>3}  {'score':>8}  " + "  ".join(f"{f:>8}" for f in FACTORS) + "  story",
    ]
    for c in candidates:
        pos = str(c.position) if c.kept else "-"
        title = c.story.title
        if len(title) > _TITLE_WIDTH:
            title = title[: _TITLE_WIDTH - 1] + "…"
        factors = "  ".join(f"{c.factors.get(f, 1.0):>8.4f}" for f in FACTORS)
        section = f" <{c.story.section}>" if c.story.section else ""
        lines.append(f"{pos:>3}  {c.score:>8.4f}  {factors}  [{c.story.source}]{section} {title}")
        reason = c.reason if c.kept else f"dropped: {c.reason}"
        lines.append(f"{'':>5}{reason} | {c.story.url}")
        if c.story.also_in:
            # What the coverage factor counts: the other sources that told the same event.
            lines.append(f"{'':>5}coverage: also in {_sources(c.story.also_in)}")
    return lines


def _sources(names: Sequence[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{len(names)} other source{'s' if len(names) != 1 else ''}: " + (
        ", ".join(names[:shown]) + more
    )


def explain_json(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The same as data, for `--json`."""
    return [
        {
            "position": c.position,
            "kept": c.kept,
            "reason": c.reason,
            "score": c.score,
            "factors": {f: c.factors.get(f, 1.0) for f in FACTORS},
            "url": c.story.url,
            "title": c.story.title,
            "source": c.story.source,
            "section": c.story.section,
            "also_in": list(c.story.also_in),
            "coverage": [k.to_dict() for k in c.story.coverage],
        }
        for c in candidates
    ]
