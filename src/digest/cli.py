"""The `digest` command line: argument parsing and output only; the library does the work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.app import App
from digest.config import DEFAULT_CONFIG
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
    default=DEFAULT_CONFIG,
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
@click.argument("urls", metavar="[URL]...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the stories as a JSON array.")
@click.option(
    "--allow-private", is_flag=True, help="With URLs: allow loopback and private addresses."
)
@pass_app
def collect(app: App, urls: tuple[str, ...], as_json: bool, allow_private: bool) -> None:
    """Fetch every source (or just the URLs given, no config needed) and print the stories."""
    from digest.collect import collect_urls
    from digest.collect_progress import collect_progress
    from digest.pipeline import collect_sources, make_fetcher

    if allow_private and not urls:
        raise DigestError("--allow-private applies to URLs given on the command line only")
    with collect_progress() as progress:
        if urls:
            result = collect_urls(
                urls, allow_private=allow_private, now=app.now(), progress=progress
            )
        else:
            with make_fetcher(app.settings) as fetcher:
                result = collect_sources(app.settings, store=app.store, fetcher=fetcher,
                                         now=app.now(), progress=progress)  # fmt: skip
    _warn(result.warnings)
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
    from digest.sourcestate import health_report

    rows = health_report(app.settings)
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
        if r["fallbacks"]:
            click.echo(f"    fallbacks: {'; '.join(r['fallbacks'])}")


THIN_DAY_EXIT = 3
"""`digest build` stored nothing: a thin day under ranking.thin_day_policy: skip."""

_EXPLAIN_HELP = "List every candidate: its score by factor and why it was kept or dropped."
_ORDER_HELP = "This edition's story order, overriding the score: comma-separated URLs, lead first."


def _order(value: str) -> list[str]:
    urls = [u.strip() for u in value.split(",") if u.strip()]
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise DigestError(f"--order: {url!r} is not an http(s) URL; give story URLs")
    return urls


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the new edition as JSON.")
@click.option("--explain", is_flag=True, help=_EXPLAIN_HELP)
@click.option("--order", "order", default="", metavar="URL,URL...", help=_ORDER_HELP)
@pass_app
def build(app: App, as_json: bool, explain: bool, order: str) -> None:
    """Collect, rank and render a new edition, store it and submit it for approval."""
    from digest.collect_progress import collect_progress
    from digest.explain import explain_json, explain_lines
    from digest.pipeline import build_edition, make_fetcher
    from digest.rank import ThinDay
    from digest.variants import VariantStore

    try:
        with make_fetcher(app.settings) as fetcher, collect_progress() as progress:
            edition = build_edition(
                app.settings, store=app.store, fetcher=fetcher, now=app.now(),
                subscribers=app.subscribers, order=_order(order), progress=progress,
            )  # fmt: skip
    except ThinDay as exc:
        if as_json:
            data: dict[str, Any] = {"id": None, "thin_day": True, "reason": str(exc)}
            extra = {"explain": explain_json(exc.candidates)} if explain else {}
            click.echo(json.dumps({**data, **extra}, indent=2, ensure_ascii=False))
        elif explain:
            click.echo("\n".join(explain_lines(exc.candidates)))
        click.echo(f"no edition built: {exc}", err=True)
        sys.exit(THIN_DAY_EXIT)
    _warn(edition.warnings)
    extras = VariantStore(app.store)
    built = extras.ranking(edition.id) if explain else None
    candidates = built[0] if built else []
    variants = extras.keys(edition.id)
    if as_json:
        data = {**_edition_dict(edition), "variants": [json.loads(k) for k in variants]}
        extra = {"explain": explain_json(candidates)} if explain else {}
        click.echo(json.dumps({**data, **extra}, indent=2, ensure_ascii=False))
        return
    if explain:
        click.echo("\n".join(explain_lines(candidates)))
    click.echo(f"edition {edition.id} built for {edition.slot}: {len(edition.stories)} stories")
    if variants:
        names = "; ".join(", ".join(json.loads(k)) for k in variants)
        click.echo(f"topic variants: {len(variants)} ({names})")
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
@click.option("--explain", is_flag=True, help=_EXPLAIN_HELP)
@click.option("--order", "order", default="", metavar="URL,URL...", help=_ORDER_HELP)
@pass_app
def preview(
    app: App, edition_id: int | None, email: str | None, out_dir: Path | None, open_browser: bool,
    explain: bool, order: str,
) -> None:  # fmt: skip
    """Write an edition's HTML, text and .eml; with no EDITION, what would be built now."""
    from digest.explain import explain_lines
    from digest.preview import write_preview

    result = write_preview(app, edition_id, email=email, out_dir=out_dir, order=_order(order))
    _warn(result.warnings)
    if explain:
        lines = explain_lines(result.candidates) if result.candidates else []
        click.echo("\n".join(lines) or f"edition {edition_id} has no stored explanation")
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
    """Approve a pending edition's current revision (once enough editors have, it is approved)."""
    from digest.editions import approve as do_approve

    result = do_approve(app.settings, app.store, edition_id, by=by, via="cli", now=app.now())
    if result.approved:
        click.echo(f"edition {edition_id} approved by {by}")
    else:
        click.echo(f"edition {edition_id}: approval {result.count} of {result.needed} by {by} "
                   "recorded; it stays pending until enough editors approve")  # fmt: skip


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help="Who rejects (recorded in the audit trail).")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@pass_app
def reject(app: App, edition_id: int, by: str, reason: str) -> None:
    """Reject a pending edition; it will never be sent."""
    from digest.editions import reject as do_reject

    edition = do_reject(
        app.settings, app.store, edition_id, by=by, reason=reason, via="cli", now=app.now()
    )
    click.echo(f"edition {edition.id} rejected by {by}: {reason}")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--remove", "remove", multiple=True, metavar="URL", help="Drop this story.")
