"""Collect progress for the CLI: a rich bar with the pending sources on a terminal.

On a terminal (stderr) the bar shows how many sources are done and which are still
pending; anywhere, when the deadline gives up on some, one line names them (the warnings
then say it per source). Everything goes to stderr, so `--json` output stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from digest.collect import CollectProgress, ProgressCallback

SHOWN = 4  # pending sources named on the bar; the rest are counted


def pending_text(names: tuple[str, ...]) -> str:
    """``a, b, c, d (+3 more)`` for the bar."""
    if not names:
        return ""
    more = f" (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return "waiting for " + ", ".join(names[:SHOWN]) + more


@contextmanager
def collect_progress(*, terminal: bool | None = None) -> Iterator[ProgressCallback]:
    """A progress callback for ``collect()``, rendered while the block runs."""
    if terminal is None:
        terminal = sys.stderr.isatty()
    late: list[str] = []

    def remember(event: CollectProgress) -> None:
        if event.late:
            late[:] = event.late

    if not terminal:
        yield remember
    else:
        console = Console(stderr=True)
        with Progress(
            TextColumn("collecting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[pending]}"),
            console=console,
            transient=True,
        ) as bar:
            task: TaskID = bar.add_task("collect", total=None, pending="")

            def update(event: CollectProgress) -> None:
                remember(event)
                if event.finished:  # one line per source as it finishes, above the bar
                    bar.console.print(Text(f"  {event.finished}: {event.outcome}"))
                bar.update(
                    task,
                    completed=event.done,
                    total=event.total,
                    pending=pending_text(event.pending),
                )

            yield update
    if late:
        click.echo(
            f"deadline: {len(late)} source(s) still pending, left out: {', '.join(late)}",
            err=True,
        )
