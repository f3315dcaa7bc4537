"""`digest webhooks`: the outgoing webhook queue, and the sends that are dead."""

from __future__ import annotations

import json

import click

from digest.app import App
from digest.cli.group import cli, pass_app


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_app
def webhooks(app: App, as_json: bool) -> None:
    """Show the outgoing webhook queue: sends pending, sent and dead (each dead one with
    its last error). `digest tick` sends them.

    Example: digest webhooks --json
    """
    queue = app.webhooks.queue()
    counts, dead = queue.counts(), queue.dead()
    if as_json:
        click.echo(json.dumps({**counts, "dead_sends": dead}))
        return
    click.echo(
        f"webhooks: {counts['queued']} queued, {counts['pending']} pending, "
        f"{counts['sent']} sent, {counts['dead']} dead"
    )
    for d in dead:
        tried = f"after {d['attempts']} attempts"
        click.echo(f"  dead {d['id']} {d['event']} to {d['url']} {tried}: {d['error']}")
