"""SMTP send_each: each message's commands ride behind the data of the one before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from digest.backends.base import Envelope
from digest.backends.discard import DiscardBackend
from digest.backends.smtp import SMTPBackend
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure
from digest.testing.contract import envelope
from digest.testing.faults import FaultServer


def _backend(server: FaultServer, **extra: object) -> SMTPBackend:
    return SMTPBackend(
        host=server.host, port=server.port, local_hostname="client.localhost", timeout=5, **extra
    )


def _recipients(n: int) -> list[str]:
    return [f"reader{i}@example.org" for i in range(n)]


class _Taken:
    """The envelopes, handed out one by one; counts how many the backend took."""

    def __init__(self, rcpts: list[str]) -> None:
        # Forty lines each: long enough for a server that drops in the middle of the data.
        body = "".join(f"line {n}\n" for n in range(40))
        self.envelopes = [envelope(i, r, body=body) for i, r in enumerate(rcpts)]
        self.taken = 0

    def __iter__(self) -> Iterator[Envelope]:
        for e in self.envelopes:
            self.taken += 1
            yield e


def _kinds(outcomes: list[BackendError | None]) -> list[str]:
    return ["ok" if o is None else type(o).__name__ for o in outcomes]


def test_one_connection_carries_a_chain_with_refusals_in_the_middle() -> None:
    rcpts = _recipients(6)
    with FaultServer(reject={rcpts[1], rcpts[4]}) as server, _backend(server) as backend:
        outcomes = list(backend.send_each(_Taken(rcpts)))
    assert _kinds(outcomes) == ["ok", "PermanentFailure", "ok", "ok", "PermanentFailure", "ok"]
    assert isinstance(outcomes[1], PermanentFailure)
    assert outcomes[1].code == 550
    assert [m.rcpt for m in server.messages] == [rcpts[i] for i in (0, 2, 3, 5)]
    assert server.connections == 1  # the dialogue never lost its place


def test_a_deferred_message_does_not_desynchronise_the_next() -> None:
    rcpts = _recipients(5)
    # Every message is refused with a 451 after its data: each a deferral, on one
    # connection, with the next message's commands already sent behind it.
    with FaultServer(temp_data=1.0) as server, _backend(server) as backend:
        outcomes = list(backend.send_each(_Taken(rcpts)))
    assert _kinds(outcomes) == ["TemporaryFailure"] * 5
    assert all(isinstance(o, TemporaryFailure) and o.code == 451 for o in outcomes)
    assert server.messages == []
    assert server.connections == 1


def test_a_lost_connection_stops_the_chain_and_the_message_taken_ahead_is_not_sent() -> None:
    rcpts = _recipients(4)
    with FaultServer(drop_mid_data=1.0) as server, _backend(server) as backend:
        taken = _Taken(rcpts)
        outcomes = list(backend.send_each(taken))
        assert not backend.connected
    # The first is in doubt (its data went out, no reply came); the second was taken to
    # ride behind it and gets no outcome: it was never sent, the caller gives it back.
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], InDoubtFailure | TemporaryFailure)
    assert taken.taken == 2
    assert server.messages == []


def test_max_messages_per_connection_holds_in_a_chain() -> None:
    rcpts = _recipients(5)
    with FaultServer() as server, _backend(server, max_messages_per_connection=2) as backend:
        outcomes = list(backend.send_each(_Taken(rcpts)))
    assert _kinds(outcomes) == ["ok"] * 5
    assert [m.rcpt for m in server.messages] == rcpts
    assert server.connections == 3


def test_an_invalid_address_taken_ahead_fails_alone() -> None:
    rcpts = [*_recipients(2), "bad address@example.org", *_recipients(4)[2:]]
    with FaultServer() as server, _backend(server) as backend:
        outcomes = list(backend.send_each(_Taken(rcpts)))
    assert _kinds(outcomes) == ["ok", "ok", "PermanentFailure", "ok", "ok"]
    assert "invalid address" in str(outcomes[2])
    assert server.connections == 1


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_default_send_each_yields_one_outcome_per_message(count: int) -> None:
    backend = DiscardBackend()
    outcomes = list(backend.send_each(_Taken(_recipients(count))))
    assert outcomes == [None] * count
