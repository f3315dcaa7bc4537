"""Commands about editions: build, preview, approve, reject, edit, proof, send, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from digest.app import App
from digest.cli.group import cli, edition_dict, pass_app, warn
from digest.exceptions import DigestError

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
    from digest.exceptions import ThinDay
    from digest.rank.explain import explain_json, explain_lines

    try:
        edition = app.build(order=_order(order))
    except ThinDay as exc:
        if as_json:
            data: dict[str, Any] = {"id": None, "thin_day": True, "reason": str(exc)}
            extra = {"explain": explain_json(exc.candidates)} if explain else {}
            click.echo(json.dumps({**data, **extra}, indent=2, ensure_ascii=False))
        elif explain:
            click.echo("\n".join(explain_lines(exc.candidates)))
        click.echo(f"no edition built: {exc}", err=True)
        sys.exit(THIN_DAY_EXIT)
    warn(edition.warnings)
    built = app.store.ranking(edition.id) if explain else None
    candidates = built[0] if built else []
    variants = [v.key for v in app.store.variants(edition)]
    if as_json:
        data = {**edition_dict(edition), "variants": [json.loads(k) for k in variants]}
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
    from digest.preview import write_preview
    from digest.rank.explain import explain_lines

    result = write_preview(app, edition_id, email=email, out_dir=out_dir, order=_order(order))
    warn(result.warnings)
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
    result = app.approve(edition_id, by=by, via="cli")
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
    edition = app.reject(edition_id, by=by, reason=reason, via="cli")
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
    before = len(app.store.get_edition(edition_id).warnings)
    edition = app.revise(edition_id, by=by, via="cli", remove=remove, pin=pin,
                         position=position)  # fmt: skip
    click.echo(f"edition {edition.id} is now revision {edition.revision} "
               f"({len(edition.stories)} stories, hash {edition.content_hash[:12]}); "
               "earlier approval links no longer work")  # fmt: skip
    warn(edition.warnings[before:])


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@pass_app
def proof(app: App, edition_id: int) -> None:
    """Mail the proof of a pending edition to the editors (again), with fresh links."""
    from digest.models import EditionState

    edition = app.store.get_edition(edition_id)
    if edition.state is not EditionState.PENDING_APPROVAL:
        raise DigestError(f"edition {edition_id} is {edition.state}; only a pending one is proofed")
    if not app.settings.approval.editors:
        raise DigestError(f"{app.settings.path}: no approval.editors to send the proof to")
    problems = app.proofs(edition)
    warn(problems)
    if problems:
        raise DigestError(f"{len(problems)} proof(s) of edition {edition_id} not sent")
    click.echo(f"proof of edition {edition_id} (revision {edition.revision}) sent to "
               + ", ".join(e.email for e in app.settings.approval.editors))  # fmt: skip


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--dry-run", is_flag=True, help="Check and count, but send and record nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes on this host that send the edition together.")  # fmt: skip
@pass_app
def send(app: App, edition_id: int, dry_run: bool, workers: int) -> None:
    """Send an approved edition (or resume one that was interrupted)."""
    from digest.cli.delivery import IN_DOUBT_EXIT, send_with_workers
    from digest.cli.progress import send_with_progress

    if workers > 1 and not dry_run:
        report = send_with_workers(app, edition_id, workers)
    else:
        report = send_with_progress(app, edition_id, dry_run=dry_run)
    click.echo(report.summary())
    if report.interrupted:
        raise DigestError(f"interrupted; run `digest send {edition_id}` again to resume")
    if report.deferred or report.totals.get("pending") or report.totals.get("in_flight"):
        click.echo(f"some deliveries are still due; run `digest send {edition_id}` again later")
    if not dry_run and report.state.value == "failed":
        sys.exit(1)
    if report.in_doubt:
        done = "recorded as unknown" if report.unknown else "resent (a reader may get two copies)"
        click.echo(f"{report.in_doubt} deliveries were in doubt (the connection was lost after "
                   f"the message was sent); {done}", err=True)  # fmt: skip
    if report.unknown and not dry_run:
        sys.exit(IN_DOUBT_EXIT)


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, edition_id: int | None, as_json: bool) -> None:
    """List editions with their states and delivery counts, or show one with its audit trail."""
    store = app.store
    if edition_id is None:
        rows = [edition_dict(e, store.delivery_counts(e.id)) for e in store.list_editions()]
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
    data = edition_dict(edition, store.delivery_counts(edition_id))
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
