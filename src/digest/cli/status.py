"""`digest status`: editions, slots the scheduler recorded, one edition's stories and trail."""

from __future__ import annotations

import click

from digest.app import App
from digest.cli.editions import what_next
from digest.cli.group import cli, edition_dict, pass_app
from digest.cli.output import counts, emit_json, local, pairs, table
from digest.slots import parse_key, wall_time
from digest.store.figures import Figures

LATEST = 50  # editions listed without --all


def _slot_label(app: App, key: str) -> str:
    zone = app.settings.schedule.timezone
    try:
        day, at = parse_key(key)
    except ValueError:
        return key
    return local(wall_time(day, at, zone), zone)


def _share(figures: Figures, n: int) -> str:
    """``3 (1.5%)``; a bare ``0`` when nothing came back."""
    if not n:
        return "0"
    rate = figures.rate(n)
    return f"{n} ({rate:.2%})" if rate < 0.01 else f"{n} ({rate:.1%})"


def _bounces(figures: Figures) -> str:
    return f"{_share(figures, figures.hard)} / {_share(figures, figures.soft)}"


@cli.command()
@click.argument("edition_id", metavar="[EDITION]", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--all", "show_all", is_flag=True, help=f"Every edition, not only the latest {LATEST}."
)
@pass_app
def status(app: App, edition_id: int | None, as_json: bool, show_all: bool) -> None:
    """List editions with their states and delivery counts, or show one with its audit trail.

    Times are shown in the schedule's zone, named; --json gives ISO 8601 UTC times.

    \b
    Examples:
      digest status
      digest status --all
      digest status 3 --json
    """
    store = app.store
    zone = app.settings.schedule.timezone
    if edition_id is None:
        editions = store.list_editions(limit=None if show_all else LATEST + 1)
        cut = len(editions) > LATEST and not show_all
        editions = editions[:LATEST] if cut else editions
        figures = app.bounces.figures(e.id for e in editions)
        rows = [
            {**edition_dict(e, store.delivery_counts(e.id)), "returns": figures[e.id].returns()}
            for e in editions
        ]
        # Said on stderr, so that --json stays one parseable document on stdout.
        more = f"showing the latest {LATEST} editions; `digest status --all` lists every one"
        if as_json:
            emit_json(rows)
            if cut:
                click.echo(more, err=True)
            return
        if not rows:
            click.echo("no editions yet; `digest build` makes one")
        else:
            table(
                [
                    "edition",
                    "slot",
                    f"send time ({zone})",
                    "state",
                    "stories",
                    "deliveries",
                    "bounces (hard/soft)",
                    "complaints",
                ],
                [
                    [
                        r["id"],
                        r["slot"],
                        _slot_label(app, str(r["slot"])).rsplit(" (", 1)[0],
                        r["state"],
                        r["stories"],
                        counts(r["deliveries"]),
                        _bounces(figures[int(r["id"])]),
                        _share(figures[int(r["id"])], figures[int(r["id"])].complaints),
                    ]
                    for r in rows
                ],
            )
        if cut:
            click.echo(more)
        logged = store.logged_slots()
        if logged:
            click.echo("")
            table(
                ["slot without an edition", "what happened", "why"],
                [[slot, state, note] for slot, state, note in logged],
            )
        return
    edition = store.get_edition(edition_id)
    returned = app.bounces.figures([edition_id])[edition_id]
    data = {
        **edition_dict(edition, store.delivery_counts(edition_id)),
        "returns": returned.returns(),
    }
    trail = [
        {
            "at": a.at.isoformat(),
            "from": str(a.from_state),
            "to": str(a.to_state),
            "by": a.actor,
            "via": a.via,
            "revision": a.revision,
            "hash": a.content_hash,
            "note": a.note,
        }
        for a in store.audit_trail(edition_id)
    ]
    # Readers whose delivery is in doubt and was not resent (send.in_doubt: skip): the
    # server may or may not have their copy, and only a person can find out.
    unknown = (
        [str(r["email"]) for r in store.delivery_rows(edition_id, state="unknown")]
        if store.delivery_counts(edition_id).get("unknown")
        else []
    )
    if as_json:
        emit_json({**data, "unknown_readers": unknown, "audit": trail})
        return
    pairs(
        [
            ("edition", data["id"]),
            ("slot", f"{data['slot']} ({_slot_label(app, edition.slot)})"),
            ("state", data["state"]),
            ("revision", data["revision"]),
            ("subject", data["subject"]),
            ("stories", data["stories"]),
            ("content hash", data["content_hash"]),
        ]
    )
    for i, story in enumerate(edition.stories, 1):
        click.echo(f"  {i:>2}. {story.title}\n      {story.url}")
    pairs(
        [
            ("deliveries", counts(data["deliveries"])),
            ("bounces", f"{_bounces(returned)} (hard/soft, of {returned.sent} sent)"),
            ("complaints", _share(returned, returned.complaints)),
            ("next", what_next(app, edition)),
        ]
    )
    if unknown:
        click.echo(f"\nunknown (in doubt, not resent; the server may have them): {len(unknown)}")
        for email in unknown:
            click.echo(f"  {email}")
    click.echo("")
    table(
        [f"when ({zone})", "change", "by", "via", "revision", "note"],
        [
            [
                local(a.at, zone).rsplit(" (", 1)[0],
                f"{a.from_state} -> {a.to_state}",
                a.actor,
                a.via,
                f"r{a.revision} {a.content_hash[:12]}",
                a.note,
            ]
            for a in store.audit_trail(edition_id)
        ],
        title="audit trail",
    )
