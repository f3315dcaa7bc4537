"""`digest demo`: one unattended cycle on the bundled example, fully offline."""

from __future__ import annotations

import functools
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from digest.app import App
from digest.exceptions import DigestError
from digest.preview import write_preview
from digest.store import Store

DEMO_URL_ENV = "DIGEST_DEMO_URL"
# The example feeds are a snapshot of one morning; the demo runs as of that morning so that
# their stories are fresh whatever today's date is (DIGEST_NOW still wins).
DEMO_NOW = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
NETWORK_BACKENDS = frozenset({"smtp"})
# The slot-log row that marks a state file as the demo's own, so it may be replaced.
DEMO_MARK = "(demo state)"


def demo_state_path(configured: Path) -> Path:
    """The demo's own state file, beside the configured one and never the same file."""
    return configured.with_name(f"demo-{configured.name}")


def fresh_state(path: Path) -> None:
    """Delete the demo's previous state file, and only a file the demo itself made."""
    if path.exists():
        store = Store.open_readonly(path)
        try:
            ours = store.slot_status(DEMO_MARK) is not None
        finally:
            store.close()
        if not ours:
            raise DigestError(
                f"{path}: this state file was not made by `digest demo`, so the demo will not "
                "delete it; move it away or point state_path elsewhere"
            )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the demo's output to what the user needs."""


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(app: App, folder: Path, *, echo: Callable[[str], None]) -> None:
    with serve_folder(folder) as base:
        os.environ[DEMO_URL_ENV] = base
        echo(f"serving {folder} at {base} (the example sources)")
        settings = app.settings
        if not os.environ.get("DIGEST_NOW"):
            app.context.clock = lambda: DEMO_NOW
            echo(f"demo clock: {DEMO_NOW.isoformat()} (the morning of the example feeds)")
        if settings.backend.name in NETWORK_BACKENDS:
            raise DigestError(
                f"{settings.path}: the demo never sends real mail, but backend is "
                f"{settings.backend.name!r}; use the outbox backend"
            )
        if not settings.approval.auto_approve:
            raise DigestError(
                f"{settings.path}: the demo needs approval.auto_approve: true to run unattended"
            )
        if not os.environ.get(settings.secret_env):
            # Links in demo messages only need to look right, so a throwaway key will do.
            os.environ[settings.secret_env] = secrets.token_urlsafe(32)
            echo(f"{settings.secret_env} is not set: using a throwaway key for this demo")
        # A fresh state of its own each run, so the demo always has stories that were never
        # mailed, and never touches (or deletes) the newsroom's real state file.
        state = demo_state_path(settings.state_path)
        fresh_state(state)
        app.context.state_path = state
        app.store.log_slot(DEMO_MARK, status="demo", note="made by digest demo", now=app.now())
        echo(f"demo state: {state} (its own file; {settings.state_path} is not touched)")
        edition = app.editions.build()
    for warning in edition.warnings:
        echo(f"warning: {warning}")
    echo(
        f"built edition {edition.id}: {len(edition.stories)} stories, {edition.rendered.subject!r}"
    )
    echo("approved automatically: the example config sets approval.auto_approve: true")
    preview = write_preview(app, edition.id, email=None, out_dir=None)
    report = app.sending.send(edition.id, actor="demo")
    echo(report.summary())
    echo(f"preview: {preview.files['html']} (HTML), {preview.files['text']} (text)")
    outbox = settings.backend.options.get("path")
    if outbox:
        echo(f"delivered messages: {settings.path.resolve().parent / str(outbox)}")
