"""Commands that run and check the installation: collect, sources, check, serve, run, ..."""

from __future__ import annotations

from pathlib import Path

import click

from digest.app import App
from digest.cli.group import cli, log_format_option, log_lines, pass_app
from digest.cli.output import emit_json, local, table, warn
from digest.exceptions import DigestError
from digest.passwords import hash_password as make_hash


@cli.command()
@click.argument("urls", metavar="[URL]...", nargs=-1)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the stories as a JSON array (each with its event's coverage).",
)
@click.option(
    "--allow-private", is_flag=True, help="With URLs: allow loopback and private addresses."
)
@pass_app
def collect(app: App, urls: tuple[str, ...], as_json: bool, allow_private: bool) -> None:
    """Fetch every source (or just the URLs given, no config needed) and print the stories,
    one per event: the others that told it are its coverage (ranking.events).

    \b
    Examples:
      digest collect
      digest collect https://example.org/feed.xml --json
    """
    from digest.cli.collecting import collect_progress
    from digest.collect import collect_urls
    from digest.rank import RankingSettings, group

    if allow_private and not urls:
        raise DigestError("--allow-private applies to URLs given on the command line only")
    with collect_progress() as progress:
        if urls:
            result = collect_urls(
                urls, allow_private=allow_private, now=app.now(), progress=progress
            )
            ranking = RankingSettings()  # no config: the defaults
        else:
            with app.context.pipeline() as pipeline:
                result = pipeline.collect(now=app.now(), progress=progress)
            ranking = app.settings.ranking
    warn(result.warnings)
    # One per event, listed in the order collected (ranking's own order is by weight).
    place = {s.url: i for i, s in reversed(list(enumerate(result.stories)))}
    stories = sorted(group(result.stories, settings=ranking).stories, key=lambda s: place[s.url])
    if as_json:
        emit_json([s.to_dict() for s in stories])
    else:
        table(
            ["published (UTC)", "source", "section", "title", "url", "also in"],
            [
                [
                    f"{s.published:%Y-%m-%d %H:%M}",
                    s.source,
                    s.section,
                    s.title,
                    s.url,
                    ", ".join(s.also_in),
                ]
                for s in stories
            ],
        )
    if not result.stories and result.failed:
        raise DigestError("no stories: every source failed (see the warnings above)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the health as a JSON array.")
@pass_app
def sources(app: App, as_json: bool) -> None:
    """Show each source's health: last success, last error, failures in a row, items seen.

    \b
    Example:
      digest sources
    """
    rows = app.context.source_health()
    if as_json:
        emit_json(rows)
        return
    zone = app.settings.schedule.timezone
    table(
        ["source", "kind", "url", "last success", "failures in a row", "items seen", "flag"],
        [
            [
                r["name"],
                r["kind"],
                r["url"],
                _when(r["last_success"], zone) or "never",
                r["consecutive_failures"],
                r["items_seen"],
                "FAILING" if r["alert"] else "",
            ]
            for r in rows
        ],
    )
    for r in rows:
        if r["last_error"]:
            click.echo(
                f"{r['name']}: last error ({_when(r['last_error_at'], zone)}): {r['last_error']}"
            )
        if r["fallbacks"]:
            click.echo(f"{r['name']}: fallbacks: {'; '.join(r['fallbacks'])}")


def _when(value: object, zone: str) -> str:
    from datetime import datetime

    if not value:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return local(moment, zone)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@log_format_option
@pass_app
def serve(app: App, host: str, port: int, log_format: str) -> None:
    """Serve the editors' review pages and the unsubscribe endpoint (until Ctrl-C).

    \b
    Example:
      digest serve --host 127.0.0.1 --port 8080   # behind a TLS proxy at base_url
    """
    from digest.web.app import create_app
    from digest.web.server import serve as run_server
    from digest.web.server import serve_warnings

    asgi = create_app(app)
    started = f"serving on http://{host}:{port} (public URL {app.settings.publication.base_url})"
    if log_format == "text":
        warn(serve_warnings(app.settings, host))  # on stderr, as before
        click.echo(started)
    else:
        log = log_lines(app, log_format, "serve")
        for line in serve_warnings(app.settings, host):
            log(f"warning: {line}")
        log(started)
    if not app.settings.signup.enabled:
        run_server(asgi, host=host, port=port)
        return
    from digest.web.drain import Drainer

    with Drainer(app.readers.pages()):  # mails the confirmations the form queues
        run_server(asgi, host=host, port=port)


