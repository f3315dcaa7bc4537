"""Senders that are killed, stopped, raced and throttled, with the server's log as the judge."""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections import Counter

import pytest
from sqlalchemy import select

from digest.store.tables import deliveries, locks, workers
from digest.testing.faults import FaultServer
from digest.testing.smtp import SMTPSink

from conftest import Project, wait_for
from sending import approved, busiest, ledger, message_id, project, smtp, spawn
from sending import subscribers as _subscribers

__all__ = ["project"]

YESTERDAY = "2026-11-23T06:00:00+00:00"  # another slot: a second one for NOW's would supersede


def test_second_sender_is_refused_and_sigterm_stops_cleanly(project: Project) -> None:
    _subscribers(project, 60)
    with FaultServer(delay=0.05) as server:
        project.write_config("smtp", smtp(server), extra="send:\n  connections: 2\n")
        edition = approved(project)
        first = spawn(project, "send", str(edition))
        wait_for(lambda: len(server.messages) >= 3, what="the first sender to start")
        second = project.cli("send", str(edition))
        assert second.exit_code == 1
        assert "held by process" in second.output
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 1, out + err
        assert "interrupted" in err
        states = ledger(project, edition)
        assert "in_flight" not in states.values()
        sent = {e for e, s in states.items() if s == "sent"}
        assert sent == {m.rcpt for m in server.messages}
        assert 0 < len(sent) < 60
        # Resuming finishes the rest, and nobody gets it twice.
        assert project.cli("send", str(edition)).exit_code == 0
        assert sorted(Counter(m.rcpt for m in server.messages).values()) == [1] * 60


@pytest.mark.slow
def test_sigterm_while_throttled_sends_nothing_more_and_returns_the_rows(project: Project) -> None:
    _subscribers(project, 20)
    with FaultServer() as server:
        # 5 per hour: after five messages every worker waits for the window.
        extra = "send:\n  connections: 4\n  window_messages: 5\n  window_seconds: 3600\n"
        project.write_config("smtp", smtp(server), extra=extra)
        edition = approved(project)
        proc = spawn(project, "send", str(edition))
        wait_for(lambda: len(server.messages) >= 5, what="the window to fill")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, out + err
        assert "run `digest send" in err
        assert len(server.messages) == 5
    states = ledger(project, edition)
    assert Counter(states.values()) == {"sent": 5, "pending": 15}


@pytest.mark.slow
def test_sigterm_during_the_retry_wait_exits_1(project: Project) -> None:
    emails = _subscribers(project, 2)
    with SMTPSink(reject={emails[0]: 451}) as sink:
        extra = (
            "send:\n  retry_base_seconds: 60\n  retry_max_seconds: 60\n"
            "  retry_in_run_seconds: 600\n"
        )
        project.write_config("smtp", smtp(sink), extra=extra)
        edition = approved(project)
        proc = spawn(project, "send", str(edition))
        wait_for(
            lambda: ledger(project, edition).get(emails[0]) == "deferred", what="the first refusal"
        )
        wait_for(lambda: len(sink.messages) == 1, what="the other message")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, out + err
        assert "interrupted" in err


