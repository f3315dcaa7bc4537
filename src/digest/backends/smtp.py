"""SMTP delivery over stdlib smtplib, with replies mapped exactly onto the send contract.

``timeout`` is a deadline per phase of the dialogue (banner, EHLO, MAIL/RCPT, DATA, the
final reply), not per socket read: a server that trickles one byte every few seconds runs
into it as surely as one that says nothing. A message's whole exchange (a new connection's
banner, EHLO, TLS and login included) is bounded by one timeout too: a server that answers
each phase just in time cannot hold one message for five timeouts.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, NoReturn

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure

_SECURITY_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class _Reader:
    """The reply stream of one connection, read under the connection's current deadline."""

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self.buffer and (limit < 0 or len(self.buffer) < limit):
            chunk = self.conn.recv_by_deadline()
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        if limit >= 0:
            end = min(end, limit)
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        return line

    def close(self) -> None:
        self.buffer = b""


class _Conn(smtplib.SMTP):
    """smtplib.SMTP whose reads and writes share one deadline per phase (``phase()``)."""

    deadline = float("inf")
    phase_seconds = 30.0
    exchange_end = float("inf")  # the current message's whole exchange ends here

    def phase(self) -> None:
        self.deadline = min(time.monotonic() + self.phase_seconds, self.exchange_end)

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the server took longer than the timeout for this step")
        return left

    def recv_by_deadline(self) -> bytes:
        assert self.sock is not None
        self.sock.settimeout(self._left())
        return self.sock.recv(8192)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Reader(self)
        return super().getreply()

    def send(self, s: Any) -> None:
        if self.sock is not None:
            self.sock.settimeout(self._left())  # sendall: one timeout for the whole write
        super().send(s)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self.phase()  # connecting and the banner: one phase
        made: socket.socket = super()._get_socket(host, port, min(timeout, self._left()))  # type: ignore[misc]
        # Pipelined commands and the message go out in whole writes: no Nagle wait for them.
        made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return made


class _SSLConn(_Conn, smtplib.SMTP_SSL):
    """The same, over implicit TLS."""


