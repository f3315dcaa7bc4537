"""The `digest` command line: argument parsing and output only; the library does the work."""

from __future__ import annotations

from digest.cli import editions, ops, subscribers
from digest.cli.group import cli

__all__ = ["cli", "main"]
_COMMANDS = (editions, ops, subscribers)  # importing them registers their commands on ``cli``


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="digest")
