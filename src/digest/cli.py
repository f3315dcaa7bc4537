"""The `digest` command line: argument parsing and output only; the library does the work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.app import App
from digest.exceptions import DigestError
from digest.models import Edition

pass_app = click.make_pass_decorator(App)


class DigestGroup(click.Group):
    """Prints any DigestError as one line and exits 1, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="digest.yaml",
    envvar="DIGEST_CONFIG",
    show_default=True,
    help="Config file (env DIGEST_CONFIG).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Collect news, rank it, render an email digest, get it approved and send it."""
    app = App(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _warn(lines: list[str] | tuple[str, ...]) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


def _edition_dict(edition: Edition, counts: dict[str, int] | None = None) -> dict[str, Any]:
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the stories as a JSON array.")
@pass_app
def collect(app: App, as_json: bool) -> None:
    """Fetch every source and print the normalised stories."""
    from digest.collect import collect as run_collect
    from digest.pipeline import make_fetcher, make_sources

    settings = app.settings
    with make_fetcher(settings) as fetcher:
        result = run_collect(
            make_sources(settings), fetcher, now=app.now(), max_workers=settings.fetch.concurrency
        )
    _warn(result.warnings)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in result.stories], indent=2, ensure_ascii=False))
    else:
        for s in result.stories:
            click.echo(f"{s.published:%Y-%m-%d %H:%M}  [{s.source}] {s.title}\n    {s.url}")
    if not result.stories and result.failed:
        raise DigestError("no stories: every source failed (see the warnings above)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the new edition as JSON.")
@pass_app
def build(app: App, as_json: bool) -> None:
    """Collect, rank and render a new edition, store it and submit it for approval."""
    from digest.pipeline import build_edition, make_fetcher

    with make_fetcher(app.settings) as fetcher:
        edition = build_edition(app.settings, store=app.store, fetcher=fetcher, now=app.now())
    _warn(edition.warnings)
    if as_json:
        click.echo(json.dumps(_edition_dict(edition), indent=2, ensure_ascii=False))
        return
    click.echo(f"edition {edition.id} built for {edition.slot}: {len(edition.stories)} stories")
    click.echo(f"subject: {edition.rendered.subject}")
    click.echo(f"state: {edition.state}")
    if app.settings.approval.auto_approve:
        click.echo("approved automatically: approval.auto_approve is on in the config")


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option("--subscriber", "email", help="Preview as this subscriber would get it.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Output folder."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@pass_app
def preview(
    app: App, edition_id: int | None, email: str | None, out_dir: Path | None, open_browser: bool
) -> None:
    """Write an edition's HTML, text and .eml; with no EDITION, what would be built now."""
    from digest.preview import write_preview

    result = write_preview(app, edition_id, email=email, out_dir=out_dir)
    _warn(result.warnings)
    for kind, path in result.files.items():
        click.echo(f"{kind}: {path}")
    if result.note:
        click.echo(result.note)
    if open_browser:
        click.launch(str(result.files["html"]))


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help="Who approves (recorded in the audit trail).")
@pass_app
def approve(app: App, edition_id: int, by: str) -> None:
    """Approve a pending edition for sending."""
    from digest.pipeline import approve as do_approve

    edition = do_approve(app.store, edition_id, by=by, via="cli", now=app.now())
    click.echo(f"edition {edition.id} approved by {by}")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help="Who rejects (recorded in the audit trail).")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@pass_app
def reject(app: App, edition_id: int, by: str, reason: str) -> None:
    """Reject a pending edition; it will never be sent."""
    from digest.pipeline import reject as do_reject

    edition = do_reject(app.store, edition_id, by=by, reason=reason, via="cli", now=app.now())
    click.echo(f"edition {edition.id} rejected by {by}: {reason}")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--dry-run", is_flag=True, help="Check and count, but send and record nothing.")
@pass_app
def send(app: App, edition_id: int, dry_run: bool) -> None:
    """Send an approved edition (or resume one that was interrupted)."""
    from digest.send import send_edition

    report = send_edition(
        app.store,
        edition_id,
        subscribers=app.subscribers,
        backend=app.backend(),
        make=app.envelopes,
        clock=app.now,
        dry_run=dry_run,
    )
    click.echo(report.summary())
    if report.deferred or report.in_doubt:
        click.echo("some deliveries are pending; run the same `digest send` again to retry")
    if not dry_run and report.state.value == "failed":
        sys.exit(1)


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, edition_id: int | None, as_json: bool) -> None:
    """List editions with their states and delivery counts, or show one with its audit trail."""
    store = app.store
    if edition_id is None:
        rows = [_edition_dict(e, store.delivery_counts(e.id)) for e in store.list_editions()]
        if as_json:
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        elif not rows:
            click.echo("no editions yet; `digest build` makes one")
        for r in rows if not as_json else []:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r["deliveries"].items())) or "-"
            click.echo(
                f"{r['id']:>4}  {r['slot']}  {r['state']:<17} {r['stories']:>3} stories  {counts}"
            )
        return
    edition = store.get_edition(edition_id)
    data = _edition_dict(edition, store.delivery_counts(edition_id))
    trail = [
        {"at": a.at.isoformat(), "from": str(a.from_state), "to": str(a.to_state),
         "by": a.actor, "via": a.via, "revision": a.revision, "hash": a.content_hash,
         "note": a.note}
        for a in store.audit_trail(edition_id)
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps({**data, "audit": trail}, indent=2, ensure_ascii=False))
        return
    for key in ("id", "slot", "state", "revision", "subject", "stories", "content_hash"):
        click.echo(f"{key}: {data[key]}")
    click.echo(f"deliveries: {data['deliveries'] or 'none'}")
    click.echo("audit:")
    for a in trail:
        note = f" ({a['note']})" if a["note"] else ""
        click.echo(f"  {a['at']}  {a['from']} -> {a['to']}  by {a['by']} via {a['via']}{note}")


@cli.command()
@pass_app
def check(app: App) -> None:
    """Validate config, subscribers, sources, backend and templates; send nothing."""
    from digest.checks import run_checks

    for line in run_checks(app):
        click.echo(line)


@cli.command()
@pass_app
def run(app: App) -> None:
    """Run the scheduler: build, approve and send at the configured daily time."""
    from digest.scheduler import run_forever

    run_forever(app, echo=click.echo)


@cli.command()
@pass_app
def tick(app: App) -> None:
    """Do whatever the schedule says is due now (build, send or expire), then exit."""
    from digest.scheduler import tick as do_tick

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


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="digest")