@pytest.mark.slow
def test_throttle_holds_across_a_kill_a_resume_and_two_editions(project: Project) -> None:
    _subscribers(project, 24)
    limit, seconds = 8, 2.0
    with FaultServer() as server:
        extra = (
            f"send:\n  connections: 4\n  window_messages: {limit}\n  window_seconds: {seconds}\n"
        )
        project.write_config("smtp", smtp(server), extra=extra)
        first = approved(project, now=YESTERDAY)
        second = approved(project)
        proc = spawn(project, "send", str(first))
        wait_for(lambda: len(server.messages) >= 6, what="the first sender to send")
        proc.kill()
        proc.communicate()
        # The resumed run and another edition's run share the window with the dead one's.
        both = [spawn(project, "send", str(first)), spawn(project, "send", str(second))]
        for p in both:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, out + err
        times = [m.at for m in server.messages]
    assert len(times) >= 48  # both editions, everyone (a kill may add a duplicate)
    assert busiest(times, seconds) <= limit


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["resend", "skip"])
def test_killed_sender_resumes_without_losing_anyone(project: Project, policy: str) -> None:
    emails = _subscribers(project, 2000)
    # In doubt after a kill: the messages on its connections (sent and pipelined behind it,
    # two per connection); the rest of its batch in flight is settled by its journal.
    wire = 2 * 4
    rng = random.Random(policy)
    with SMTPSink() as sink:
        project.write_config(
            "smtp", smtp(sink), extra=f"send:\n  connections: 4\n  in_doubt: {policy}\n"
        )
        edition = approved(project)
        in_flight_at_kills: list[set[str]] = []
        while True:
            proc = spawn(project, "send", str(edition))
            if len(in_flight_at_kills) < 3:
                # Kill at a seeded random point of the send, reached by a condition (the
                # server has seen that many more messages), not by a wall-clock guess.
                target = len(sink.messages) + rng.randint(20, 300)
                wait_for(
                    lambda t=target, p=proc: len(sink.messages) >= t or p.poll() is not None,
                    what="the sender to reach its kill point",
                )
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
                    in_flight_at_kills.append(
                        {e for e, s in ledger(project, edition).items() if s == "in_flight"}
                    )
                    continue
            out, err = proc.communicate(timeout=180)
            assert proc.returncode in (0, 4), out + err
            break
        received = Counter(r for m in sink.messages for r in m.rcpt_tos)
        ids = _message_ids(sink)
    assert len(in_flight_at_kills) == 3
    assert any(in_flight_at_kills), "no kill caught a delivery in flight; the test proved nothing"
    states = ledger(project, edition)
    doubtful = set().union(*in_flight_at_kills)
    twice = {e for e, n in received.items() if n > 1}
    # Each kill can add one copy, and only for a row it caught in flight (a row resent
    # after one kill can be in flight again at the next).
    assert all(n <= 1 + sum(e in kill for kill in in_flight_at_kills) for e, n in received.items())
    assert twice <= doubtful
    assert all(len(v) == 1 for v in ids.values())  # a resend carries the same Message-ID
    assert sum(n - 1 for n in received.values()) <= 3 * wire
    sent = {e for e, s in states.items() if s == "sent"}
    if policy == "resend":
        assert set(received) == set(emails)
        assert sent == set(emails)
    else:
        assert twice == set()
        unknown = {e for e, s in states.items() if s == "unknown"}
        assert unknown <= doubtful
        assert len(unknown) <= 3 * wire < len(doubtful)  # the rest of the batches was settled
        assert sent <= set(received) <= sent | unknown
        assert set(emails) == sent | unknown


def _message_ids(sink: SMTPSink) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for m in sink.messages:
        for r in m.rcpt_tos:
            ids.setdefault(r, set()).add(message_id(m.data))
    return ids


@pytest.mark.slow
def test_a_second_sender_never_sends_while_the_first_lives(project: Project) -> None:
    _subscribers(project, 12)
    with FaultServer() as server:
        # The first sender waits for the window far longer than the lease's 2 s life.
        extra = (
            "send:\n  connections: 2\n  window_messages: 4\n  window_seconds: 6\n"
            "  lock_ttl_seconds: 2\n"
        )
        project.write_config("smtp", smtp(server), extra=extra)
        edition = approved(project)
        first = spawn(project, "send", str(edition))
        wait_for(lambda: len(server.messages) >= 4, what="the window to fill")
        wait_for(lambda: _lease_renewed(project, edition), what="a renewal while throttled")
        second = project.cli("send", str(edition))
        assert second.exit_code == 1, second.output
        assert "held by process" in second.output
        # A worker joins: it may share the rows, but never a row, nor the window.
        helper = spawn(project, "worker", "--edition", str(edition), "--json")
        for p in (first, helper):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, out + err
        counts = Counter(m.rcpt for m in server.messages)
        times = [m.at for m in server.messages]
    assert sorted(counts.values()) == [1] * 12
    assert busiest(times, 6.0) <= 4


def _lease_renewed(project: Project, edition: int) -> bool:
    from datetime import UTC, datetime, timedelta

    store = project.open_store()
    try:
        with store.reading() as conn:
            row = conn.execute(
                select(locks.c.expires_at).where(locks.c.name == f"send edition {edition}")
            ).first()
    finally:
        store.close()
    if row is None:
        return False
    # Renewed at least once by now: it runs past the first acquisition's 2 s.
    return bool(row[0] > datetime.now(UTC) + timedelta(seconds=1.2))


