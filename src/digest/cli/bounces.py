"""`digest bounces import`: read returned mail and apply the bounce and complaint policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.app import App
from digest.cli.group import cli, pass_app


@cli.group()
def bounces() -> None:
    """Bounces, complaints and auto-replies that came back after a send.

    Example: digest bounces import ~/Maildir/.bounces --dry-run
    """


@bounces.command("import")
@click.argument(
    "paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option("--dry-run", is_flag=True, help="Classify and show the actions; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@pass_app
def import_(app: App, paths: tuple[Path, ...], dry_run: bool, as_json: bool) -> None:
    """Read returned mail (.eml files, Maildir folders, mbox files, folders of .eml files),
    classify each message and suppress hard-bounced, complained and often soft-bounced
    addresses (bounces.soft_limit within bounces.soft_window_days).

    Example: digest bounces import bounces.mbox --dry-run --json
    """
    from digest.subscribers.bounces import import_bounces, read_inputs

    settings = app.settings.bounces
    outcomes = import_bounces(
        app.store,
        read_inputs(paths),
        now=app.now(),
        soft_limit=settings.soft_limit,
        soft_window_days=settings.soft_window_days,
        dry_run=dry_run,
        find=app.readers.delivery_finder(),
    )
    failed = 0
    counts: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.report is None:
            failed += 1
            click.echo(f"{outcome.name}: {outcome.error}; skipped", err=True)
            continue
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
        if as_json:
            click.echo(json.dumps(outcome.to_dict(), ensure_ascii=False))
        else:
            who = ", ".join(
                f"{r.address or '(withheld)'} {r.kind} {r.status} {r.reason}".rstrip()
                for r in outcome.report.recipients
            )
            click.echo(
                f"{outcome.name}: {outcome.report.kind}, {outcome.action}: {who}".rstrip(": ")
            )
    done = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "none read"
    note = " (dry run: nothing changed)" if dry_run else ""
    click.echo(f"{sum(counts.values())} message(s): {done}{note}", err=True)
    if failed:
        raise click.ClickException(f"{failed} input(s) could not be read; see the lines above")
