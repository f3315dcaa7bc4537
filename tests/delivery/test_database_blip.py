"""A send rides out a PostgreSQL restart and a short stop, and ends in one line after a long one.

Each test has a cluster of its own (restarting the session's would break the other tests),
a real `digest send` in a subprocess, and the SMTP sink's log as the judge of who got what.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from digest.testing.postgres import PostgresCluster
from digest.testing.smtp import SMTPSink

from conftest import Project, wait_for
from sending import approved, ledger, smtp, spawn
from sending import subscribers as _subscribers

READERS = 2000
CONNECTIONS = 4
GONE = "the database went away"
BACK = "the database is back"


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as pg:
        yield pg


@pytest.fixture
def blip_project(project: Project, cluster: PostgresCluster) -> Project:
    project.state_url = cluster.create_database()
    return project


def _start(project: Project, sink: SMTPSink, retry: float) -> tuple[list[str], int]:
    emails = _subscribers(project, READERS)
    extra = f"send:\n  connections: {CONNECTIONS}\n  db_retry_seconds: {retry}\n"
    project.write_config("smtp", smtp(sink), extra=extra)
    return emails, approved(project)


def _midway(sink: SMTPSink, proc: subprocess.Popen[str]) -> None:
    wait_for(
        lambda: len(sink.messages) >= READERS // 5 or proc.poll() is not None,
        timeout=120,
        what="the send to be under way",
    )
    assert proc.poll() is None, "the send ended before the database went away"


def _everyone_once(project: Project, sink: SMTPSink, emails: list[str], edition: int) -> None:
    received = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert set(received) == set(emails)  # nobody lost
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= CONNECTIONS  # at most what was on the wire
    assert set(ledger(project, edition).values()) == {"sent"}


@pytest.mark.slow
def test_send_rides_out_a_restart(blip_project: Project, cluster: PostgresCluster) -> None:
    with SMTPSink() as sink:
        emails, edition = _start(blip_project, sink, retry=60)
        proc = spawn(blip_project, "send", str(edition))
        _midway(sink, proc)
        cluster.restart()  # pg_ctl restart -m fast: every session of the send is ended
        assert proc.poll() is None  # it was mid-send
        assert len(sink.messages) < READERS
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        _everyone_once(blip_project, sink, emails, edition)
    assert "Traceback" not in err
    # A restart this quick is often over before the sender's next statement: then its kept
    # connections are replaced silently. If one did find it away, one line each way.
    assert err.count(GONE) == err.count(BACK) <= 1, err


@pytest.mark.slow
def test_send_rides_out_a_stop_of_a_few_seconds(
    blip_project: Project, cluster: PostgresCluster
) -> None:
    with SMTPSink() as sink:
        emails, edition = _start(blip_project, sink, retry=30)
        proc = spawn(blip_project, "send", str(edition))
        _midway(sink, proc)
        cluster.halt()
        before = len(sink.messages)
        time.sleep(3)  # longer than one retry's wait, shorter than db_retry_seconds
        sent_while_down = len(sink.messages) - before
        cluster.resume()
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        _everyone_once(blip_project, sink, emails, edition)
    # While it was away only rows already marked in flight went out (at most the worker's
    # window, 32 per connection): nothing is sent that the ledger has not recorded first.
    assert sent_while_down <= 32 * CONNECTIONS
    assert "Traceback" not in err
    assert err.count(GONE) == 1, err
    assert err.count(BACK) == 1, err


@pytest.mark.slow
def test_a_database_gone_too_long_ends_in_one_line_and_a_later_send_finishes(
    blip_project: Project, cluster: PostgresCluster
) -> None:
    with SMTPSink() as sink:
        emails, edition = _start(blip_project, sink, retry=2)
        proc = spawn(blip_project, "send", str(edition))
        _midway(sink, proc)
        cluster.halt()
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            cluster.resume()
        assert proc.returncode == 1, out + err
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 2, err  # the warning when it went, the error that ends the run
        assert GONE in lines[0]
        assert "unreachable for more than 2 s (send.db_retry_seconds)" in lines[1]
        assert f"run `digest send {edition}` again" in lines[1]
        assert len(sink.messages) < READERS
        again = blip_project.cli("send", str(edition))
        assert again.exit_code == 0, again.output
        _everyone_once(blip_project, sink, emails, edition)
