"""`digest pause` / `digest resume` / `digest cancel`: a paused send delivers nothing more
than what was in flight when it paused, and the resume delivers every other reader once."""

from __future__ import annotations

import json
from collections import Counter

from digest.testing.smtp import SMTPSink

from conftest import Project, wait_for
from sending import approved, ledger, project, smtp, spawn
from sending import subscribers as _subscribers

__all__ = ["project"]

SLOW = "send:\n  connections: 2\n  rate_per_second: 20\n"


def _marked(project: Project, edition: int) -> int:
    """Rows ever handed to the wire: sent, or in flight right now."""
    return sum(1 for s in ledger(project, edition).values() if s in ("sent", "in_flight"))


def test_pause_is_exact_and_resume_sends_the_rest_once(project: Project) -> None:
    emails = _subscribers(project, 40)
    with SMTPSink() as sink:
        project.write_config("smtp", smtp(sink), extra=SLOW)
        edition = approved(project)
        proc = spawn(project, "send", str(edition))
        wait_for(lambda: len(sink.messages) >= 5, what="the send to start")
        paused = project.cli("pause", str(edition), "--by", "Rosa Diaz")
        assert paused.exit_code == 0, paused.output
        assert f"edition {edition} paused by Rosa Diaz" in paused.output
        # From the pause's commit on, no row is marked in flight: what was is all that goes.
        marked = _marked(project, edition)
        out, err = proc.communicate(timeout=60)  # the send ends: nothing is due while paused
        assert proc.returncode == 0, out + err
        assert "paused by Rosa Diaz" in out
        assert len(sink.messages) == marked < len(emails)
        assert Counter(ledger(project, edition).values())["sent"] == marked
        status = json.loads(project.cli("status", str(edition), "--json").stdout)
        assert status["state"] == "sending"

        again = project.cli("send", str(edition))  # a send while paused sends nothing
        assert again.exit_code == 0, again.output
        assert len(sink.messages) == marked

        resumed = project.cli("resume", str(edition), "--by", "Rosa Diaz")
        assert resumed.exit_code == 0, resumed.output
        received = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert received == Counter(emails)  # everyone, exactly once
    assert set(ledger(project, edition).values()) == {"sent"}
    trail = json.loads(project.cli("status", str(edition), "--json").stdout)["audit"]
    notes = [(a["by"], a["via"], a["note"]) for a in trail if a["note"]]
    assert ("Rosa Diaz", "cli", "resumed") in notes
    assert any(n.startswith("paused") and by == "Rosa Diaz" for by, _, n in notes)
    assert trail[-1]["to"] == "sent"


def test_pause_and_resume_refuse_what_they_cannot_do(project: Project) -> None:
    _subscribers(project, 3)
    edition = approved(project)
    for command in ("pause", "resume"):
        result = project.cli(command, str(edition), "--by", "Rosa")
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert "only a sending edition pauses" in project.cli("pause", str(edition), "--by", "R").output
    assert "is not paused" in project.cli("resume", str(edition), "--by", "R").output
    sent = project.cli("send", str(edition))
    assert sent.exit_code == 0, sent.output
    late = project.cli("cancel", str(edition), "--by", "Rosa")
    assert late.exit_code == 1
    assert "only an approved one cancels" in late.output


def test_cancel_before_the_first_message(project: Project) -> None:
    _subscribers(project, 3)
    with SMTPSink() as sink:
        project.write_config("smtp", smtp(sink))
        edition = approved(project)
        cancelled = project.cli("cancel", str(edition), "--by", "Rosa Diaz")
        assert cancelled.exit_code == 0, cancelled.output
        assert "cancelled by Rosa Diaz" in cancelled.output
        refused = project.cli("send", str(edition))
        assert refused.exit_code == 1
        assert "rejected" in refused.output
        assert sink.messages == []
    trail = json.loads(project.cli("status", str(edition), "--json").stdout)["audit"]
    assert (trail[-1]["by"], trail[-1]["to"], trail[-1]["note"]) == (
        "Rosa Diaz",
        "rejected",
        "cancelled before the first message",
    )
