"""Shared fixtures: real local HTTP and SMTP servers, and a project folder with a config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.backends import memory
from digest.backends.base import Envelope
from digest.cli import cli
from digest.store import Store
from digest.testing.http import FixtureServer
from digest.testing.postgres import PostgresCluster
from digest.testing.smtp import SMTPSink

TESTS = Path(__file__).parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
SECRET = "test-secret-key-0123456789abcdef"
NOW = "2026-11-24T06:00:00+00:00"


def wait_for(
    predicate: Callable[[], object], *, timeout: float = 60.0, what: str = "a condition"
) -> None:
    """Poll ``predicate`` until it is true: tests wait on conditions, never on fixed sleeps.

    The timeout only bounds a hang on a busy machine; it is never what a test measures.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def desk_sources(feeds: FixtureServer) -> str:
    """The two sources of the ranking fixtures (tests/fixtures/ranking), as config YAML."""
    return textwrap.dedent(f"""\
        sources:
          - name: Desk
            url: {feeds.url("/desk.rss")}
            allow_private: true
          - name: Wire
            url: {feeds.url("/wire.rss")}
            allow_private: true
        """)


def on_a_terminal(project: Project, *args: str, now: str = NOW, columns: int = 100) -> str:
    """What ``digest ARGS`` prints on a terminal (a pseudo-terminal): progress and all."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_SECRET=SECRET,
        DIGEST_NOW=now,
        DIGEST_CONFIG=str(project.config),
        COLUMNS=str(columns),
        TERM="xterm",
    )
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env=env,
        stdout=child,
        stderr=child,
        stdin=subprocess.DEVNULL,
    )
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0, out
    os.close(main)
    return out.decode("utf-8", "replace")


def spawn_digest(project: Project, *args: str, now: str = NOW) -> subprocess.Popen[str]:
    """``python -m digest ARGS`` for ``project`` in a subprocess, as of ``now``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_SECRET=SECRET, DIGEST_NOW=now, DIGEST_CONFIG=str(project.config))
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def footer_values(text: str) -> dict[str, str]:
    """The per-reader footer values of a sent message, read back from its text part (for
    placeholders.values_for): view-in-browser and preference links, why they get it, and
    the date line (the reader's day)."""
    text = text.replace("\r\n", "\n")
    view = re.search(r"^View in browser: (\S+)", text, re.M)
    day = re.search(r"^((?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d+ \w+ \d{4})$", text, re.M)
    prefs = re.search(r"^Manage preferences:\n(\S+)", text, re.M)
    why = re.search(
        r"^(You (?:signed up on|have been on this list since) (\d+ \w+ \d{4})\.)$", text, re.M
    )
    assert view, text
    assert prefs, text
    assert day, text
    return {
        "view_url": view.group(1),
        "preferences_url": prefs.group(1),
        "reason": why.group(1) if why else "",
        "signed_up": why.group(2) if why else "",
        "date_line": day.group(1),
    }


@pytest.fixture
def feed_server() -> Iterator[FixtureServer]:
    with FixtureServer(FIXTURES / "e2e") as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SMTPSink]:
    with SMTPSink() as sink:
        yield sink


SUBSCRIBERS = """\
subscribers:
  - email: anna@example.org
    name: Anna Schmidt
  - email: ben@example.net
    name: Ben Okafor
  - email: dmitri@example.org
    name: Дмитрий Иванов
"""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the session (initdb in a temporary folder, run as
    an unprivileged user, loopback only), stopped and deleted at the end."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The state database of a test that runs on both: "" (SQLite, the test's own file) or a
    fresh database of the session's PostgreSQL cluster, dropped afterwards."""
    if request.param == "sqlite":
        yield ""
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


@dataclass
class Project:
    """A temporary project folder with digest.yaml and subscribers.yaml."""

    root: Path
    feeds: FixtureServer
    state_url: str = ""  # PostgreSQL instead of the SQLite file, when set

    def open_store(self) -> Store:
        """The project's state database, whichever it is."""
        return Store(url=self.state_url) if self.state_url else Store(self.state)

    @property
    def config(self) -> Path:
        return self.root / "digest.yaml"

    @property
    def state(self) -> Path:
        return self.root / ".digest" / "digest.db"

    def write_config(
        self,
        backend: str = "memory",
        options: dict[str, Any] | None = None,
        extra: str = "",
        sources: str | None = None,
    ) -> None:
        opts = "".join(f"\n    {k}: {v!r}" for k, v in (options or {}).items())
        sources = sources or textwrap.dedent(f"""\
            sources:
              - name: World Desk
                url: {self.feeds.url("/world.rss")}
                weight: 1.5
                allow_private: true
              - name: Tech Wire
                url: {self.feeds.url("/tech.atom")}
                section: Technology
                allow_private: true
            """)
        self.config.write_text(
            textwrap.dedent("""\
            publication:
              name: The Morning Brief
              sender: "The Morning Brief <brief@news.example.org>"
              base_url: https://news.example.org
              postal_address: 1 Example Street, Berlin
              timezone: Europe/Berlin
            subscribers: subscribers.yaml
            state_path: .digest/digest.db
            """)
            + (f"state_url: {self.state_url}\n" if self.state_url else "")
            + sources
            + f"backend:\n  name: {backend}\n  options: {{}}\n".replace(" {}", opts or " {}")
            + extra,
            encoding="utf-8",
        )

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        full_env = {"DIGEST_SECRET": SECRET, "DIGEST_NOW": NOW, "DIGEST_CONFIG": str(self.config)}
        full_env.update(env or {})
        return runner.invoke(cli, list(args), env=full_env, catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path, feed_server: FixtureServer) -> Project:
    (tmp_path / "subscribers.yaml").write_text(SUBSCRIBERS, encoding="utf-8")
    p = Project(tmp_path, feed_server)
    p.write_config()
    return p


