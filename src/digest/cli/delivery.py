"""Commands for sending at scale: `digest worker`, `digest prune`, and `send --workers`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta

import click

from digest.app import App
from digest.cli.group import cli, log_format_option, log_lines, pass_app
from digest.cli.output import emit_json
from digest.cli.progress import send_with_progress, stop_on_sigterm
from digest.delivery.report import SendReport
from digest.models import EditionState
from digest.store.signups import SignupQueue
from digest.subscribers.signup import drain_line

IN_DOUBT_EXIT = 4
"""`digest send` did its work, but some deliveries are unknown: in doubt, not resent."""


@cli.command()
@click.option(
    "--edition",
    "edition_id",
    type=int,
    metavar="EDITION",
    help="Send only this edition; exit once nothing of it is left for this worker.",
)
@click.option("--once", is_flag=True, help="One pass over the editions being sent, then exit.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between looks for due deliveries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each pass's report as JSON.")
@click.option(
    "--wait-for-go",
    is_flag=True,
    hidden=True,
    help="For `send --workers`: start, then work only after a line on stdin (EOF: exit).",
)
@log_format_option
@pass_app
def worker(
    app: App,
    edition_id: int | None,
    once: bool,
    poll: float,
    as_json: bool,
    wait_for_go: bool,
    log_format: str,
) -> None:
    """Send every edition that is `sending`, claiming ledger rows; run any number, anywhere.

    Without --edition it also mails the confirmations the sign-up form queued.

    Runs until SIGTERM or SIGINT, which finish what is on the wire, give unsent rows back
    to the queue and exit 0.

    \b
    Examples:
      digest worker
      digest worker --edition 3 --json
    """
    log = log_lines(app, log_format, "worker")
    if wait_for_go and not sys.stdin.readline():
        return  # the send that started this helper ended before its recipients were frozen
    with stop_on_sigterm() as stop:
        try:
            while not stop.is_set():
                if edition_id is None and app.settings.signup.enabled:
                    _drain_signups(app, as_json)
                ids = [edition_id] if edition_id else app.store.editions_in(EditionState.SENDING)
                for i in ids:
                    report = app.sending.work(i, stop=stop, wait_for_retries=edition_id is not None)
                    if as_json:
                        click.echo(json.dumps(report.to_dict()))
                    elif report.sent or report.failed or report.deferred or report.interrupted:
                        log.event(report.summary(), edition=i, counts=counts(report))
                if once or edition_id is not None:
                    return
                stop.wait(poll)
        except KeyboardInterrupt:
            return


def _drain_signups(app: App, as_json: bool) -> None:
    """Mail the confirmations the sign-up form queued (when `digest serve` does not)."""
    if not SignupQueue(app.store).waiting():
        return
    line = drain_line(app.readers.pages().drain())
    if as_json:
        click.echo(json.dumps({"signups": line}))
    elif line:
        click.echo(line)


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: retention.deliveries_days).",
)
@click.option("--dry-run", is_flag=True, help="Only list the editions that would be pruned.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
@pass_app
def prune(app: App, days: int | None, dry_run: bool, as_json: bool) -> None:
    """Summarise old finished editions into counts, delete their ledger rows and variants,
    and give the space back to the filesystem.

    \b
    Examples:
      digest prune --dry-run
      digest prune --days 30
    """
    from digest.store.retention import Retention

    keep = days or app.settings.retention.deliveries_days
    now = app.now()
    done = Retention(app.store).prune(before=now - timedelta(days=keep), now=now, dry_run=dry_run)
    ids = ", ".join(str(i) for i in done.editions) or "none"
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "days": keep,
                "editions": list(done.editions),
                "rows": done.rows,
                "bytes_before": done.bytes_before,
                "bytes_after": done.bytes_after,
            }
        )
        return
    if dry_run:
        click.echo(f"would prune {len(done.editions)} edition(s) older than {keep} days: {ids}")
        return
    click.echo(
        f"pruned {len(done.editions)} edition(s) older than {keep} days ({ids}): "
        f"{done.rows} delivery rows; state {_mb(done.bytes_before)} -> {_mb(done.bytes_after)}"
    )


def counts(report: SendReport) -> dict[str, int]:
    """What a run did, for a log line's counts."""
    done = ("sent", "failed", "deferred", "skipped", "in_doubt", "unknown")
    return {name: int(getattr(report, name)) for name in done}


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def send_with_workers(app: App, edition_id: int, workers: int) -> SendReport:
    """`digest send --workers N`: this process and N-1 `digest worker --edition` processes
    claim the edition's rows; the reports are added up, and this process ends the edition."""
    # The helpers start now and load (imports, config: a second or more) while this
    # process freezes the recipient list; they claim rows only once told to go.
    command = [sys.executable, "-m", "digest", "--config", str(app.config_path)]
    if app.state_url:
        command += ["--state-url", app.state_url]
    command += ["worker", "--edition", str(edition_id), "--json", "--wait-for-go"]
    helpers = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
        )
        for _ in range(workers - 1)
    ]

    def start() -> None:
        for proc in helpers:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):  # a helper that died is simply not there
                proc.stdin.write("go\n")
                proc.stdin.flush()

    done = threading.Event()

    def forward() -> None:
        while not done.is_set():
            if stop.wait(0.2):
                for proc in helpers:
                    proc.terminate()  # they finish what is on the wire, give the rest back
                return

    with stop_on_sigterm() as stop:
        threading.Thread(target=forward, daemon=True).start()
        try:
            report = app.sending.send(edition_id, stop=stop, on_sending=start)
        finally:
            for proc in helpers:
                out, _ = proc.communicate()  # closes stdin: a helper never told to go exits
                for line in out.splitlines():
                    if line.startswith("{"):
                        report.add(_report(json.loads(line)))
            done.set()
        if helpers and not report.interrupted and not stop.is_set():
            # The helpers may have sent the last rows: this run ends the edition.
            final = app.sending.send(edition_id, stop=stop)
            report.add(final)
            report.state, report.totals, report.total = final.state, final.totals, final.total
            report.deferred = final.deferred
    return report


def _report(data: dict[str, object]) -> SendReport:
    report = SendReport(int(str(data["edition_id"])), EditionState(str(data["state"])))
    for name in ("sent", "failed", "deferred", "skipped", "in_doubt", "unknown"):
        setattr(report, name, int(str(data.get(name, 0))))
    report.interrupted = bool(data.get("interrupted"))
    return report


__all__ = ["prune", "send_with_progress", "send_with_workers", "worker"]
