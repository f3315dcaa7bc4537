"""Storage failures are one line naming the file and the cause; nothing goes out unrecorded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from sqlalchemy import event

from digest.app import App
from digest.exceptions import StoreError
from digest.testing.smtp import SMTPSink

from conftest import NOW, SECRET, Project
from sending import approved, ledger, smtp
from sending import subscribers as _subscribers


def test_a_full_disk_mid_send_stops_with_one_line_and_loses_no_record(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribers(project, 400)
    with SMTPSink() as sink:
        project.write_config("smtp", smtp(sink), extra="send:\n  connections: 2\n")
        edition = approved(project)
        monkeypatch.setenv("DIGEST_SECRET", SECRET)
        monkeypatch.setenv("DIGEST_NOW", NOW)
        app = App(project.config)
        engine = app.store.engine

        def fill_the_disk() -> None:
            # From now on the file may hardly grow: SQLite answers "database or disk is full"
            # exactly as on a full disk.
            pages = engine.raw_connection()
            try:
                count = pages.driver_connection.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
            finally:
                pages.close()

            def limit(dbapi: Any, _record: Any) -> None:
                dbapi.execute(f"PRAGMA max_page_count = {count + 3}")

            event.listen(engine, "connect", limit)
            engine.dispose()

        with pytest.raises(StoreError) as info:
            app.sending.send(edition, on_sending=fill_the_disk, stop=threading.Event())
        app.close()
        message = str(info.value)
        assert "\n" not in message
        assert str(project.state) in message
        assert "the disk is full" in message
        received = {m.rcpt_tos[0] for m in sink.messages}
    states = ledger(project, edition)
    assert received, "the disk filled up before anything was sent; the test proved nothing"
    # Every message the server got is recorded as sent, or in flight (in doubt) at worst.
    assert all(states[r] in ("sent", "in_flight") for r in received)
    assert {e for e, s in states.items() if s == "sent"} <= received


def _read_only(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """Run digest while the state file cannot be written: immutable (chattr +i, which even
    root cannot write through) when we are root, else without its write bits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=NOW)
    command = [sys.executable, "-m", "digest", "--config", str(project.config), *args]
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(project.state)], check=True)
    else:
        project.state.chmod(0o444)
        project.state.parent.chmod(0o555)
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(project.state)], check=True)
        else:
            project.state.parent.chmod(0o755)
            project.state.chmod(0o644)


def test_a_read_only_state_file_can_be_read_but_not_written(project: Project) -> None:
    _subscribers(project, 2)
    edition = approved(project)
    # The WAL must be checkpointed into the file before it is copied or made read-only.
    store = project.open_store()
    store.close()
    status = _read_only(project, "status", str(edition), "--json")
    assert status.returncode == 0, status.stderr
    assert '"state": "approved"' in status.stdout
    send = _read_only(project, "send", str(edition))
    assert send.returncode == 1
    lines = [x for x in send.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, send.stderr
    assert "read-only" in lines[0]
    assert "Traceback" not in send.stderr