KILLS = 20
CONNECTIONS = 4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("state_url", "policy"),
    # Each database and each policy once (the four pairs cost ten minutes of the suite; the
    # journal and the settling are the same code on both databases).
    [("sqlite", "resend"), ("postgresql", "skip")],
    indirect=["state_url"],
)
def test_three_workers_survive_twenty_kills(project: Project, policy: str) -> None:
    """The crash test: `send --workers 3`, one worker SIGKILLed at 20 random moments of a
    10,000-message send to an SMTP server that records every message before its 250.

    A kill leaves a batch in flight; the killed worker's journal settles all of it but the
    messages on its connections (two per connection), so duplicates stay within KILLS x
    connections, each one a row that was in flight at a kill, and with `skip` every
    `unknown` reader is a row handed to a connection."""
    emails = _subscribers(project, 10_000, csv=True)
    rng = random.Random(f"{KILLS}-{policy}")
    with SMTPSink() as sink:
        extra = f"send:\n  connections: {CONNECTIONS}\n  in_doubt: {policy}\n"
        project.write_config("smtp", smtp(sink), extra=extra)
        project.config.write_text(
            project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
        )
        edition = approved(project)
        # Freeze and start: `send` with three workers, then kill among them at random.
        coordinator = spawn(project, "send", str(edition), "--workers", "3")
        doubtful: set[str] = set()
        caught: list[int] = []  # rows in flight at each kill
        kills = 0
        replacements: list[subprocess.Popen[str]] = []
        while kills < KILLS:
            target = len(sink.messages) + rng.randint(50, 350)
            wait_for(
                lambda t=target: len(sink.messages) >= t or coordinator.poll() is not None,
                timeout=300,
                what="the next kill point",
            )
            victims = [p for p in _worker_pids(project) if p != coordinator.pid]
            if coordinator.poll() is not None:
                break
            if not victims:  # the helpers have not registered yet (a busy machine)
                wait_for(
                    lambda: (
                        bool([p for p in _worker_pids(project) if p != coordinator.pid])
                        or coordinator.poll() is not None
                    ),
                    what="a worker to kill",
                )
                continue
            pid = rng.choice(victims)
            token = _token_of(project, pid)
            try:
                _kill(pid)
            except ProcessLookupError:
                continue
            # A dead worker's rows stay in flight under its token until a worker that
            # starts later reaps it: read after the kill, they are exactly its doubt.
            left = _in_flight_of(project, edition, token)
            caught.append(len(left))
            doubtful |= left
            kills += 1
            replacements.append(spawn(project, "worker", "--edition", str(edition), "--json"))
        out, err = coordinator.communicate(timeout=600)
        for p in replacements:
            p.communicate(timeout=300)
        final = project.cli("send", str(edition))  # ends it, resending what died in flight
        assert final.exit_code in (0, 4), final.output
        received = Counter(r for m in sink.messages for r in m.rcpt_tos)
        ids = _message_ids(sink)
    assert kills == KILLS, (kills, out, err)
    assert max(caught) > 2 * CONNECTIONS, caught  # a kill caught more than the wire's rows
    twice = {e for e, n in received.items() if n > 1}
    assert twice <= doubtful
    assert sum(n - 1 for n in received.values()) <= KILLS * CONNECTIONS
    assert all(len(v) == 1 for v in ids.values())  # one Message-ID per recipient
    states = ledger(project, edition)
    status = json.loads(project.cli("status", str(edition), "--json").stdout)
    assert status["state"] == "sent"
    if policy == "resend":
        assert set(received) == set(emails)  # nobody lost
        assert set(states.values()) == {"sent"}
        assert status["unknown_readers"] == []
    else:
        unknown = {e for e, s in states.items() if s == "unknown"}
        assert unknown <= doubtful  # only rows that may have reached the server
        assert len(unknown) <= KILLS * 2 * CONNECTIONS
        assert twice == set()
        sent = {e for e, s in states.items() if s == "sent"}
        assert sent | unknown == set(emails)  # nobody lost: sent, or named as unknown
        assert sent <= set(received) <= sent | unknown
        assert status["unknown_readers"] == sorted(unknown)


def _token_of(project: Project, pid: int) -> str:
    store = project.open_store()
    try:
        with store.reading() as conn:
            found = conn.execute(select(workers.c.token).where(workers.c.pid == pid)).scalar()
            return str(found)
    finally:
        store.close()


def _in_flight_of(project: Project, edition: int, token: str) -> set[str]:
    store = project.open_store()
    try:
        with store.reading() as conn:
            found = conn.execute(
                select(deliveries.c.email)
                .where(deliveries.c.edition_id == edition)
                .where(deliveries.c.state == "in_flight")
                .where(deliveries.c.claim == token)
            )
            return {str(r[0]) for r in found}
    finally:
        store.close()


def _worker_pids(project: Project) -> list[int]:
    store = project.open_store()
    try:
        with store.reading() as conn:
            return [int(r[0]) for r in conn.exec_driver_sql("SELECT pid FROM workers")]
    finally:
        store.close()


def _kill(pid: int) -> None:
    import os

    os.kill(pid, signal.SIGKILL)