@pytest.fixture(autouse=True)
def _every_message_parses_clean() -> Iterator[None]:
    """Every message a test delivers (memory backend, SMTP sinks) parses back without defects."""
    from digest.backends import memory
    from digest.testing import faults as faultsmtp
    from digest.testing import smtp as smtpfixture
    from digest.testing.mail import parse_clean

    memory.clear()
    smtpfixture.RECEIVED.clear()
    faultsmtp.RECEIVED.clear()
    yield
    delivered = [e.data for e in memory.outbox] + smtpfixture.RECEIVED + faultsmtp.RECEIVED
    memory.clear()
    smtpfixture.RECEIVED.clear()
    faultsmtp.RECEIVED.clear()
    for data in delivered:
        parse_clean(data)


# Shared by the web, approval and variant tests -------------------------------------------

BASE = "https://news.example.org"
EDITORS = textwrap.dedent("""\
    approval:
      editors:
        - name: Rosa Diaz
          email: rosa@news.example.org
        - name: Sam Lee
          email: sam@news.example.org
      link_hours: 24
    """)


def reader_mail() -> list[Envelope]:
    """What readers got: the memory outbox without proofs and notices to the editors."""
    return [
        e
        for e in memory.outbox
        if b"\r\nX-Digest-Notice:" not in e.data and b"\r\nX-Digest-Proof:" not in e.data
    ]


class Clock:
    """A frozen clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime.fromisoformat(NOW)

    def __call__(self) -> datetime:
        return self.now


def proof_links(recipient: str = "rosa@news.example.org", revision: int = 1) -> dict[str, str]:
    """The Review and Approve links of the newest proof of ``revision`` to ``recipient``."""
    for envelope in reversed(memory.outbox):
        msg = message_from_bytes(envelope.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if envelope.recipient == recipient and f"[Proof r{revision}]" in str(msg["Subject"]):
            body = msg.get_body(("plain",))
            assert body is not None
            text = body.get_content()
            review = re.search(r"^Review: (\S+)", text, re.M)
            approve = re.search(r"^Approve: (\S+)", text, re.M)
            assert review
            assert approve
            return {"review": review.group(1), "approve": approve.group(1)}
    raise AssertionError(f"no proof r{revision} to {recipient}")


def loopback_client(base_url: str, **options: Any) -> Any:
    """An httpx client for a test server standing in for the https site: the server marks
    cookies Secure (publication.base_url is https), and this client still sends them over
    the loopback's plain http, as a TLS-terminating proxy in front would."""
    import httpx

    def with_cookies(request: httpx.Request) -> None:
        jar = [c for c in client.cookies.jar if c.value is not None]
        if jar:
            request.headers["cookie"] = "; ".join(f"{c.name}={c.value}" for c in jar)

    client = httpx.Client(base_url=base_url, event_hooks={"request": [with_cookies]}, **options)
    return client


def signin_link(recipient: str, *, after: int = 0) -> str:
    """The link in the newest sign-in mail to ``recipient`` (memory backend), waiting for it:
    the mail leaves after the page has answered. ``after``: ignore the first N messages."""
    from digest.backends import memory

    def find() -> str | None:
        for envelope in reversed(memory.outbox[after:]):
            msg = message_from_bytes(envelope.data, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            if envelope.recipient == recipient and str(msg["Subject"]).startswith("Sign in"):
                body = msg.get_body(("plain",))
                assert body is not None
                found = re.search(r"https://\S+/s/[\w.-]+", body.get_content())
                assert found
                return found.group(0)
        return None

    wait_for(lambda: find() is not None, what=f"a sign-in mail to {recipient}")
    link = find()
    assert link is not None
    return link


def sign_in_by_link(http: Any, email: str) -> None:
    """Sign ``http`` (a loopback_client) in as the editor ``email`` through a mailed link."""
    from digest.backends import memory

    def csrf(path: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', http.get(path).text)
        assert found
        return found.group(1)

    before = len(memory.outbox)
    asked = http.post("/signin/link", data={"email": email, "csrf": csrf("/signin")})
    assert asked.status_code == 200, asked.text
    path = signin_link(email, after=before)[len(BASE) :]
    done = http.post(path, data={"csrf": csrf(path)})
    assert done.status_code == 303, done.text


def make_cert(folder: Path, name: str = "localhost") -> tuple[str, str]:
    """A self-signed certificate (its own CA) for ``name`` and 127.0.0.1: (cert, key)."""
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    san = "IP:127.0.0.1" if name == "127.0.0.1" else f"DNS:{name},IP:127.0.0.1"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(keyfile),
            "-out",
            str(certfile),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
    )
    return str(certfile), str(keyfile)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: its own CA, which the config names."""
    return make_cert(tmp_path_factory.mktemp("imapcert"), "127.0.0.1")