@click.option("--pin", "pin", metavar="URL", help="Move this story to --position.")
@click.option("--position", type=int, default=1, show_default=True, help="1 is the lead.")
@click.option("--by", "by", required=True, help="Who edits (recorded in the audit trail).")
@pass_app
def edit(
    app: App, edition_id: int, remove: tuple[str, ...], pin: str | None, position: int, by: str
) -> None:
    """Remove or pin stories of a pending edition: a new revision, re-proofed to the editors."""
    from digest.editions import revise
    from digest.proofs import send_proofs

    now = app.now()
    edition = revise(app.settings, app.store, edition_id, by=by, via="cli", now=now,
                     remove=remove, pin=pin, position=position)  # fmt: skip
    click.echo(f"edition {edition.id} is now revision {edition.revision} "
               f"({len(edition.stories)} stories, hash {edition.content_hash[:12]}); "
               "earlier approval links no longer work")  # fmt: skip
    _warn(send_proofs(app.settings, app.store, edition, now=now))


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@pass_app
def proof(app: App, edition_id: int) -> None:
    """Mail the proof of a pending edition to the editors (again), with fresh links."""
    from digest.models import EditionState
    from digest.proofs import send_proofs

    edition = app.store.get_edition(edition_id)
    if edition.state is not EditionState.PENDING_APPROVAL:
        raise DigestError(f"edition {edition_id} is {edition.state}; only a pending one is proofed")
    if not app.settings.approval.editors:
        raise DigestError(f"{app.settings.path}: no approval.editors to send the proof to")
    problems = send_proofs(app.settings, app.store, edition, now=app.now())
    _warn(problems)
    if problems:
        raise DigestError(f"{len(problems)} proof(s) of edition {edition_id} not sent")
    click.echo(f"proof of edition {edition_id} (revision {edition.revision}) sent to "
               + ", ".join(e.email for e in app.settings.approval.editors))  # fmt: skip


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
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--dry-run", is_flag=True, help="Check and count, but send and record nothing.")
@pass_app
def send(app: App, edition_id: int, dry_run: bool) -> None:
    """Send an approved edition (or resume one that was interrupted)."""
    from digest.progress import send_with_progress

    report = send_with_progress(app, edition_id, dry_run=dry_run)
    click.echo(report.summary())
    if report.interrupted:
        raise DigestError(f"interrupted; run `digest send {edition_id}` again to resume")
    if report.deferred or report.totals.get("pending") or report.totals.get("in_flight"):
        click.echo(f"some deliveries are still due; run `digest send {edition_id}` again later")
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
        if not as_json:
            for slot, state, note in store.logged_slots():
                click.echo(f"   -  {slot}  {state:<17} {note}")
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
    for i, story in enumerate(edition.stories, 1):
        click.echo(f"  {i:>2}. {story.title}\n      {story.url}")
    click.echo(f"deliveries: {data['deliveries'] or 'none'}")
    click.echo("audit:")
    for a in trail:
        note = f" ({a['note']})" if a["note"] else ""
        click.echo(f"  {a['at']}  {a['from']} -> {a['to']}  by {a['by']} via {a['via']}"
                   f"  r{a['revision']} {str(a['hash'])[:12]}{note}")  # fmt: skip


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@pass_app
def check(app: App, edition_id: int | None) -> None:
    """Validate config, subscribers, sources, backend and templates; with EDITION, preflight
    that edition's email (exit 1 on any error-level finding). Sends nothing."""
    from digest.checks import check_edition, run_checks
    from digest.preflight import has_errors

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
