"""The `digest` command group, its global options and the App it hands every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digest.app import App
from digest.cli import output
from digest.cli.output import EXIT_CODES
from digest.config import DEFAULT_CONFIG
from digest.exceptions import DigestError
from digest.logline import FORMATS, LogLines
from digest.models import Edition
from digest.version import __version__

pass_app = click.make_pass_decorator(App)


class DigestGroup(click.Group):
    """Prints any DigestError as one line and exits 1, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(
    cls=DigestGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    envvar="DIGEST_CONFIG",
    show_default=True,
    help="Config file (env DIGEST_CONFIG).",
)
@click.option(
    "--state-url",
    "state_url",
    default=None,
    envvar="DIGEST_STATE_URL",
    metavar="URL",
    help="State database URL, overriding state_url (env DIGEST_STATE_URL).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, state_url: str | None) -> None:
    """Collect news, rank it, render an email digest, get it approved and send it.

    \b
    Examples:
      digest init newsroom && cd newsroom
      digest check
      digest build && digest approve 1 --by Rosa && digest send 1
    """
    app = App(config_path, state_url=state_url)
    ctx.obj = app
    ctx.call_on_close(app.close)


def warn(lines: list[str] | tuple[str, ...]) -> None:
    output.warn(lines)


log_format_option = click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: a UTC timestamp, then the words; json: one object per line "
    "(timestamp, level, event, edition, counts, message).",
)


def log_lines(app: App, fmt: str, event: str, *, err: bool = False) -> LogLines:
    """Lines of a long-running command in ``fmt``, on stdout (or stderr)."""
    return LogLines(fmt, event, app.now, lambda line: click.echo(line, err=err))


def edition_dict(edition: Edition, counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": edition.id,
        "slot": edition.slot,
        "state": str(edition.state),
        "revision": edition.revision,
        "subject": edition.rendered.subject,
        "stories": len(edition.stories),
        "content_hash": edition.content_hash,
        "created_at": edition.created_at.isoformat(),
        "warnings": list(edition.warnings),
        **({"deliveries": counts} if counts is not None else {}),
    }
