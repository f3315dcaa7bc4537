"""Commands about editions: build, preview, approve, reject, edit, proof, send."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from digest.app import App
from digest.cli.group import cli, edition_dict, log_format_option, log_lines, pass_app
from digest.cli.output import EXIT_THIN_DAY, emit_json, local, warn
from digest.edits import Edit, Kind
from digest.exceptions import DigestError
from digest.models import Edition, EditionState

S = EditionState
THIN_DAY_EXIT = EXIT_THIN_DAY
"""`digest build` stored nothing: a thin day under ranking.thin_day_policy: skip."""

_EXPLAIN_HELP = "List every candidate: its score by factor and why it was kept or dropped."
_ORDER_HELP = "This edition's story order, overriding the score: comma-separated URLs, lead first."
_JSON_HELP = "Print the result as JSON (for scripts)."


def _order(value: str) -> list[str]:
    urls = [u.strip() for u in value.split(",") if u.strip()]
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise DigestError(f"--order: {url!r} is not an http(s) URL; give story URLs")
    return urls


def what_next(app: App, edition: Edition) -> str:
    """What happens to an edition now, in words: when it goes out, or why it will not."""
    slot = app.schedule.slot_for(edition.slot)
    zone = app.settings.schedule.timezone
    now = app.now()
    until = slot.last_wave + app.schedule.lateness
    if edition.state is S.PENDING_APPROVAL:
        deadline = app.schedule.deadline(edition)
        passed = " (passed)" if deadline <= now else ""
        return (
            f"awaits approval: `digest approve {edition.id} --by NAME` by "
            f"{local(deadline, zone)}{passed}"
        )
    if edition.state is S.APPROVED:
        if now < slot.first_wave:
            return (
                f"goes out at {local(slot.first_wave, zone)} (`digest tick` or `digest run`"
                f"), or now with `digest send {edition.id}`"
            )
        if now <= until:
            return (
                f"its slot's send time ({local(slot.first_wave, zone)}) has passed: send now "
                f"with `digest send {edition.id}` (the scheduler sends it until "
                f"{local(until, zone)})"
            )
    if edition.state is S.EXPIRED:
        return (
            f"expired: its slot {edition.slot} passed or its deadline did; nothing is sent. "
            "`digest build` makes an edition for the next slot"
        )
    if edition.state is S.SUPERSEDED:
        return "superseded by a newer edition for its slot; never sent"
    return f"is {edition.state}"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.option("--explain", is_flag=True, help=_EXPLAIN_HELP)
@click.option("--order", "order", default="", metavar="URL,URL...", help=_ORDER_HELP)
@click.option(
    "--slot",
    "slot_key",
    metavar="YYYY-MM-DDTHH:MM",
    help="The slot to build for (default: the next one whose send time has not passed).",
)
@pass_app
def build(app: App, as_json: bool, explain: bool, order: str, slot_key: str | None) -> None:
    """Collect, rank and render a new edition for the next slot; submit it for approval.

    The edition is for the next slot whose send time has not passed (or --slot). Building
    again for a slot supersedes its pending or approved edition: only the newest can be
    sent, and a slot is sent once.

    \b
    Examples:
      digest build
      digest build --slot 2026-11-25T07:00 --json
    """
    from digest.cli.collecting import collect_progress
    from digest.exceptions import ThinDay
    from digest.rank.explain import explain_json, explain_lines

    now = app.now()
    slot = app.schedule.slot_for(slot_key) if slot_key else app.schedule.build_slot(now)
    zone = app.settings.schedule.timezone
    if now > slot.last_wave + app.schedule.lateness:
        raise DigestError(
            f"slot {slot.key} is over: its last wave ({local(slot.last_wave, zone)}) passed "
            f"schedule.max_lateness_minutes; choose a later --slot"
        )
    before = app.store.latest_for_slot(slot.key)
    try:
        with collect_progress() as progress:
            edition = app.editions.build(order=_order(order), slot=slot.key, progress=progress)
    except ThinDay as exc:
        if as_json:
            data: dict[str, Any] = {"id": None, "thin_day": True, "reason": str(exc)}
            extra = {"explain": explain_json(exc.candidates)} if explain else {}
            emit_json({**data, **extra})
        elif explain:
            click.echo("\n".join(explain_lines(exc.candidates)))
        click.echo(f"no edition built: {exc}", err=True)
        sys.exit(THIN_DAY_EXIT)
    warn([*edition.warnings, *app.notes])
    superseded = (
        [before.id]
        if before is not None and before.state in (S.PENDING_APPROVAL, S.APPROVED)
        else []
    )
    built = app.store.ranking(edition.id) if explain else None
    candidates = built[0] if built else []
    variants = [v.key for v in app.store.variants(edition)]
    pending = edition.state is S.PENDING_APPROVAL
    deadline = app.schedule.deadline(edition) if pending else None
    if as_json:
        data = {
            **edition_dict(edition),
            "variants": [json.loads(k) for k in variants],
            "send_at": slot.first_wave.isoformat(),
            "superseded": superseded,
            "deadline": deadline.isoformat() if deadline else None,
            "next": what_next(app, edition),
        }
        extra = {"explain": explain_json(candidates)} if explain else {}
        emit_json({**data, **extra})
        return
    if explain:
        click.echo("\n".join(explain_lines(candidates)))
    click.echo(
        f"edition {edition.id} built for slot {slot.key} (sends "
        f"{local(slot.first_wave, zone)}): {len(edition.stories)} stories"
    )
    for old in superseded:
        click.echo(
            f"it supersedes edition {old} ({before.state if before else ''}), which "
            "will never be sent"
        )
    if variants:
        names = "; ".join(", ".join(json.loads(k)) for k in variants)
        click.echo(f"topic variants: {len(variants)} ({names})")
    click.echo(f"subject: {edition.rendered.subject}")
    click.echo(f"state: {edition.state}")
    if app.settings.approval.auto_approve and edition.state == "approved":
        click.echo("approved automatically: approval.auto_approve is on in the config")
    if pending and app.settings.approval.editors:
        click.echo("proofs: " + ", ".join(e.email for e in app.settings.approval.editors))
    click.echo(f"next: {what_next(app, edition)}")


def _can_open_browser() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option("--subscriber", "email", help="Preview as this subscriber would get it.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Output folder."
)
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Open the HTML in a browser (without a display: print the path to open).",
)
@click.option("--explain", is_flag=True, help=_EXPLAIN_HELP)
@click.option("--order", "order", default="", metavar="URL,URL...", help=_ORDER_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def preview(
    app: App,
    edition_id: int | None,
    email: str | None,
    out_dir: Path | None,
    open_browser: bool,
    explain: bool,
    order: str,
    as_json: bool,
) -> None:
    """Write an edition's HTML, text and .eml; with no EDITION, what would be built now.

    \b
    Examples:
      digest preview 3 --open
      digest preview --subscriber ben@example.net --out /tmp/look
    """
    from digest.preview import write_preview
    from digest.rank.explain import explain_json, explain_lines

    result = write_preview(app, edition_id, email=email, out_dir=out_dir, order=_order(order))
    warn(result.warnings)
    if as_json:
        data = {
            "files": {k: str(p) for k, p in result.files.items()},
            "warnings": result.warnings,
            "note": result.note,
        }
        emit_json({**data, **({"explain": explain_json(result.candidates)} if explain else {})})
    else:
        if explain:
            lines = explain_lines(result.candidates) if result.candidates else []
            click.echo("\n".join(lines) or f"edition {edition_id} has no stored explanation")
        for kind, path in result.files.items():
            click.echo(f"{kind}: {path}")
        if result.note:
            click.echo(result.note)
    if open_browser:
        html = result.files["html"].resolve()
        if not _can_open_browser() or click.launch(str(html)) != 0:
            click.echo(f"no browser to open here (no display); open {html.as_uri()}", err=True)


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help="Who approves (recorded in the audit trail).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def approve(app: App, edition_id: int, by: str, as_json: bool) -> None:
    """Approve a pending edition's current revision (once enough editors have, it is approved).

    Says what happens next: when it goes out, "send now" if its slot's time has passed, or
    that it expired if the slot passed its maximum lateness.

    \b
    Example:
      digest approve 3 --by "Rosa Diaz"
    """
    result = app.editions.approve(edition_id, by=by, via="cli")
    edition = result.edition
    if as_json:
        emit_json(
            {
                **edition_dict(edition),
                "approvals": result.count,
                "needed": result.needed,
                "next": what_next(app, edition),
            }
        )
        return
    if result.count >= result.needed:
        click.echo(f"edition {edition_id} approved by {by}")
    else:
        click.echo(
            f"edition {edition_id}: approval {result.count} of {result.needed} by {by} "
            "recorded; it stays pending until enough editors approve"
        )
    click.echo(f"next: {what_next(app, edition)}")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--by", "by", required=True, help="Who rejects (recorded in the audit trail).")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def reject(app: App, edition_id: int, by: str, reason: str, as_json: bool) -> None:
    """Reject a pending edition; it will never be sent.

    \b
    Example:
      digest reject 3 --by "Rosa Diaz" --reason "wrong lead story"
    """
    edition = app.editions.reject(edition_id, by=by, reason=reason, via="cli")
    if as_json:
        emit_json(edition_dict(edition))
        return
    click.echo(f"edition {edition.id} rejected by {by}: {reason}")
    click.echo("next: `digest build` makes a new edition for the same slot")


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--remove", "remove", multiple=True, metavar="URL", help="Drop this story.")
@click.option("--pin", "pin", metavar="URL", help="Move this story to --position.")
@click.option(
    "--add-url",
    "add_url",
    metavar="URL",
    help="Add the article at URL (read like a page source's) at --position.",
)
@click.option("--position", type=int, default=1, show_default=True, help="1 is the lead.")
@click.option("--note", metavar="TEXT", help="This edition's editor's note ('' removes it).")
@click.option("--subject", metavar="TEXT", help="This edition's subject ('' for email.subject).")
@click.option(
    "--split",
    "split",
    multiple=True,
    metavar="URL",
    help="Take this story out of the event it was grouped into: an item of its own.",
)
@click.option(
    "--merge",
    "merge",
    nargs=2,
    metavar="URL URL",
    help="One event: the second item (and its coverage) goes under the first.",
)
@click.option("--by", "by", required=True, help="Who edits (recorded in the audit trail).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def edit(
    app: App,
    edition_id: int,
    remove: tuple[str, ...],
    pin: str | None,
    add_url: str | None,
    position: int,
    note: str | None,
    subject: str | None,
    split: tuple[str, ...],
    merge: tuple[str, str] | None,
    by: str,
    as_json: bool,
) -> None:
    """Remove or pin stories, split or merge events, or set the editor's note or subject, of
    a pending edition: a new revision, re-proofed to the editors.

    \b
    Examples:
      digest edit 3 --by Rosa --remove https://example.org/story
      digest edit 3 --by Rosa --pin https://example.org/scoop --position 1
      digest edit 3 --by Rosa --note "Good morning. Three elections today."
      digest edit 3 --by Rosa --split https://example.org/other-quake
      digest edit 3 --by Rosa --merge https://example.org/lead https://example.org/same
      digest edit 3 --by Rosa --add-url https://example.org/scoop --position 2
    """
    from digest.added import fetch_story

    added = fetch_story(app.settings, add_url, now=app.now()) if add_url else None
    edits = [
        *(Edit(Kind.SPLIT, url) for url in split),
        *([Edit(Kind.MERGE, merge[0], text=merge[1])] if merge else []),
        *([Edit(Kind.ADD, url=added.url, story=added, position=position)] if added else []),
        *([Edit(Kind.NOTE, text=note)] if note is not None else []),
        *([Edit(Kind.SUBJECT, text=subject)] if subject is not None else []),
    ]
    before = len(app.store.get_edition(edition_id).warnings)
    edition = app.editions.revise(
        edition_id, by=by, via="cli", remove=remove, pin=pin, position=position, edits=edits
    )
    warn(edition.warnings[before:])
    if as_json:
        emit_json(edition_dict(edition))
        return
    click.echo(
        f"edition {edition.id} is now revision {edition.revision} "
        f"({len(edition.stories)} stories, hash {edition.content_hash[:12]}); "
        "earlier approval links no longer work"
    )


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_app
def proof(app: App, edition_id: int, as_json: bool) -> None:
    """Mail the proof of a pending edition to the editors (again), with fresh links.

    \b
    Example:
      digest proof 3
    """
    edition = app.store.get_edition(edition_id)
    if edition.state is not S.PENDING_APPROVAL:
        raise DigestError(f"edition {edition_id} is {edition.state}; only a pending one is proofed")
    if not app.settings.approval.editors:
        raise DigestError(f"{app.settings.path}: no approval.editors to send the proof to")
    problems = app.editions.proofs(edition)
    warn(problems)
    if problems:
        raise DigestError(f"{len(problems)} proof(s) of edition {edition_id} not sent")
    to = [e.email for e in app.settings.approval.editors]
    if as_json:
        emit_json({"edition": edition_id, "revision": edition.revision, "sent_to": to})
        return
    click.echo(
        f"proof of edition {edition_id} (revision {edition.revision}) sent to " + ", ".join(to)
    )


@cli.command()
@click.argument("edition_id", metavar="EDITION", type=int)
@click.option("--dry-run", is_flag=True, help="Check and count, but send and record nothing.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes on this host that send the edition together.",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@log_format_option
@pass_app
def send(
    app: App, edition_id: int, dry_run: bool, workers: int, as_json: bool, log_format: str
) -> None:
    """Send an approved edition (or resume one that was interrupted).

    Safe to run again after a crash: the delivery ledger says who got it already.

    \b
    Examples:
      digest send 3 --dry-run
      digest send 3 --workers 2
    """
    from dataclasses import asdict

    from digest.cli.delivery import IN_DOUBT_EXIT, counts, send_with_workers
    from digest.cli.progress import send_with_progress

    if workers > 1 and not dry_run:
        report = send_with_workers(app, edition_id, workers)
    else:
        report = send_with_progress(app, edition_id, dry_run=dry_run)
    if log_format == "json" and not as_json:
        # One object per line on stdout, warnings included, for a log shipper.
        log = log_lines(app, log_format, "send")
        for note in app.notes:
            log.event(f"warning: {note}", edition=edition_id)
        log.event(report.summary(), edition=edition_id, counts=counts(report))
    else:
        warn(app.notes)
        if as_json:
            emit_json({**asdict(report), "state": str(report.state)})
        else:
            click.echo(report.summary())
    if report.interrupted:
        raise DigestError(f"interrupted; run `digest send {edition_id}` again to resume")
    held = app.sending.progress(edition_id).paused if not dry_run else None
    if held is not None:
        click.echo(f"paused by {held.by}; `digest resume {edition_id} --by NAME` sends the rest")
        return
    if (report.deferred or report.totals.get("pending") or report.totals.get("in_flight")) and (
        not as_json and log_format == "text"
    ):
        click.echo(f"some deliveries are still due; run `digest send {edition_id}` again later")
    if not dry_run and report.state.value == "failed":
        sys.exit(1)
    if report.in_doubt:
        done = "recorded as unknown" if report.unknown else "resent (a reader may get two copies)"
        click.echo(
            f"{report.in_doubt} deliveries were in doubt (the connection was lost after "
            f"the message was sent); {done}",
            err=True,
        )
    if report.unknown and not dry_run:
        sys.exit(IN_DOUBT_EXIT)
