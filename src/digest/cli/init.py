"""`digest init [DIR]`: a new newsroom's files, and the next three commands to run."""

from __future__ import annotations

import shlex
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from digest.addresses import valid_address
from digest.cli.group import cli
from digest.cli.output import emit_json
from digest.exceptions import DigestError
from digest.scaffold import ENV_TEXT, SECRET_COMMAND, SUBSCRIBERS_TEXT, Newsroom, config_text


def _editor(value: str) -> tuple[str, str]:
    name, address = parseaddr(value)
    if not valid_address(address):
        raise DigestError(f"--editor {value!r}: give 'Name <address@domain>'")
    return name or address.partition("@")[0], address


@cli.command("init")
@click.argument(
    "folder", metavar="[DIR]", type=click.Path(path_type=Path, file_okay=False), default="."
)
@click.option(
    "--name", default="The Morning Brief", show_default=True, help="The publication's name."
)
@click.option("--sender", default="", help='The From address: "Name <address@domain>".')
@click.option(
    "--base-url",
    default="https://digest.example.org",
    show_default=True,
    help="The public https URL of `digest serve`.",
)
@click.option(
    "--timezone",
    "zone",
    default="UTC",
    show_default=True,
    help="IANA zone of the send time and the dates in the email.",
)
@click.option("--feed", "feeds", multiple=True, metavar="URL", help="A source (repeat it).")
@click.option(
    "--editor",
    "editors",
    multiple=True,
    metavar='"NAME <EMAIL>"',
    help="An editor who approves editions (repeat it).",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON.")
def init(
    folder: Path,
    name: str,
    sender: str,
    base_url: str,
    zone: str,
    feeds: tuple[str, ...],
    editors: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Write a commented digest.yaml, subscribers.yaml and .env.example into DIR.

    The config has its own state file, an outbox backend (nothing leaves the machine until
    you switch to smtp) and approval by the editors given.

    \b
    Example:
      digest init newsroom --name "The Harbour Herald" \\
          --feed https://herald.example.org/news.rss --editor "Rosa Diaz <rosa@herald.example.org>"
    """
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DigestError(f"--timezone {zone!r} is not an IANA zone (e.g. Europe/Berlin)") from None
    for url in feeds:
        if not url.lower().startswith(("http://", "https://")):
            raise DigestError(f"--feed {url!r} is not an http(s) URL")
    room = Newsroom(
        name=name,
        sender=sender or f"{name} <digest@example.org>",
        base_url=base_url,
        timezone=zone,
        feeds=feeds,
        editors=[_editor(e) for e in editors],
    )
    files = {
        folder / "digest.yaml": config_text(room),
        folder / "subscribers.yaml": SUBSCRIBERS_TEXT,
        folder / ".env.example": ENV_TEXT,
    }
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise DigestError(f"{', '.join(existing)} exist(s); keep them, or pass --force")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{folder}: cannot write the files: {exc.strerror}") from exc
    steps = [
        *([f"cd {shlex.quote(str(folder))}"] if folder.resolve() != Path.cwd() else []),
        f"export DIGEST_SECRET=$({SECRET_COMMAND})",
        "digest check",
        "digest build",
    ][:3]
    if as_json:
        emit_json({"files": [str(p) for p in files], "next": steps})
        return
    click.echo("wrote " + ", ".join(str(p) for p in files))
    click.echo("add your readers to subscribers.yaml, then run:")
    for number, step in enumerate(steps, 1):
        click.echo(f"  {number}. {step}")
