"""A dead, tarpitting or slow SMTP server against `digest send` (issue 32 item 4): the
per-host circuit breaker, the whole-exchange deadline per message, and
``send.retry_in_run_seconds`` ending the run, with a `stopped` notice naming the host."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes, policy

from digest.backends import memory
from digest.testing.faults import FaultServer

from conftest import Project
from sending import approved, ledger, project, rows, smtp
from sending import subscribers as _subscribers

__all__ = ["project"]  # the fixture: the shared project on both databases

OPS = "ops@news.example.org"
# Notices go through a second backend: the mail backend is the thing that is down.
NOTICES = f"notices:\n  to: [{OPS}]\n  backend:\n    name: memory\n"


def _send_settings(*, failures: int = 3, window: float = 30, connections: int = 2) -> str:
    return (
        f"send:\n  connections: {connections}\n  host_failures: {failures}\n"
        f"  retry_base_seconds: 0.01\n  retry_max_seconds: 0.05\n"
        f"  retry_in_run_seconds: {window}\n" + NOTICES
    )


def _stopped_notices() -> list[str]:
    found = []
    for envelope in memory.outbox:
        msg = message_from_bytes(envelope.data, policy=policy.default)
        if msg["X-Digest-Notice"] == "stopped":
            assert envelope.recipient == OPS
            found.append(str(msg.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    return found


def test_a_tarpit_banner_opens_the_breaker_and_ends_the_run(project: Project) -> None:
    emails = _subscribers(project, 30)
    with FaultServer(trickle=0.5) as server:
        config = {**smtp(server), "timeout": 1}
        project.write_config("smtp", config, extra=_send_settings())
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output  # deferrals, as for any dead server
        host = f"smtp 127.0.0.1:{server.port}"
        assert f"stopped: {host} timed out or refused the connection" in result.output
        assert "run `digest send" in result.output
        # Only the few tries that opened the breaker reached the server: the rest waited.
        assert server.connections <= 6
    assert set(ledger(project, edition).values()) == {"deferred"}
    errors = [str(r["last_error"]) for r in rows(project, edition).values()]
    untried = [e for e in errors if e.startswith("not tried: ")]
    assert len(untried) >= len(emails) - 6
    (notice,) = _stopped_notices()
    assert f"Why: {host} timed out or refused the connection" in notice
    assert f"digest send {edition}" in notice


def test_a_server_silent_after_five_messages_ends_the_run(project: Project) -> None:
    _subscribers(project, 40)
    with FaultServer(silent_after=5) as server:
        config = {**smtp(server), "timeout": 1}
        project.write_config("smtp", config, extra=_send_settings())
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        assert len(server.messages) == 5
    states = Counter(ledger(project, edition).values())
    # A message taken ahead on a connection that then timed out was never tried: pending.
    assert states["sent"] == 5
    assert states["deferred"] >= 30
    assert set(states) <= {"sent", "deferred", "pending"}
    (notice,) = _stopped_notices()
    assert f"smtp 127.0.0.1:{server.port} timed out" in notice
    # The next run, with the server back, sends the rest and nobody twice.
    with FaultServer() as back:
        project.write_config("smtp", {**smtp(back), "timeout": 1}, extra=_send_settings())
        later = {"DIGEST_NOW": "2026-11-24T07:00:00+00:00"}
        assert project.cli("send", str(edition), env=later).exit_code == 0
        readers = [m.rcpt for m in back.messages if m.rcpt != OPS]  # the sent notice too
        assert len(readers) == 35
        assert not set(readers) & {m.rcpt for m in server.messages}
    assert Counter(ledger(project, edition).values()) == {"sent": 40}


def test_retry_in_run_seconds_ends_a_run_whose_host_keeps_failing(project: Project) -> None:
    _subscribers(project, 12)
    with FaultServer(trickle=0.5) as server:
        config = {**smtp(server), "timeout": 0.5, "max_messages_per_connection": 1}
        # The breaker is out of reach: only the run's retry window can end it.
        extra = _send_settings(failures=1000, window=1, connections=1)
        project.write_config("smtp", config, extra=extra)
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        host = f"smtp 127.0.0.1:{server.port}"
        assert f"stopped: {host} was still failing after send.retry_in_run_seconds" in result.output
    states = ledger(project, edition)
    assert set(states.values()) == {"deferred"}
    untried = [
        e for e in rows(project, edition).values() if str(e["last_error"]).startswith("not tried")
    ]
    assert untried  # not every row waited out its own timeout
    (notice,) = _stopped_notices()
    assert "send.retry_in_run_seconds (1 s)" in notice


def test_a_message_exchange_has_one_deadline_not_one_per_phase(project: Project) -> None:
    _subscribers(project, 2)
    # Each reply comes 0.3 s late: every phase is within the 1 s timeout (the pipelined
    # MAIL, RCPT and DATA take 0.9 s), but a message that needs a new connection (banner,
    # EHLO, then those) takes 1.5 s in all: past the timeout for its whole exchange.
    with FaultServer(pause=0.3) as server:
        config = {**smtp(server), "timeout": 1, "max_messages_per_connection": 1}
        project.write_config("smtp", config, extra=_send_settings(window=0, connections=1))
        edition = approved(project)
        assert project.cli("send", str(edition)).exit_code == 0
        # The first went out on the connection opened before the run's first message.
        readers = [m.rcpt for m in server.messages if m.rcpt != OPS]  # the notice too
        assert readers == ["reader00000@example.org"]
    second = rows(project, edition)["reader00001@example.org"]
    assert second["state"] == "deferred"
    assert "timed out" in str(second["last_error"])
    assert "before the message" in str(second["last_error"])


def test_a_worker_that_stops_on_a_dead_server_tells_the_editors(project: Project) -> None:
    _subscribers(project, 12)
    with FaultServer(temp_rcpt=1.0) as busy:  # every reader deferred: the edition stays sending
        extra = _send_settings(failures=1000, window=0.3, connections=1)
        project.write_config("smtp", smtp(busy), extra=extra)
        edition = approved(project)
        assert project.cli("send", str(edition)).exit_code == 0
    assert _stopped_notices() == []  # deferrals to retry later: nothing has stopped
    assert set(ledger(project, edition).values()) == {"deferred"}
    with FaultServer(trickle=0.5) as tarpit:  # then the server dies while a worker sends
        config = {**smtp(tarpit), "timeout": 1}
        project.write_config("smtp", config, extra=_send_settings())
        result = project.cli("worker", "--edition", str(edition))
        assert result.exit_code == 0, result.output
    (notice,) = _stopped_notices()  # the worker's, once
    host = f"smtp 127.0.0.1:{tarpit.port}"
    assert f"Why: {host} timed out or refused the connection" in notice
    assert f"digest send {edition}" in notice
