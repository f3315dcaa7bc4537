"""Commands about readers: `digest subscribers ...` and `digest archive export DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.app import App
from digest.cli.group import cli, pass_app
from digest.exceptions import DigestError
from digest.models import SubscriberState

STATES = ["all", *(s.value for s in SubscriberState)]


@cli.group()
def subscribers() -> None:
    """The readers' list in the state database: list, add, remove, import, export, GDPR.

    Example: digest subscribers list --state all
    """


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (streamed).")
@click.option(
    "--state",
    "state",
    type=click.Choice(STATES),
    default="active",
    show_default=True,
    help="Only subscribers in this state (all: every one).",
)
@pass_app
def list_(app: App, as_json: bool, state: str) -> None:
    """List subscribers by address: by default those who get the next edition's mail.

    Example: digest subscribers list --json
    """
    from digest.store.subscribers import SubscriberStore

    states = [] if state == "all" else [SubscriberState(state)]
    if state == "active":
        states.append(SubscriberState.PAUSED)  # paused readers are still on the list
    records = SubscriberStore(app.store).listing(states)
    if as_json:
        click.echo("[", nl=False)
        for i, record in enumerate(records):
            click.echo(
                ("," if i else "") + "\n" + json.dumps(record.to_dict(), ensure_ascii=False),
                nl=False,
            )
        click.echo("\n]")
        return
    count = 0
    for record in records:
        count += 1
        topics = ", ".join(record.topics) or "every section"
        click.echo(f"{record.email}  {record.state}  {topics}  {record.name}".rstrip())
    click.echo(f"{count} subscriber(s)", err=True)


@subscribers.command()
@click.argument("email")
@click.option("--name", default=None, help="The reader's name (for the greeting).")
@click.option("--topic", "topics", multiple=True, help="A section they want (repeat it).")
@click.option("--timezone", default=None, help="Their IANA time zone (per-zone delivery).")
@pass_app
def add(
    app: App, email: str, name: str | None, topics: tuple[str, ...], timezone: str | None
) -> None:
    """Subscribe EMAIL (or update them). Never someone who unsubscribed, bounced or was
    erased: only they can come back, through the sign-up form.

    Example: digest subscribers add anna@example.org --name Anna --topic Science
    """
    from digest.subscribers.manage import add as add_one

    record = add_one(
        app.store, email, name=name, topics=topics or None, timezone=timezone, now=app.now()
    )
    click.echo(f"{record.email}: {record.state}, topics {', '.join(record.topics) or 'all'}")
    if app.settings.sync_mode == "mirror":
        click.echo(
            f"note: subscribers_sync is mirror, so the next sync removes addresses that "
            f"are not in {app.settings.subscribers_path}",
            err=True,
        )


@subscribers.command()
@click.argument("email")
@pass_app
def remove(app: App, email: str) -> None:
    """Unsubscribe EMAIL on their behalf (suppressed: no sync adds them again).

    Example: digest subscribers remove anna@example.org
    """
    from digest.subscribers.manage import remove as remove_one

    record = remove_one(app.store, email, now=app.now())
    click.echo(f"{record.email}: {record.state}")


def _report(report: object, as_json: bool) -> None:
    from digest.subscribers.sync import SyncReport

    assert isinstance(report, SyncReport)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(report.summary())


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Count what would change; keep nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def import_(app: App, file: Path, dry_run: bool, as_json: bool) -> None:
    """Add and update the subscribers of a YAML or CSV file (streamed; a bad entry imports
    nothing and names its line). Opted-out and erased addresses are left alone.

    Example: digest subscribers import readers.csv --dry-run
    """
    from digest.subscribers.sync import import_file

    _report(import_file(app.store, file, now=app.now(), dry_run=dry_run), as_json)
    if app.settings.sync_mode == "mirror" and not dry_run:
        note = "set subscribers_sync: add to keep them"
        click.echo(
            "note: subscribers_sync is mirror, so the next sync removes addresses that "
            f"are not in the subscriber file; {note}",
            err=True,
        )


@subscribers.command()
@click.option("--json", "fmt", flag_value="json", help="Every subscriber, with state (JSON).")
@click.option(
    "--csv",
    "fmt",
    flag_value="csv",
    default=True,
    help="The readers who get editions, as a subscriber file (default).",
)
@pass_app
def export(app: App, fmt: str) -> None:
    """Write the list to standard output (streamed).

    Example: digest subscribers export --csv > readers.csv
    """
    from digest.subscribers.manage import export as export_all

    for chunk in export_all(app.store, as_json=fmt == "json"):
        click.echo(chunk, nl=False)


@subscribers.command()
@click.argument("email")
@pass_app
def show(app: App, email: str) -> None:
    """Print everything held about EMAIL as JSON (a GDPR access request).

    Example: digest subscribers show anna@example.org
    """
    from digest.subscribers.manage import show as show_one

    click.echo(json.dumps(show_one(app.store, email), indent=2, ensure_ascii=False))


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def erase(app: App, email: str, yes: bool) -> None:
    """Delete every personal datum about EMAIL (GDPR erasure); keep only a hash of the
    address, so nothing ever mails it again.

    Example: digest subscribers erase anna@example.org --yes
    """
    from digest.subscribers.manage import erase as erase_one

    if not yes:
        click.confirm(f"Erase everything about {email}? This cannot be undone", abort=True)
    counts, line = erase_one(
        app.store, email, now=app.now(), subscriber_file=app.settings.subscribers_path
    )
    done = ", ".join(f"{table} {n}" for table, n in counts.items() if n) or "nothing was held"
    click.echo(f"{email.strip()}: erased ({done}); its hash stays on the suppression list")
    if line is not None:
        raise DigestError(
            f"{app.settings.subscribers_path}:{line}: {email.strip()} is still "
            "listed in the subscriber file; remove that entry"
        )


@subscribers.command()
@click.option("--dry-run", is_flag=True, help="Count what would change; keep nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def sync(app: App, dry_run: bool, as_json: bool) -> None:
    """Synchronise the subscriber file into the state database now (subscribers_sync).

    Example: digest subscribers sync --dry-run
    """
    _report(app.readers.sync(force=True, dry_run=dry_run), as_json)


@cli.group()
def archive() -> None:
    """The web archive of sent editions.

    Example: digest archive export site/archive
    """


@archive.command("export")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@pass_app
def archive_export(app: App, folder: Path) -> None:
    """Write the archive (index, one page per edition, Atom feed) as static files into DIR.

    Example: digest archive export site/archive
    """
    import jinja2

    from digest.web.archive import Archive, export

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("digest.web", "templates"), autoescape=True
    )
    count = export(Archive(env, app.settings, app.store), folder)
    click.echo(f"{folder}: {count} edition(s), index.html and feed.xml written")
    if not app.settings.archive.public:
        click.echo(
            "note: archive.public is false, but these files are readable by anyone "
            "who can reach where you put them",
            err=True,
        )
