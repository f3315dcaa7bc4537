"""Commands that run and check the installation: collect, sources, check, serve, run, ..."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.app import App
from digest.cli.group import cli, pass_app, warn
from digest.exceptions import DigestError


@cli.command()
@click.argument("urls", metavar="[URL]...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the stories as a JSON array.")
@click.option(
    "--allow-private", is_flag=True, help="With URLs: allow loopback and private addresses."
)
@pass_app
def collect(app: App, urls: tuple[str, ...], as_json: bool, allow_private: bool) -> None:
    """Fetch every source (or just the URLs given, no config needed) and print the stories."""
    from digest.collect import collect_urls

    if urls:
        result = collect_urls(urls, allow_private=allow_private, now=app.now())
    elif allow_private:
        raise DigestError("--allow-private applies to URLs given on the command line only")
    else:
        with app.pipeline() as pipeline:
            result = pipeline.collect(now=app.now())
    warn(result.warnings)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in result.stories], indent=2, ensure_ascii=False))
    else:
        for s in result.stories:
            click.echo(f"{s.published:%Y-%m-%d %H:%M}  [{s.source}] {s.title}\n    {s.url}")
    if not result.stories and result.failed:
        raise DigestError("no stories: every source failed (see the warnings above)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the health as a JSON array.")
@pass_app
def sources(app: App, as_json: bool) -> None:
    """Show each source's health: last success, last error, failures in a row, items seen."""
    rows = app.source_health()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        flag = "  FAILING" if r["alert"] else ""
        ok = r["last_success"] or "never"
        click.echo(f"{r['name']} ({r['kind']}) {r['url']}{flag}")
        click.echo(f"    last success: {ok}; items seen: {r['items_seen']};"
                   f" failures in a row: {r['consecutive_failures']}")  # fmt: skip
        if r["last_error"]:
            click.echo(f"    last error ({r['last_error_at']}): {r['last_error']}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Serve the editors' review pages and the unsubscribe endpoint (until Ctrl-C)."""
    from digest.web.app import create_app
    from digest.web.server import serve as run_server

    asgi = create_app(app)
    click.echo(f"serving on http://{host}:{port} (public URL {app.settings.publication.base_url})")
    run_server(asgi, host=host, port=port)


@cli.command("hash-password")
def hash_password() -> None:
    """Print a password hash for the editors' sign-in (approval.password_hash_env)."""
    from digest.web.auth import hash_password as make_hash

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise DigestError("use at least 12 characters")
    click.echo(make_hash(password))


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@pass_app
def check(app: App, edition_id: int | None) -> None:
    """Validate config, subscribers, sources, backend and templates; with EDITION, preflight
    that edition's email (exit 1 on any error-level finding). Sends nothing."""
    from digest.checks import check_edition, run_checks
    from digest.render.preflight import has_errors

    for line in run_checks(app):
        click.echo(line)
    if edition_id is None:
        return
    findings = check_edition(app, edition_id)
    for finding in findings:
        click.echo(f"edition {edition_id}: {finding}")
    if has_errors(findings):
        raise DigestError(f"edition {edition_id} fails preflight (see the errors above)")
    click.echo(f"edition {edition_id}: preflight passed" + (" with warnings" if findings else ""))


@cli.command()
@pass_app
def run(app: App) -> None:
    """Run the scheduler: build, approve and send at the configured daily time."""
    from digest.schedule.runner import run_forever

    run_forever(app, echo=click.echo)


@cli.command()
@pass_app
def tick(app: App) -> None:
    """Do whatever the schedule says is due now (build, send or expire), then exit."""
    from digest.schedule.tick import tick as do_tick

    do_tick(app, echo=click.echo)


@cli.command()
@click.option(
    "--serve",
    "serve_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default="examples/sources",
    show_default=True,
    help="Folder served on a loopback HTTP server as $DIGEST_DEMO_URL.",
)
@pass_app
def demo(app: App, serve_dir: Path) -> None:
    """One unattended cycle on the bundled example: collect, build, approve, preview, send."""
    from digest.demo import run_demo

    run_demo(app, serve_dir, echo=click.echo)


@cli.group()
def db() -> None:
    """The state database: schema versions and upgrades."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Migrate the state database to this digest's schema (back it up first).

    Example: cp .digest/digest.db .digest/digest.db.bak && digest db upgrade
    """
    from digest.store.engine import open_engine, upgrade

    engine, path = open_engine(app.state_location())
    try:
        before, after = upgrade(engine, path)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{path}: schema {after} is current; nothing to do")
    else:
        click.echo(f"{path}: schema upgraded from {before or 'empty'} to {after}")
