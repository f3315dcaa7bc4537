"""The sign-up queue: the form's answer only adds a row; drains (serve, tick, worker) mail.

At least once and crash-safe: a claimed row comes back when its drain's lease runs out, a
deferred mail is tried again, a refused one is dropped. Real SMTP (the fault server), a real
SQLite file and PostgreSQL; only the clock is moved by hand.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from digest.app import App
from digest.backends import memory
from digest.store.signups import SignupQueue
from digest.subscribers.signup import LEASE, Readers
from digest.testing.faults import FaultServer

from conftest import SECRET, Clock, Project
from sending import smtp

SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
    """)
ENV = {"DIGEST_SECRET": SECRET}


def readers(project: Project, clock: Clock, backend: str = "memory", **options: object) -> Readers:
    project.write_config(backend, dict(options), extra=SIGNUP)
    return App(project.config, clock=clock, state_url=project.state_url or None).readers.pages(ENV)


def test_known_and_new_addresses_do_the_same_work_until_the_drain(
    project: Project, state_url: str
) -> None:
    project.state_url = state_url
    clock = Clock()
    r = readers(project, clock)
    assert project.cli("subscribers", "sync").exit_code == 0  # anna is active
    queue = SignupQueue(r.store)
    r.enqueue(email="anna@example.org", name="Anna", topics=[], ip="192.0.2.1")
    r.enqueue(email="new@example.com", name="", topics=["World"], ip="192.0.2.2")
    assert queue.waiting() == 2  # one row each, nothing looked up
    assert memory.outbox == []
    assert r.drain() == ["known", "mailed"]
    assert [e.recipient for e in memory.outbox] == ["new@example.com"]
    assert queue.waiting() == 0
    r.store.close()


def test_a_crashed_drains_rows_come_back_after_its_lease(project: Project, state_url: str) -> None:
    project.state_url = state_url
    clock = Clock()
    r = readers(project, clock)
    queue = SignupQueue(r.store)
    for i in range(3):
        r.enqueue(email=f"r{i}@example.com", name="", topics=[], ip="192.0.2.1")
    held = queue.claim(now=clock(), lease=LEASE)  # a drain that died holding these
    assert [h.email for h in held] == [f"r{i}@example.com" for i in range(3)]
    assert queue.claim(now=clock(), lease=LEASE) == []  # nobody else takes them meanwhile
    assert r.drain() == []
    assert memory.outbox == []
    clock.now += LEASE + timedelta(seconds=1)
    assert r.drain() == ["mailed"] * 3
    assert sorted(e.recipient for e in memory.outbox) == [f"r{i}@example.com" for i in range(3)]
    assert not queue.done(held[0])  # the dead drain's claim no longer owns anything
    assert queue.waiting() == 0
    r.store.close()


def test_deferred_mail_is_tried_again_and_refused_mail_is_dropped(project: Project) -> None:
    clock = Clock()
    with FaultServer(temp_rcpt=1.0) as busy:
        r = readers(project, clock, "smtp", **smtp(busy))
        r.enqueue(email="later@example.com", name="", topics=[], ip="192.0.2.1")
        assert r.drain() == ["failed"]  # 451: the row stays
        assert SignupQueue(r.store).waiting() == 1
        r.store.close()
    clock.now += LEASE + timedelta(seconds=1)
    with FaultServer(reject={"bad@example.com"}) as server:
        r = readers(project, clock, "smtp", **smtp(server))
        r.enqueue(email="bad@example.com", name="", topics=[], ip="192.0.2.1")
        assert r.drain() == ["mailed", "refused"]  # the 550 is not retried
        assert server.received("later@example.com") == 1
        assert SignupQueue(r.store).waiting() == 0
        r.store.close()


def test_an_unreachable_server_loses_no_sign_up(project: Project) -> None:
    clock = Clock()
    with FaultServer() as gone:
        port = gone.port  # a port nobody listens on once the server has stopped
    r = readers(project, clock, "smtp", host="127.0.0.1", port=port)
    r.enqueue(email="kept@example.com", name="", topics=[], ip="192.0.2.1")
    assert r.drain() == ["failed"]
    assert SignupQueue(r.store).waiting() == 1
    r.store.close()


def test_tick_and_worker_drain_the_queue(project: Project) -> None:
    clock = Clock()
    r = readers(project, clock)
    r.enqueue(email="tick@example.com", name="", topics=[], ip="192.0.2.1")
    result = project.cli("tick")
    assert result.exit_code == 0, result.output
    assert "sign-ups: 1 mailed" in result.output
    r.enqueue(email="worker@example.com", name="", topics=[], ip="192.0.2.1")
    result = project.cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "sign-ups: 1 mailed" in result.output
    assert [e.recipient for e in memory.outbox] == ["tick@example.com", "worker@example.com"]
    r.store.close()


@pytest.mark.parametrize("drains", [1, 2])
def test_concurrent_claims_take_each_row_once(project: Project, drains: int) -> None:
    clock = Clock()
    r = readers(project, clock)
    queue = SignupQueue(r.store)
    for i in range(10):
        r.enqueue(email=f"c{i}@example.com", name="", topics=[], ip="192.0.2.1")
    taken = [queue.claim(now=clock(), lease=LEASE, limit=6) for _ in range(drains)]
    ids = [item.id for batch in taken for item in batch]
    assert len(ids) == len(set(ids)) == min(10, 6 * drains)
    r.store.close()


def test_a_row_no_mail_can_be_made_for_is_dropped_not_retried(project: Project) -> None:
    clock = Clock()
    r = readers(project, clock)
    queue = SignupQueue(r.store)
    # Not through the form (it checks addresses): a row written by hand or by an older version.
    queue.add(email="x@example.com\r\nBcc: y@example.com", name="", topics=[], ip="", now=clock())
    r.enqueue(email="after@example.com", name="", topics=[], ip="192.0.2.1")
    assert r.drain() == ["unusable", "mailed"]
    assert [e.recipient for e in memory.outbox] == ["after@example.com"]
    assert queue.waiting() == 0
    r.store.close()
