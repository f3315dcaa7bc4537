"""One line per event for the long-running commands (serve, run, tick, worker, send).

``text``: a UTC timestamp, then the words people read. ``json``: one object per line,
``{"timestamp", "level", "event", "edition", "counts", "message"}``, for journald, Loki or
any log shipper; the level comes from the line's own "warning: "/"error: " prefix and the
edition, when not given, from its "edition N".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

FORMATS = ("text", "json")
_EDITION = re.compile(r"\bedition (\d+)\b")
_LEVELS = ("warning", "error")


def log_line(
    fmt: str,
    *,
    at: datetime,
    event: str,
    message: str,
    edition: int | None = None,
    counts: Mapping[str, int] | None = None,
) -> str:
    """``message`` as one line of ``fmt``."""
    level = next((lv for lv in _LEVELS if message.startswith(f"{lv}: ")), "info")
    stamp = at.astimezone(UTC)
    if fmt != "json":
        return f"{stamp:%Y-%m-%dT%H:%M:%SZ} {message}"
    if edition is None:
        found = _EDITION.search(message)
        edition = int(found.group(1)) if found else None
    record = {
        "timestamp": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "level": level,
        "event": event,
        "edition": edition,
        "counts": dict(counts or {}),
        "message": message.removeprefix(f"{level}: "),
    }
    return json.dumps(record, ensure_ascii=False)


class LogLines:
    """An echo (callable with one line) that writes each line in ``fmt``, stamped by
    ``clock``; ``event`` names the command or step."""

    def __init__(
        self, fmt: str, event: str, clock: Callable[[], datetime], write: Callable[[str], None]
    ) -> None:
        self.fmt, self.event_name, self.clock, self.write = fmt, event, clock, write

    def __call__(self, message: str) -> None:
        self.event(message)

    def event(
        self, message: str, *, edition: int | None = None, counts: Mapping[str, int] | None = None
    ) -> None:
        self.write(
            log_line(
                self.fmt,
                at=self.clock(),
                event=self.event_name,
                message=message,
                edition=edition,
                counts=counts,
            )
        )
