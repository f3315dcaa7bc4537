"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's binaries, loopback only.

``initdb`` in a temporary folder, the server run as an unprivileged user (``nobody`` when
started by root, since PostgreSQL refuses to run as root), listening on 127.0.0.1 and a
socket in that folder only, trust authentication (nothing else can reach it), stopped and
deleted at the end. Each test gets a database of its own (``create_database``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from digest.store.admin import create_database, drop_database
from digest.testing.smtp import free_port

USER = "digest"


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: $PG_BINDIR, the newest /usr/lib/postgresql/N/bin, PATH."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(versions):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")


class PostgresCluster:
    """Context manager: a fresh cluster; ``url(name)`` for its databases."""

    host = "127.0.0.1"

    def __init__(self, *, durable: bool = False) -> None:
        # Tests skip fsync (the data is thrown away); a benchmark may want real commits.
        self.durable = durable
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._options = ""  # the server's command line options, for a restart
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
            **self._as,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = ["-c listen_addresses=127.0.0.1", f"-k {self.root}", "-c max_connections=200"]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        for _ in range(5):
            self.port = free_port()
            self._options = " ".join([f"-p {self.port}", *settings])
            try:
                self.resume()
                return
            except RuntimeError:
                continue  # the port was taken meanwhile: try another
        raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'log'}")

    # Faults for tests: the server goes away and comes back, on the same port with its data.

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended, the server back in ~1 s."""
        # With its log file named: a server started without one writes to pg_ctl's output,
        # and holding that pipe open would keep this call waiting for ever.
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")

    def halt(self) -> None:
        """Stop the server (``-m fast``) and keep its data: connections are refused until
        ``resume``."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again) with the same port and settings."""
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", self._options, "start")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        return create_database(self.url())

    def drop_database(self, url: str) -> None:
        drop_database(url)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
