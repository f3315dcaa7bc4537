"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd in a thread, with scripted refusals."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Security = Literal["none", "starttls", "tls"]
Hangup = Literal["rcpt", "data", "stall"]


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # as received after un-dot-stuffing, CRLF untouched
    connection: int  # 1 for the first connection that carried mail, 2 for the next ...


# Every message any sink received during the current test; tests/conftest.py parses each one
# back after the test (no defects, CRLF, short lines) and clears the list.
RECEIVED: list[bytes] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    def _connection(self, session: Session) -> int:
        # A Session lives as long as its connection, so it can carry the connection's number.
        number: int | None = getattr(session, "digest_connection", None)
        if number is None:
            with self.sink._lock:
                self.sink.connections += 1
                number = self.sink.connections
            setattr(session, "digest_connection", number)  # noqa: B010 - not a Session field
        return number

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self._connection(session)
        self.sink.mail_options.append(options)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sink.hangup.get(address) == "rcpt":
            _hang_up(server)
            return "250 OK"  # never arrives: the connection is already gone
        code = self.sink.reject.get(address)
        if code is not None:
            return f"{code} {'4.2.0' if code < 500 else '5.1.1'} refused by the test sink"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            connection=self._connection(session),
        )
        self.sink.messages.append(message)
        RECEIVED.append(message.data)
        steps = {self.sink.hangup.get(a) for a in envelope.rcpt_tos}
        if "data" in steps:
            _hang_up(server)
            return "250 OK"  # never arrives: the connection is already gone
        if "stall" in steps:
            await asyncio.Event().wait()  # until stop() cancels us: the client times out
        return "250 OK queued"


def _hang_up(server: SMTP) -> None:
    """Drop the client's connection at once, without a reply."""
    assert isinstance(server.transport, asyncio.Transport)
    server.transport.abort()


class SMTPSink:
    """Context manager: start an SMTP server on 127.0.0.1, record what it receives, stop.

    ``reject`` maps a recipient to the code its RCPT gets (451, 421, 550 ...); ``hangup`` maps
    a recipient to the step at which the server drops the connection without replying
    ("rcpt", or "data": after the whole message arrived, so the client cannot know), or
    "stall" to never answer the final dot.
    ``security`` starttls/tls needs ``cert`` (certfile, keyfile); ``credentials`` makes AUTH
    mandatory (aiosmtpd only offers AUTH over TLS).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int = 0,
        reject: dict[str, int] | None = None,
        hangup: dict[str, Hangup] | None = None,
        security: Security = "none",
        cert: tuple[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.reject = dict(reject or {})
        self.hangup = dict(hangup or {})
        self.messages: list[ReceivedMessage] = []
        self.mail_options: list[list[str]] = []
        self.connections = 0
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._credentials = credentials
        self._running = False
        kwargs: dict[str, Any] = {}
        if security != "none":
            if cert is None:
                raise ValueError("security starttls/tls needs cert=(certfile, keyfile)")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            kwargs["ssl_context" if security == "tls" else "tls_context"] = context
        if credentials is not None:
            kwargs.update(auth_required=True, authenticator=self._authenticate)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="sink.localhost",  # skips aiosmtpd's slow getfqdn()
            ready_timeout=5.0,
            **kwargs,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login, data.password) == tuple(c.encode() for c in self._credentials)
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        """Stop the server (idempotent, so a test may stop it early to simulate an outage)."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
