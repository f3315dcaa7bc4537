"""The return path's IMAP mailbox (``bounces.imap``): read what arrived, move what was stored.

TLS only: implicit TLS or STARTTLS, the certificate checked against the system's CAs (or a
``ca_file``); a server that offers neither is refused before the password is sent. Messages
are fetched with BODY.PEEK[] (nothing is marked read) and moved by UID COPY to the done
folder, then flagged \\Deleted and expunged, which every IMAP4rev1 server supports. The
caller moves a batch only after what it said is stored: digest dying in between leaves the
messages in the folder, to be read again (and counted once) by the next tick.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from digest.exceptions import BounceError

SECURITIES = ("tls", "starttls")
_UID = re.compile(rb"\bUID (\d+)")


class Mailbox:
    """One logged-in IMAP session on the bounce mailbox (a ``with`` block)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        password: str,
        security: str = "tls",
        ca_file: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        if security not in SECURITIES:
            raise BounceError(f"bounces.imap.security must be tls or starttls, not {security!r}")
        self.where = f"bounces.imap: {host}:{port}"
        self.host, self.port, self.user, self.security = host, port, user, security
        self._password = password
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Connect, secure and log in; a BounceError names what went wrong and what to do."""
        conn = self._connect()
        try:
            conn.login(self.user, self._password)
        except (imaplib.IMAP4.error, OSError):
            _shutdown(conn)
            # The server's words may echo what was sent; the password is never shown.
            raise BounceError(
                f"{self.where}: login as {self.user!r} refused; check bounces.imap.user and "
                "the password in bounces.imap.password_env"
            ) from None
        self._conn = conn

    def _connect(self) -> imaplib.IMAP4:
        """A TLS session (implicit or STARTTLS), or a BounceError; never a plain one."""
        conn: imaplib.IMAP4 | None = None
        try:
            if self.security == "tls":
                return imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self._context, timeout=self._timeout
                )
            conn = imaplib.IMAP4(self.host, self.port, timeout=self._timeout)
            if "STARTTLS" not in conn.capabilities:
                raise BounceError(
                    f"{self.where} offers no STARTTLS; digest never sends the password "
                    "unencrypted (use a server or port with TLS)"
                )
            conn.starttls(ssl_context=self._context)
            return conn
        except BaseException as exc:
            if conn is not None:
                _shutdown(conn)
            raise _connect_error(self.where, exc) from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.logout()
            except (imaplib.IMAP4.error, OSError):
                _shutdown(self._conn)
            self._conn = None

    def _ok(self, answer: tuple[str, list[object]], what: str) -> list[object]:
        kind, data = answer
        if kind != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise BounceError(f"{self.where}: {what} refused ({said})")
        return data

    def _call(self, what: str, *args: str) -> list[object]:
        if self._conn is None:
            raise BounceError(f"{self.where}: not connected")
        try:
            if args and args[0] == "UID":
                answer = self._conn.uid(*args[1:])
            elif args[0] == "SELECT":
                answer = self._conn.select(args[1])
            elif args[0] == "CREATE":
                answer = self._conn.create(args[1])
            else:
                answer = self._conn.expunge()
        except (imaplib.IMAP4.error, OSError) as exc:
            raise BounceError(f"{self.where}: {what} failed ({exc})") from None
        return self._ok(answer, what)

    def uids(self, folder: str) -> list[str]:
        """Select ``folder``; the UIDs of its messages not yet moved away, oldest first."""
        self._call(f"folder {folder!r}", "SELECT", _quote(folder))
        data = self._call("SEARCH", "UID", "SEARCH", "UNDELETED")
        found = b" ".join(d for d in data if isinstance(d, bytes))
        return sorted(found.decode().split(), key=int)

    def fetch(self, uids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """(UID, the whole message) of each of ``uids``, unread flags untouched."""
        data = self._call("FETCH", "UID", "FETCH", ",".join(uids), "(UID BODY.PEEK[])")
        for part in data:
            if isinstance(part, tuple) and len(part) == 2:
                head, body = part
                match = _UID.search(head) if isinstance(head, bytes) else None
                if match and isinstance(body, bytes):
                    yield match.group(1).decode(), body

    def move(self, uids: Sequence[str], done: str) -> None:
        """Move ``uids`` to the folder ``done`` (made when missing)."""
        if not uids:
            return
        listed = ",".join(uids)
        try:
            self._call(f"COPY to {done!r}", "UID", "COPY", listed, _quote(done))
        except BounceError as exc:
            if "TRYCREATE" not in str(exc):
                raise
            self._call(f"making folder {done!r}", "CREATE", _quote(done))
            self._call(f"COPY to {done!r}", "UID", "COPY", listed, _quote(done))
        self._call("STORE", "UID", "STORE", listed, "+FLAGS.SILENT", r"(\Deleted)")
        self._call("EXPUNGE", "EXPUNGE")


def _connect_error(where: str, exc: BaseException) -> BaseException:
    """The one line a failed connection becomes (anything unexpected is left as it is)."""
    if isinstance(exc, BounceError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return BounceError(
            f"{where}: TLS certificate rejected ({exc.verify_message}); fix the certificate "
            "or the host name, or name its CA in bounces.imap.ca_file"
        )
    if isinstance(exc, (ssl.SSLError, imaplib.IMAP4.error)):
        return BounceError(f"{where}: no TLS session ({exc}); check bounces.imap.port and security")
    if isinstance(exc, OSError):
        return BounceError(
            f"{where}: cannot connect ({exc.strerror or exc}); check host and port and that "
            "the server is up"
        )
    return exc


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shutdown(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown()
