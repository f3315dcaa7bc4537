"""A send's progress in the desk's words: the same figures for the page and its JSON poll."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from digest.delivery.control import Progress
from digest.models import EditionState

S = EditionState


def _time(moment: datetime | None, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S") if moment else ""


def _left(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute"
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def line(p: Progress, zone: str) -> str:
    """One sentence: where the send stands, its pace and time left, or its start and end."""
    done = p.sent + p.failed + p.suppressed
    if p.state in (S.SENT, S.FAILED):
        return (
            f"{p.state.capitalize()}: {p.sent:,} of {p.total:,} delivered; started "
            f"{_time(p.started, zone)}, ended {_time(p.ended, zone)} ({zone})."
        )
    if p.paused is not None:
        return (
            f"Paused by {p.paused.by} at {_time(p.paused.at, zone)}: {p.left:,} waiting, "
            "nothing more goes out until resumed."
        )
    if p.state is not S.SENDING:
        return ""
    pace = f"; {p.per_minute:,.0f} a minute" if p.per_minute else ""
    eta = f", about {_left(p.seconds_left)} left" if p.seconds_left is not None else ""
    return f"Sending: {done:,} of {p.total:,} done{pace}{eta}; started {_time(p.started, zone)}."


def view(p: Progress, zone: str) -> dict[str, object]:
    """What the page shows and the poll returns."""
    done = p.sent + p.failed + p.suppressed
    return p.to_dict() | {
        "done": done,
        "percent": int(100 * done / p.total) if p.total else 0,
        "line": line(p, zone),
        "started_clock": _time(p.started, zone),
        "ended_clock": _time(p.ended, zone),
    }
