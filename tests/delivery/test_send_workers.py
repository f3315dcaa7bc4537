"""`digest send --workers N`: helpers start before the freeze and claim rows only after it."""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import select

from digest.store.tables import workers
from digest.testing.smtp import SMTPSink

from conftest import Project
from sending import approved, ledger, project, smtp, spawn
from sending import subscribers as _subscribers

__all__ = ["project"]


def _registered(project: Project) -> int:
    store = project.open_store()
    try:
        with store.reading() as conn:
            return len(conn.execute(select(workers.c.token)).all())
    finally:
        store.close()


def test_two_workers_mail_everyone_once(project: Project) -> None:
    emails = _subscribers(project, 300)
    with SMTPSink() as sink:
        project.write_config("smtp", smtp(sink), extra="send:\n  connections: 2\n")
        edition = approved(project)
        result = project.cli("send", str(edition), "--workers", "2")
        received = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert result.exit_code == 0, result.output
    assert received == Counter(emails)
    assert set(ledger(project, edition).values()) == {"sent"}
    assert _registered(project) == 0  # both workers retired


def test_a_send_that_cannot_start_ends_its_waiting_helpers(project: Project) -> None:
    _subscribers(project, 20)
    with SMTPSink() as sink:
        project.write_config("smtp", smtp(sink))
        built = project.cli("build", "--json")
        assert built.exit_code == 0, built.output
        draft = str(json.loads(built.stdout)["id"])
        # Not approved: the send refuses before freezing; the helper, already loading,
        # is told nothing and must exit instead of waiting for a go that never comes.
        proc = spawn(project, "send", draft, "--workers", "2")
        out, err = proc.communicate(timeout=120)
        assert sink.messages == []
    assert proc.returncode == 1, out + err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert ledger(project, int(draft)) == {}
    assert _registered(project) == 0
