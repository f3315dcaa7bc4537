"""Shared fixtures: real local HTTP and SMTP servers, and a project folder with a config."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.testing.http import FixtureServer
from digest.testing.smtp import SMTPSink

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-secret-key-0123456789abcdef"
NOW = "2026-11-24T06:00:00+00:00"


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


@dataclass
class Project:
    """A temporary project folder with digest.yaml and subscribers.yaml."""

    root: Path
    feeds: FixtureServer

    @property
    def config(self) -> Path:
        return self.root / "digest.yaml"

    @property
    def state(self) -> Path:
        return self.root / ".digest" / "digest.db"

    def write_config(self, backend: str = "memory", options: dict[str, Any] | None = None,
                     extra: str = "", sources: str | None = None) -> None:  # fmt: skip
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
