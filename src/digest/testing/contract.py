"""The contract every delivery backend meets, as a test class to subclass (needs pytest).

Subclass it once per backend and give ``backend()`` and ``delivered()`` (and, for a backend
with a connection, ``lose_connection()``); pytest collects the ``test_*`` methods. digest
runs it against all of its own backends, the SMTP one against a real aiosmtpd server on
loopback, like Django's shared mail backend tests.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from digest.backends.base import Backend, Envelope, backend_names
from digest.exceptions import BackendError, TemporaryFailure

SENDER = "news@digest.example"


def envelope(n: int = 1, recipient: str = "alice@example.com", body: str | None = None) -> Envelope:
    """A small message whose lines starting with "." need dot-stuffing on SMTP."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"Digest <{SENDER}>"
    msg["To"] = recipient
    msg["Subject"] = f"Edition {n}"
    msg["Message-ID"] = f"<{n}.test@digest.example>"
    msg.set_content(body or f"Hello {n}, café\n.leading dot\n.\n..two dots\nlast line\n")
    data = msg.as_bytes()
    return Envelope(sender=SENDER, recipient=recipient, data=data, message_id=msg["Message-ID"])


class BackendContract:
    """What digest's engine relies on; see backends.base.Backend for the contract in words."""

    name = ""  # the entry-point name the backend is registered under

    def backend(self, **options: Any) -> Backend:
        """A new backend with the harness's options plus ``options``."""
        raise NotImplementedError

    def delivered(self) -> list[bytes]:
        """Every message the backend delivered so far, in order."""
        raise NotImplementedError

    def lose_connection(self) -> bool:
        """Take the backend's server away (True); False for a backend with no connection."""
        return False

    def assert_delivered(self, sent: list[Envelope]) -> None:
        assert self.delivered() == [e.data for e in sent]

    def test_registered_under_its_name(self) -> None:
        backend = self.backend()
        assert isinstance(backend, Backend)
        assert backend.name == self.name
        assert self.name in backend_names()

    def test_two_messages_arrive_byte_for_byte(self) -> None:
        sent = [envelope(1), envelope(2, "bob@example.com")]
        backend = self.backend()
        backend.open()
        for message in sent:
            backend.send(message)
        backend.close()
        self.assert_delivered(sent)

    def test_send_without_open_connects_lazily(self) -> None:
        backend = self.backend()
        backend.send(envelope())
        backend.close()
        self.assert_delivered([envelope()])

    def test_open_and_close_twice(self) -> None:
        backend = self.backend()
        backend.close()
        backend.open()
        backend.open()
        backend.send(envelope(1))
        backend.close()
        backend.close()
        backend.open()
        backend.send(envelope(2))
        backend.close()
        self.assert_delivered([envelope(1), envelope(2)])

    def test_context_manager(self) -> None:
        backend = self.backend()
        with backend as entered:
            assert entered is backend
            entered.send(envelope())
        self.assert_delivered([envelope()])

    def test_unknown_option_is_one_clear_error(self) -> None:
        with pytest.raises(BackendError, match="unknown option") as info:
            self.backend(hots="typo")
        message = str(info.value)
        assert "hots" in message
        cls = type(self.backend())
        assert all(option in message for option in cls.options)

    def test_what_the_worker_reads_between_messages(self) -> None:
        backend = self.backend()
        assert isinstance(type(backend).parallel, bool)
        assert isinstance(backend.timeout, int | float)
        assert backend.timeout > 0
        with backend:
            backend.send(envelope())
            assert backend.connected is True  # healthy: the worker goes straight on
        self.assert_delivered([envelope()])

    def test_send_each_yields_one_outcome_per_message_in_order(self) -> None:
        sent = [envelope(1), envelope(2, "bob@example.com"), envelope(3)]
        with self.backend() as backend:
            outcomes = list(backend.send_each(iter(sent)))
        assert outcomes == [None, None, None]
        self.assert_delivered(sent)

    def test_a_lost_connection_is_a_deferral_and_shows_in_connected(self) -> None:
        backend = self.backend()
        backend.send(envelope(1))
        if not self.lose_connection():
            backend.send(envelope(2))
            assert backend.connected is True  # nothing to lose: always ready
            backend.close()
            self.assert_delivered([envelope(1), envelope(2)])
            return
        with pytest.raises(TemporaryFailure):
            backend.send(envelope(2))
        # The worker pauses this connection before its next try, instead of spinning.
        assert backend.connected is False
        backend.close()
        self.assert_delivered([envelope(1)])
