"""A small real IMAP server (threads, loopback) for tests of the bounce mailbox.

It speaks the part of IMAP4rev1 (RFC 3501) that digest's client uses, and checks what a
real server checks: LOGIN with the right user and password, and only after TLS when the
server offers TLS (LOGINDISABLED before STARTTLS); a selected folder before UID commands;
COPY to a folder that does not exist answered ``NO [TRYCREATE]``. Commands: CAPABILITY,
NOOP, LOGOUT, STARTTLS, LOGIN, SELECT, CREATE, UID SEARCH (ALL, UNDELETED), UID FETCH
(BODY.PEEK[] / BODY[]), UID COPY, UID STORE (+FLAGS (\\Deleted)), EXPUNGE.

``security``: "tls" (implicit TLS, port 993 style), "starttls", or "none" (no TLS offered:
the case digest must refuse). ``cert`` is (certfile, keyfile). ``refuse`` names commands
answered NO (e.g. {"UID COPY"}: a server that fails while digest moves what it read).
"""

from __future__ import annotations

import re
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from digest.testing.smtp import free_port

_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|(\S+)')


@dataclass
class Stored:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


class IMAPServer:
    """Folders of messages behind one user; start() / stop() or a ``with`` block."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        user: str,
        password: str,
        security: str = "tls",
        cert: tuple[str, str] | None = None,
        refuse: set[str] | None = None,
    ) -> None:
        if security not in ("tls", "starttls", "none"):
            raise ValueError("security is tls, starttls or none")
        if security != "none" and cert is None:
            raise ValueError("security tls/starttls needs cert=(certfile, keyfile)")
        self.user, self.password, self.security = user, password, security
        self.refuse = set(refuse or ())  # commands answered NO (a server in trouble)
        self.context: ssl.SSLContext | None = None
        if cert is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*cert)
        self.folders: dict[str, list[Stored]] = {"INBOX": []}
        self.logins: list[str] = []  # users who logged in
        self.failed_logins = 0
        self.commands: list[str] = []  # command names, in order (never their arguments)
        self.lock = threading.Lock()
        self._next_uid = 1
        self.port = free_port()
        self._server = _Server((self.host, self.port), _Session)
        self._server.imap = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def deliver(self, data: bytes, folder: str = "INBOX") -> int:
        """Put a message in ``folder`` (made if missing), as an MTA would; its UID."""
        with self.lock:
            uid = self._next_uid
            self._next_uid += 1
            self.folders.setdefault(folder, []).append(Stored(uid, data))
            return uid

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        with self.lock:
            return [m.data for m in self.folders.get(folder, [])]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

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


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    imap: IMAPServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up or fails the handshake is a test's business


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        self.imap = self.server.imap
        self.tls = False
        if self.imap.security == "tls":
            assert self.imap.context is not None
            try:
                self.request = self.imap.context.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                self.request.close()
                raise
            self.tls = True
        self.request.settimeout(10)
        super().setup()
        self.user: str | None = None
        self.folder: str | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            # A TLS socket took over the connection (wrap_socket detaches the original,
            # which is what socketserver closes): close it here.
            self.request.close()

    def send(self, line: bytes | str) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.wfile.write(data + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        try:
            self.send("* OK [CAPABILITY " + self.capabilities() + "] test IMAP ready")
            while True:
                line = self.rfile.readline(65536)
                if not line:
                    return
                tokens = [
                    m.group(1).replace(b'\\"', b'"').replace(b"\\\\", b"\\")
                    if m.group(1) is not None
                    else m.group(2)
                    for m in _TOKEN.finditer(line.strip())
                ]
                if len(tokens) < 2:
                    self.send(b"* BAD no command")
                    continue
                tag, name, args = tokens[0].decode(), tokens[1].decode().upper(), tokens[2:]
                if name == "UID" and args:
                    name, args = "UID " + args[0].decode().upper(), args[1:]
                with self.imap.lock:
                    self.imap.commands.append(name)
                if name in self.imap.refuse:
                    self.send(f"{tag} NO [UNAVAILABLE] {name} refused for the test")
                    continue
                if self.command(tag, name, [a.decode("utf-8", "replace") for a in args]):
                    return
        except (OSError, ssl.SSLError):
            return

    def capabilities(self) -> str:
        caps = ["IMAP4rev1"]
        if self.imap.security == "starttls" and not self.tls:
            caps += ["STARTTLS", "LOGINDISABLED"]
        return " ".join(caps)

    def command(self, tag: str, name: str, args: list[str]) -> bool:
        """Answer one command; True when the session ends."""
        if name == "LOGOUT":
            self.send("* BYE logging out")
            self.send(f"{tag} OK LOGOUT completed")
            return True
        if name == "CAPABILITY":
            self.send("* CAPABILITY " + self.capabilities())
        elif name == "NOOP":
            pass
        elif name == "STARTTLS" and self.imap.security == "starttls" and not self.tls:
            self.send(f"{tag} OK begin TLS")
            assert self.imap.context is not None
            self.request = self.imap.context.wrap_socket(self.request, server_side=True)
            self.rfile = self.request.makefile("rb")
            self.wfile = self.request.makefile("wb")
            self.tls = True
            return False
        elif name == "LOGIN":
            return self.login(tag, args)
        elif self.user is None:
            self.send(f"{tag} BAD log in first")
            return False
        else:
            return self.selected(tag, name, args)
        self.send(f"{tag} OK {name} completed")
        return False

    def login(self, tag: str, args: list[str]) -> bool:
        if self.imap.security == "starttls" and not self.tls:
            self.send(f"{tag} NO [PRIVACYREQUIRED] LOGINDISABLED: use STARTTLS first")
            return False
        if args[:2] != [self.imap.user, self.imap.password]:
            with self.imap.lock:
                self.imap.failed_logins += 1
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
            return False
        self.user = args[0]
        with self.imap.lock:
            self.imap.logins.append(args[0])
        self.send(f"{tag} OK LOGIN completed")
        return False

    def selected(self, tag: str, name: str, args: list[str]) -> bool:
        imap = self.imap
        with imap.lock:
            if name == "SELECT":
                if not args or args[0] not in imap.folders:
                    self.send(f"{tag} NO no such folder")
                    return False
                self.folder = args[0]
                self.send(f"* {len(imap.folders[self.folder])} EXISTS")
                self.send("* 0 RECENT")
                self.send("* OK [UIDVALIDITY 1] UIDs valid")
                self.send(f"{tag} OK [READ-WRITE] SELECT completed")
                return False
            if name == "CREATE":
                if not args or args[0] in imap.folders:
                    self.send(f"{tag} NO [ALREADYEXISTS] folder exists")
                    return False
                imap.folders[args[0]] = []
                self.send(f"{tag} OK CREATE completed")
                return False
            if self.folder is None:
                self.send(f"{tag} BAD select a folder first")
                return False
            box = imap.folders[self.folder]
            if name == "UID SEARCH":
                undeleted = [a.upper() for a in args] == ["UNDELETED"]
                uids = [str(m.uid) for m in box if not (undeleted and "\\Deleted" in m.flags)]
                self.send(" ".join(["* SEARCH", *uids]))
            elif name in ("UID FETCH", "UID COPY", "UID STORE") and args:
                wanted = _uid_set(args[0])
                chosen = [(i, m) for i, m in enumerate(box, 1) if m.uid in wanted]
                if name == "UID FETCH":
                    for seq, m in chosen:
                        head = f"* {seq} FETCH (UID {m.uid} BODY[] {{{len(m.data)}}}"
                        self.wfile.write(head.encode() + b"\r\n" + m.data + b")\r\n")
                    self.wfile.flush()
                elif name == "UID COPY":
                    if len(args) < 2 or args[1] not in imap.folders:
                        self.send(f"{tag} NO [TRYCREATE] no such folder")
                        return False
                    for _, m in chosen:
                        imap.folders[args[1]].append(Stored(imap._next_uid, m.data))
                        imap._next_uid += 1
                elif "\\DELETED" in " ".join(args[1:]).upper():
                    for _, m in chosen:
                        m.flags.add("\\Deleted")
            elif name == "EXPUNGE":
                seq = 1
                for m in list(box):
                    if "\\Deleted" in m.flags:
                        box.remove(m)
                        self.send(f"* {seq} EXPUNGE")
                    else:
                        seq += 1
            else:
                self.send(f"{tag} BAD unknown command {name}")
                return False
        self.send(f"{tag} OK {name} completed")
        return False


def _uid_set(text: str) -> set[int]:
    """``1,3:5`` -> {1, 3, 4, 5} (no ``*``: digest names the UIDs it wants)."""
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition(":")
        out.update(range(int(first), int(last or first) + 1))
    return out
