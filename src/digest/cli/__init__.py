"""The `digest` command line: argument parsing and output only; the library does the work."""

from __future__ import annotations

from digest.cli import (
    bounces,
    control,
    delivery,
    editions,
    editors,
    init,
    ops,
    status,
    subscribers,
)
from digest.cli.group import cli

__all__ = ["cli", "main"]
# Importing them registers their commands on ``cli``.
_COMMANDS = (bounces, control, delivery, editions, editors, init, ops, status, subscribers)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="digest")
