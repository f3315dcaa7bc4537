"""Output shared by every command: tables with headers, times labelled with their zone, JSON
for scripts, warnings on stderr, and per-source progress on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from digest.slots import local_label

EXIT_OK = 0
EXIT_ERROR = 1  # a DigestError: one line naming the file, line, source or edition
EXIT_USAGE = 2  # click's usage errors: an unknown option, a missing argument
EXIT_THIN_DAY = 3  # `digest build` stored nothing: ranking.thin_day_policy: skip

EXIT_CODES = (
    "Exit status: 0 ok, 1 error (one line naming what and the fix), 2 usage error, "
    "3 thin day (`digest build` under ranking.thin_day_policy: skip), "
    "4 sent, but some deliveries are unknown (`digest send`: in doubt, not resent)."
)


def _console(*, err: bool = False) -> Console:
    stream = sys.stderr if err else sys.stdout
    tty = stream.isatty()
    # Not a terminal (a pipe, a file, a test): wide enough that no cell is cut or folded.
    return Console(
        file=stream,
        width=None if tty else 240,
        highlight=False,
        soft_wrap=not tty,
        force_terminal=tty,
        no_color=not tty,
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str = "") -> None:
    """Print ``rows`` under ``headers`` (cells are plain text, never markup)."""
    grid = Table(
        *headers,
        title=title or None,
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
        padding=(0, 2, 0, 0),
    )
    for row in rows:
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    _console().print(grid)


def pairs(rows: Sequence[tuple[str, object]]) -> None:
    """Print "key: value" lines, keys aligned (one record for people)."""
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        click.echo(f"{key + ':':<{width + 1}} {value}")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def warn(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


def local(moment: datetime | None, zone: str) -> str:
    """A time as people read it where the schedule is, the zone named: "Wed 25 Nov 2026
    07:00 CET (Europe/Berlin)"."""
    return local_label(moment, zone) if moment is not None else "-"


def counts(values: dict[str, int]) -> str:
    """Delivery counts as words: "sent 3, skipped 1" (not a Python dict)."""
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"