class SMTPBackend(Backend):
    """Send each message in its own MAIL/RCPT/DATA transaction over a reused connection.

    Secrets are read from the environment variables *named* by ``username_env`` and
    ``password_env`` at connection time; they are never stored on the instance, logged or
    put into an exception message. Failures that retrying cannot fix (bad credentials, a
    certificate that does not verify, no STARTTLS offered) raise plain BackendError.
    """

    name: ClassVar[str] = "smtp"
    parallel: ClassVar[bool] = True
    options: ClassVar[frozenset[str]] = frozenset(
        {
            "host",
            "port",
            "security",
            "username_env",
            "password_env",
            "allow_insecure_auth",
            "timeout",
            "local_hostname",
            "max_messages_per_connection",
            "tls_verify",
        }
    )

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int | None = None,
        security: str = "none",
        username_env: str | None = None,
        password_env: str | None = None,
        allow_insecure_auth: bool = False,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        max_messages_per_connection: int = 100,
        tls_verify: bool = True,
        **unknown: Any,
    ) -> None:
        super().__init__(**unknown)
        flags = {"allow_insecure_auth": allow_insecure_auth, "tls_verify": tls_verify}
        for flag, value in flags.items():
            if not isinstance(value, bool):
                self._fail(f"{flag} must be true or false, not {value!r}")
        if not isinstance(host, str) or not host:
            self._fail(f"host must be a host name or address, not {host!r}")
        if security not in _SECURITY_PORTS:
            self._fail(f"security must be one of none, starttls, tls, not {security!r}")
        if port is None:
            port = _SECURITY_PORTS[security]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            self._fail(f"port must be an integer between 1 and 65535, not {port!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            self._fail(f"timeout must be a positive number of seconds, not {timeout!r}")
        limit = max_messages_per_connection
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            self._fail(f"max_messages_per_connection must be a positive integer, not {limit!r}")
        if (username_env is None) != (password_env is None):
            self._fail("set both username_env and password_env, or neither")
        if username_env is not None and security == "none" and not allow_insecure_auth:
            self._fail(
                "credentials are configured but security is 'none', so the password would "
                "cross the network in clear; set security to starttls or tls "
                "(or allow_insecure_auth: true for a trusted local relay)"
            )
        self.host = host
        self.port = port
        self.security = security
        self.username_env = username_env
        self.password_env = password_env
        self.timeout = float(timeout)
        self.local_hostname = local_hostname
        self.max_messages_per_connection = limit
        self.tls_verify = tls_verify
        self._conn: _Conn | None = None
        self._transactions = 0
        self._exchange_end = float("inf")  # set per message by _transaction
        # send_each: the next message, once taken, and whether its commands went out.
        self._ahead: Envelope | None = None
        self._ahead_written = False
        self._took = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """False after a failure that lost the connection (the engine then waits a little
        before this connection tries again)."""
        return self._conn is not None

    def _fail(self, problem: str) -> NoReturn:
        raise BackendError(f"backend 'smtp': {problem}")

    def open(self) -> None:
        """Connect now, so a wrong password or certificate shows before the first message
        (BackendError); a refused or silent connection, or a 421 greeting, is a
        TemporaryFailure: a deferral for this connection, not the end of the run."""
        if self._conn is None:
            self._conn = self._connect()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.exchange_end = float("inf")  # QUIT has its own phase, after any message
        try:
            conn.phase()
            conn.quit()
        except OSError:
            conn.close()

    def send(self, envelope: Envelope) -> None:
        for failure in self.send_each([envelope]):
            if failure is not None:
                raise failure

    def send_each(self, envelopes: Iterable[Envelope]) -> Iterator[BackendError | None]:
        """Each message in its own transaction; with PIPELINING, the next message's MAIL,
        RCPT and DATA go out in the same write as this one's data (RFC 2920 3.1 lets the
        message content open a group), so a message costs one round trip, not two. Stops
        after a lost connection (the caller may wait before trying again); a message taken
        ahead then gets no outcome: it was not sent."""
        following = iter(envelopes)
        current = next(following, None)
        written = False  # the commands of `current` went out with the previous message
        while current is not None:
            self._ahead, self._ahead_written, self._took = None, False, False
            try:
                self._transaction(current, written, following)
            except BackendError as exc:
                yield exc
            else:
                yield None
            current, written = self._ahead, self._ahead_written
            if self._conn is None:
                return  # a message taken ahead was not sent: the caller gives it back
            if not self._took:
                current = next(following, None)

    def _transaction(
        self, envelope: Envelope, written: bool, following: Iterator[Envelope]
    ) -> None:
        """One message; the next one is taken from ``following`` into ``self._ahead``."""
        if self._conn is not None and self._transactions >= self.max_messages_per_connection:
            self.close()  # never reached with commands written ahead (see below)
        # One timeout for the whole exchange, a new connection included: no phase passes it.
        self._exchange_end = time.monotonic() + self.timeout
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.exchange_end = self._exchange_end
        finally:
            self._exchange_end = float("inf")  # open() and close() keep their own phases
        self._transactions += 1
        rcpt = envelope.recipient
        pipelining = conn.has_extn("pipelining")
        try:
            conn.phase()  # MAIL, RCPT and the DATA command
            if pipelining:
                if not written:
                    conn.send(self._commands(conn, envelope))
                self._pipelined_replies(conn, rcpt)
            else:
                self._expect(conn.mail(envelope.sender, self._mail_options(conn, envelope)), rcpt)
                self._expect(conn.rcpt(rcpt), rcpt)
                conn.putcmd("data")
                self._expect(conn.getreply(), rcpt, ok=354)
            # Dot-stuffing (RFC 5321 4.5.2). Our own messages need none (their QP encodes a
            # leading dot, and they say so): no search of the message (CRLF every 78 bytes
            # makes even a C search cost ~50 us), and no copy.
            payload = envelope.data
            if not envelope.dot_safe and (payload.startswith(b".") or b"\n." in payload):
                payload = payload.replace(b"\n.", b"\n..")
                if payload.startswith(b"."):
                    payload = b"." + payload
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            ahead = b""
            if pipelining and self._transactions < self.max_messages_per_connection:
                self._ahead, self._took = next(following, None), True
                if self._ahead is not None:
                    # An address it refuses is refused again, for that message, in its turn.
                    with contextlib.suppress(PermanentFailure):
                        ahead = self._commands(conn, self._ahead)
            conn.phase()  # the message itself
            conn.send(payload + b".\r\n" + ahead)
            self._ahead_written = bool(ahead)
        except OSError as exc:  # smtplib's errors are OSErrors too
            self._drop()
            raise TemporaryFailure(
                f"smtp {self.address}: connection lost before the message to {rcpt} was sent "
                f"({exc}); it will be retried on a new connection"
            ) from exc
        try:
            conn.phase()  # the final reply
            reply = conn.getreply()
        except OSError as exc:  # smtplib's errors are OSErrors too
            self._drop()
            raise InDoubtFailure(
                f"smtp {self.address}: connection lost after the message to {rcpt} was sent "
                f"({exc}); the server may have accepted it, check before resending"
            ) from exc
        # The final reply ends the transaction: no RSET, which would also come after the
        # next message's commands already on their way.
        self._expect(reply, rcpt, reset=False)

    def _commands(self, conn: smtplib.SMTP, envelope: Envelope) -> bytes:
        """MAIL, RCPT and DATA of one message, to go out in one write (RFC 2920)."""
        for address in (envelope.sender, envelope.recipient):
            if any(c in address for c in "\r\n<> "):
                raise PermanentFailure(f"smtp {self.address}: invalid address {address!r}")
        options = self._mail_options(conn, envelope)
        extra = (" " + " ".join(options)) if options else ""
        return (
            f"MAIL FROM:<{envelope.sender}>{extra}\r\nRCPT TO:<{envelope.recipient}>\r\nDATA\r\n"
        ).encode()

    def _pipelined_replies(self, conn: smtplib.SMTP, rcpt: str) -> None:
        """The three replies to pipelined MAIL, RCPT and DATA, in order."""
        replies = [conn.getreply() for _ in range(3)]
        bad = next((r for r in replies[:2] if not 200 <= r[0] < 300), None)
        if bad is not None:
            if replies[2][0] == 354:
                # The server wants data despite a refusal (RFC 2920 4.1): end it empty.
                conn.send(b".\r\n")
                conn.getreply()
            self._expect(bad, rcpt)
        self._expect(replies[2], rcpt, ok=354)

    def _connect(self) -> _Conn:
        where = f"smtp {self.address}"
        try:
            conn = self._dial()
        except BackendError:
            raise
        except smtplib.SMTPNotSupportedError as exc:
            raise BackendError(f"{where}: {exc}; check the security option") from exc
        except ssl.SSLCertVerificationError as exc:
            raise BackendError(
                f"{where}: TLS certificate rejected ({exc.verify_message}); "
                "fix the certificate or the host name"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            code = exc.smtp_code if isinstance(exc, smtplib.SMTPResponseException) else None
            raise TemporaryFailure(
                f"{where}: cannot connect ({exc}); check host/port and that the server is up",
                code=code,
            ) from exc
        self._transactions = 0
        return conn

    def _dial(self) -> _Conn:
        """Connect, say EHLO, secure and log in; close the socket on any failure."""
        context = ssl.create_default_context()
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: _Conn
        if self.security == "tls":
            conn = _SSLConn(
                local_hostname=self.local_hostname, timeout=self.timeout, context=context
            )
        else:
            conn = _Conn(local_hostname=self.local_hostname, timeout=self.timeout)
        conn.phase_seconds = self.timeout
        conn.exchange_end = self._exchange_end
        conn._host = self.host  # type: ignore[attr-defined]  # the name TLS checks
        try:
            code, banner = conn.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, banner)
            conn.phase()
            conn.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                conn.phase()
                conn.starttls(context=context)
                conn.phase()
                conn.ehlo()
            if self.username_env is not None and self.password_env is not None:
                conn.phase()
                self._login(conn, self.username_env, self.password_env)
        except BaseException:
            conn.close()
            raise
        return conn

    def _login(self, conn: smtplib.SMTP, username_env: str, password_env: str) -> None:
        try:
            conn.login(
                self._secret(username_env, "username_env"),
                self._secret(password_env, "password_env"),
            )
        except smtplib.SMTPAuthenticationError as exc:
            # The server's reply text is left out: it may echo what we sent.
            code = exc.smtp_code
            where = f"smtp {self.address}: login"
            if 400 <= code < 500:
                raise TemporaryFailure(
                    f"{where} deferred ({code}); retry later", code=code
                ) from None
            raise BackendError(
                f"{where} refused ({code}); check the credentials in "
                f"${username_env} and ${password_env}"
            ) from None

    def _secret(self, variable: str, option: str) -> str:
        value = os.environ.get(variable)
        if not value:
            self._fail(f"environment variable {variable} (named by {option}) is not set")
        return value

    def _mail_options(self, conn: smtplib.SMTP, envelope: Envelope) -> list[str]:
        options = []
        if not (envelope.sender + envelope.recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise PermanentFailure(
                    f"smtp {self.address}: address {envelope.recipient} or {envelope.sender} "
                    "is not ASCII and the server does not offer SMTPUTF8"
                )
            options.append("SMTPUTF8")
        if conn.has_extn("size"):
            options.append(f"SIZE={len(envelope.data)}")
        if conn.has_extn("8bitmime") and not envelope.data.isascii():
            options.append("BODY=8BITMIME")
        return options

    def _expect(
        self, reply: tuple[int, bytes], recipient: str, ok: int | None = None, *, reset: bool = True
    ) -> None:
        """Return if ``reply`` is the success reply, else raise the failure it stands for
        (after an RSET unless ``reset`` is False: the transaction is over)."""
        code, text = reply
        if code == ok or (ok is None and 200 <= code < 300):
            return
        said = text.decode("utf-8", "replace").replace("\n", " ")
        where = f"smtp {self.address}: message to {recipient}"
        if 500 <= code < 600:
            if reset:
                self._reset()
            raise PermanentFailure(f"{where} rejected: {code} {said}", code=code)
        if 400 <= code < 500 and code != 421:
            if reset:
                self._reset()
            raise TemporaryFailure(f"{where} deferred: {code} {said}", code=code)
        # 421 means the server is closing; anything else means we lost track of the dialogue.
        self._drop()
        raise TemporaryFailure(f"{where} deferred: {code} {said}", code=code)

    def _reset(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.phase()
            code, _ = self._conn.rset()
        except OSError:
            code = -1
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
