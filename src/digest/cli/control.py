"""An editor's control of a send: `digest pause`, `digest resume`, `digest cancel`,
the same actions as the desk's buttons (each audited)."""

from __future__ import annotations

import click

from digest.app import App
from digest.cli.group import cli, edition_dict, pass_app
from digest.cli.output import emit_json
from digest.cli.progress import send_with_progress

_BY = "Who acts (recorded in the audit trail)."
_JSON_HELP = "Print the result as JSON (for scripts)."


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help=_BY)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def pause(app: App, edition_id: int, by: str, as_json: bool) -> None:
    """Pause an edition that is sending: no worker starts another message; those already
    in flight finish. `digest resume` sends the rest.

    \b
    Example:
      digest pause 3 --by "Rosa Diaz"
    """
    edition = app.sending.pause(edition_id, by=by, via="cli")
    if as_json:
        emit_json({**edition_dict(edition), **app.sending.progress(edition_id).to_dict()})
        return
    left = app.sending.progress(edition_id).left
    click.echo(f"edition {edition_id} paused by {by}; {left} message(s) wait for the resume")
    click.echo(f"next: `digest resume {edition_id} --by NAME` sends the rest")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help=_BY)
@click.option("--no-send", is_flag=True, help="Only lift the pause; running workers send the rest.")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def resume(app: App, edition_id: int, by: str, no_send: bool, as_json: bool) -> None:
    """Lift the pause of an edition and send the rest here (as `digest send` does).

    \b
    Examples:
      digest resume 3 --by "Rosa Diaz"
      digest resume 3 --by "Rosa Diaz" --no-send
    """
    edition = app.sending.resume(edition_id, by=by, via="cli")
    if no_send:
        if as_json:
            emit_json({**edition_dict(edition), **app.sending.progress(edition_id).to_dict()})
        else:
            click.echo(f"edition {edition_id} resumed by {by}; workers send the rest")
        return
    report = send_with_progress(app, edition_id)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"edition {edition_id} resumed by {by}")
        click.echo(report.summary())


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help=_BY)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def cancel(app: App, edition_id: int, by: str, as_json: bool) -> None:
    """Cancel an approved edition before its first message: it is not sent (rejected).

    \b
    Example:
      digest cancel 3 --by "Rosa Diaz"
    """
    edition = app.sending.cancel(edition_id, by=by, via="cli")
    if as_json:
        emit_json(edition_dict(edition))
        return
    click.echo(f"edition {edition_id} cancelled by {by}; it will not be sent")
