"""`digest editors`: who may sign in to the desk, their sessions, and revoking an editor."""

from __future__ import annotations

import json
import os

import click

from digest.app import App
from digest.cli.group import cli, pass_app
from digest.config import EditorSettings
from digest.exceptions import DigestError
from digest.store.desk import DeskState
from digest.workflow import find_editor


@cli.group()
def editors() -> None:
    """The editors of approval.editors: sign-in status, sessions, revocation.

    \b
    Example:
      digest editors list
    """


def _editor(app: App, who: str) -> EditorSettings:
    found = find_editor(app.settings.approval, who)
    if found is None:
        names = ", ".join(e.name for e in app.settings.approval.editors) or "none"
        raise DigestError(
            f"{who!r} is not in approval.editors ({names}); editors are listed in the config "
            f"({app.settings.path})"
        )
    return found


@editors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_editors(app: App, as_json: bool) -> None:
    """List the editors: address, sign-in methods, live sessions, revoked or not.

    \b
    Example:
      digest editors list --json
    """
    desk = DeskState(app.store)
    revoked = desk.revoked()
    sessions = desk.live_sessions(now=app.now())
    rows = [
        {
            "name": e.name,
            "email": e.email,
            "password": bool(e.password_hash_env and os.environ.get(e.password_hash_env)),
            "sessions": sessions.get(e.email.lower(), 0),
            "revoked": e.email.lower() in revoked,
        }
        for e in app.settings.approval.editors
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no editors: list them under approval.editors in {app.settings.path}")
    for r in rows:
        methods = "sign-in link" + (" or password" if r["password"] else "")
        state = "REVOKED" if r["revoked"] else f"{r['sessions']} live session(s)"
        click.echo(f"{r['name']} <{r['email']}>: {methods}; {state}")


@editors.command()
@click.argument("who", metavar="NAME")
@click.option("--reason", default="", help="Recorded with the revocation.")
@pass_app
def revoke(app: App, who: str, reason: str) -> None:
    """End every session of an editor at once; refuse their sign-in, proof links and
    approvals until `digest editors reinstate NAME`.

    \b
    Example:
      digest editors revoke "Sam Lee"
    """
    editor = _editor(app, who)
    ended = DeskState(app.store).revoke(editor.email, now=app.now(), note=reason)
    click.echo(f"{editor.name} <{editor.email}> revoked; {ended} session(s) ended")


@editors.command()
@click.argument("who", metavar="NAME")
@pass_app
def reinstate(app: App, who: str) -> None:
    """Let a revoked editor sign in, open proof links and approve again.

    \b
    Example:
      digest editors reinstate "Sam Lee"
    """
    editor = _editor(app, who)
    if not DeskState(app.store).reinstate(editor.email, now=app.now()):
        raise DigestError(f"{editor.name} is not revoked; nothing to do")
    click.echo(f"{editor.name} <{editor.email}> reinstated; they can sign in again")


@editors.command()
@click.argument("who", metavar="NAME")
@pass_app
def signout(app: App, who: str) -> None:
    """End every session of an editor now (they may sign in again).

    \b
    Example:
      digest editors signout rosa@example.org
    """
    editor = _editor(app, who)
    ended = DeskState(app.store).end_sessions(editor.email)
    click.echo(f"{ended} session(s) of {editor.name} ended")
