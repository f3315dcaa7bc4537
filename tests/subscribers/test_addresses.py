"""One address check (email-validator) for every way an address gets in: the subscriber
file, `digest subscribers add` and `import`, the sign-up form; IDN domains stored as
punycode and sent to through a real SMTP server."""

from __future__ import annotations

import json
import textwrap

import pytest

from digest.app import App
from digest.backends import memory
from digest.testing.smtp import SMTPSink
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import SECRET, Clock, Project, loopback_client

BAD = [
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "x@127.0.0.1",
    "x@[127.0.0.1]",
    "x@localhost",
    "x@example",
    "jörg@example.org",  # would need SMTPUTF8 on every hop
    "Anna <anna@example.org>",
    "anna@exa mple.org",
]
IDN = "anna@Bücher.example"
PUNY = "anna@xn--bcher-kva.example"


@pytest.mark.parametrize("address", BAD)
def test_subscribers_add_refuses_in_one_line(project: Project, address: str) -> None:
    result = project.cli("subscribers", "add", address)
    assert result.exit_code == 1
    assert "is not an e-mail address digest can send to" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("address", ["a..b@example.org", "x@[127.0.0.1]", "x@127.0.0.1"])
def test_subscriber_file_and_import_refuse_with_file_and_line(
    project: Project, address: str
) -> None:
    (project.root / "subscribers.yaml").write_text(
        f"subscribers:\n  - email: ok@example.org\n  - email: '{address}'\n", encoding="utf-8"
    )
    synced = project.cli("subscribers", "sync")
    assert synced.exit_code == 1
    assert f"subscribers.yaml:3: entry 2: invalid email address {address!r}" in synced.output
    assert "Traceback" not in synced.output
    csv = project.root / "more.csv"
    csv.write_text(f"email\nfine@example.org\n{address}\n", encoding="utf-8")
    imported = project.cli("subscribers", "import", str(csv))
    assert imported.exit_code == 1
    assert f"more.csv:3: entry 2: invalid email address {address!r}" in imported.output


def test_idn_domains_are_stored_as_punycode_one_reader_whatever_the_spelling(
    project: Project,
) -> None:
    project.write_config(extra="subscribers_sync: add\n")
    added = project.cli("subscribers", "add", IDN, "--name", "Anna")
    assert added.exit_code == 0, added.output
    csv = project.root / "more.csv"
    csv.write_text(f"email,name\n{PUNY},Anna B\nbob@Bücher.example,Bob\n", encoding="utf-8")
    imported = project.cli("subscribers", "import", str(csv))
    assert imported.exit_code == 0, imported.output
    rows = json.loads(project.cli("subscribers", "list", "--json").stdout)
    emails = sorted(r["email"] for r in rows)
    assert PUNY in emails
    assert "bob@xn--bcher-kva.example" in emails
    assert not any("ü" in e for e in emails)
    assert sum(e.lower() == PUNY for e in emails) == 1  # both spellings: one reader
    shown = json.loads(project.cli("subscribers", "show", IDN).stdout)
    assert shown["subscriber"]["email"] == PUNY
    assert project.cli("subscribers", "remove", "bob@bücher.EXAMPLE").exit_code == 0


def test_an_idn_reader_gets_the_edition_over_smtp(project: Project, smtp_server: SMTPSink) -> None:
    (project.root / "subscribers.yaml").write_text(
        f"subscribers:\n  - email: {IDN}\n    name: Anna\n", encoding="utf-8"
    )
    project.write_config("smtp", {"host": smtp_server.host, "port": smtp_server.port})
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = str(json.loads(built.stdout)["id"])
    assert project.cli("approve", edition, "--by", "Editor").exit_code == 0
    sent = project.cli("send", edition)
    assert sent.exit_code == 0, sent.output
    (message,) = smtp_server.messages
    assert message.rcpt_tos == [PUNY]
    assert f"To: Anna <{PUNY}>" in message.data.decode("ascii")


SIGNUP = textwrap.dedent("""\
    signup:
      enabled: true
    """)


def _sign_up(project: Project, address: str) -> int:
    """POST the sign-up form once (a fresh server each time: the form allows 5 a client)."""
    project.write_config(extra=SIGNUP)
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        answer = http.post("/subscribe", data={"email": address, "name": "", "website": ""})
    # The form only queues the sign-up; drain it as `digest serve` does every second.
    app.readers.pages({"DIGEST_SECRET": SECRET}).drain()
    app.close()
    if answer.status_code == 400:
        assert "Enter an e-mail address" in answer.text
    return answer.status_code


@pytest.mark.parametrize(
    "address", ["a..b@example.org", ".a@example.org", "x@127.0.0.1", "x@[127.0.0.1]", "jörg@x.org"]
)
def test_sign_up_form_refuses_bad_addresses(project: Project, address: str) -> None:
    assert _sign_up(project, address) == 400
    assert memory.outbox == []


def test_sign_up_form_takes_an_idn_address_as_punycode_without_dns(project: Project) -> None:
    # signup.check_deliverability is false by default: no DNS lookup (.example resolves
    # nowhere, and the address is still taken).
    assert _sign_up(project, IDN) == 200
    assert [e.recipient for e in memory.outbox] == [PUNY]


def test_check_deliverability_asks_dns_when_configured(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dns.resolver

    asked: list[str] = []

    def no_such_domain(self: object, name: str, kind: str, **_: object) -> object:
        asked.append(f"{name} {kind}")
        raise dns.resolver.NXDOMAIN  # the DNS answer, mocked: the domain does not exist

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", no_such_domain)
    assert _sign_up(project, "anna@example.org") == 200  # default: DNS is never asked
    assert asked == []
    memory.clear()
    project.write_config(extra=SIGNUP + "  check_deliverability: true\n")
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET})) as server,
        loopback_client(server.url, follow_redirects=False) as http,
    ):
        answer = http.post("/subscribe", data={"email": "ben@example.org", "website": ""})
    app.close()
    assert answer.status_code == 400
    assert asked
    assert memory.outbox == []