@cli.command("hash-password")
@click.option("--json", "as_json", is_flag=True, help="Print the hash and variable as JSON.")
@click.pass_context
def hash_password(ctx: click.Context, as_json: bool) -> None:
    """Print a password hash for the editors' sign-in (approval.editors[].password_hash_env).

    The hash goes to stdout alone (its last line); how to set the variable safely, to stderr.

    \b
    Example:
      digest hash-password
    """
    # Each editor names their own variable (approval.editors[].password_hash_env).
    variable = "DIGEST_PASSWORD_ROSA"
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < 12:
        raise DigestError("use at least 12 characters")
    hashed = make_hash(password)
    if as_json:
        emit_json({"variable": variable, "hash": hashed})
        return
    # The hint first (stderr), so the hash is the last line, alone on stdout.
    click.echo(
        f"Put it in the variable that editor's approval.editors[].password_hash_env names, in "
        f"single quotes, so the shell leaves its $ parts alone; e.g.\n"
        f"  export {variable}='{hashed}'\n"
        f"(in a systemd EnvironmentFile or .env file: {variable}='{hashed}')",
        err=True,
    )
    click.echo(hashed)


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option(
    "--offline", is_flag=True, help="Do not contact the SMTP backend or fetch the sources."
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_app
def check(app: App, edition_id: int | None, offline: bool, as_json: bool) -> None:
    """Validate everything a send depends on, sending nothing; exit 1 on any error.

    Config, subscribers, addresses, URLs, secrets, the password hash, writable folders,
    templates (through MJML), the schedule; then the SMTP backend (connect, EHLO,
    STARTTLS, AUTH, QUIT) and each source, fetched once. With EDITION, also preflight that
    edition's email.

    \b
    Examples:
      digest check
      digest check --offline
      digest check 3 --json
    """
    from digest.checks import check_edition, run_checks
    from digest.render.preflight import has_errors

    report = run_checks(app, offline=offline)
    findings = check_edition(app, edition_id) if edition_id is not None else []
    failed = bool(report.errors) or has_errors(findings)
    if as_json:
        data = report.to_dict()
        if edition_id is not None:
            data["edition"] = [{"level": f.level, "message": f.message} for f in findings]
        emit_json({**data, "ok": not failed})
    else:
        for line in report.lines:
            click.echo(line)
        # The first error is the closing "Error:" line; every other problem is one line here.
        first_error = report.errors[0] if report.errors else None
        for problem in report.problems:
            if problem is not first_error:
                click.echo(str(problem), err=problem.level == "error")
        for finding in findings:
            click.echo(f"edition {edition_id}: {finding}")
        if edition_id is not None and not has_errors(findings):
            suffix = " with warnings" if findings else ""
            click.echo(f"edition {edition_id}: preflight passed{suffix}")
    if report.errors:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more above)" if len(report.errors) > 1 else ""
        raise DigestError(f"{first.where}: {first.message}{more}")
    if failed:
        raise DigestError(f"edition {edition_id} fails preflight (see the errors above)")
    if not as_json:
        click.echo("check passed" + (" (offline)" if offline else "") + "; nothing was sent")


@cli.command()
@log_format_option
@pass_app
def run(app: App, log_format: str) -> None:
    """Run the scheduler: build, approve and send at the configured times (until SIGTERM).

    \b
    Example:
      digest run        # or a systemd service: cron/digest.service
    """
    from digest.schedule.runner import run_forever

    run_forever(app, echo=log_lines(app, log_format, "run"), log_format=log_format)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@log_format_option
@pass_app
def tick(app: App, as_json: bool, log_format: str) -> None:
    """Do whatever the schedule says is due now (build, send or expire), then exit.

    When nothing is due it says when the next slot is built and sent.

    \b
    Example:
      */5 * * * * cd /srv/digest && .venv/bin/digest tick   # crontab
    """
    from digest.schedule.tick import tick as do_tick

    log = log_lines(app, log_format, "tick")
    result = do_tick(app, echo=(lambda _line: None) if as_json else log)
    if as_json:
        emit_json({"done": result.lines, "idle": result.idle, "next": result.next_slot})


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
    """One unattended cycle on the bundled example: collect, build, approve, preview, send.

    \b
    Example:
      digest --config digest.example.yaml demo
    """
    from digest.demo import run_demo

    run_demo(app, serve_dir, echo=click.echo)


@cli.group()
def db() -> None:
    """The state database: schema versions and upgrades.

    \b
    Example:
      digest db upgrade
    """


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@pass_app
def db_upgrade(app: App, as_json: bool) -> None:
    """Migrate the state database to this digest's schema (back it up first).

    \b
    Example:
      cp .digest/digest.db .digest/digest.db.bak && digest db upgrade
    """
    from digest.store.engine import migrations, open_engine, upgrade

    engine, path = open_engine(app.context.state_location())
    try:
        before, after = upgrade(engine, path)
    finally:
        engine.dispose()
    applied = migrations(before) if before != after else []
    if as_json:
        steps = [{"revision": rev, "label": label} for rev, label in applied]
        emit_json({"state_path": str(path), "before": before, "after": after, "applied": steps})
    elif before == after:
        click.echo(f"{path}: schema {after} is current; nothing to do")
    elif not applied:
        click.echo(f"{path}: schema created at {after}")
    else:
        # Revision names are not in running order (0006 runs before 0005): list each step.
        click.echo(f"{path}: schema upgraded from {before} to {after}, in order:")
        for rev, label in applied:
            click.echo(f"  {rev}  {label}")
