"""bounces.imap: digest tick reads the return path's IMAP mailbox over TLS (a real server on
loopback with a self-signed certificate whose CA the test names), stores what it said, then
moves each message to the done folder; every way it can fail is one warning line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bouncemail import arf, dsn
from digest.testing.imap import IMAPServer
from digest.testing.smtp import SMTPSink, free_port

from conftest import Project

PASSWORD = 's3cret "quoted" pass'
ENV = {"BOUNCE_IMAP_PASSWORD": PASSWORD}


@pytest.fixture
def imap(tls_cert: tuple[str, str]) -> Iterator[IMAPServer]:
    with IMAPServer(user="bounces", password=PASSWORD, cert=tls_cert) as server:
        yield server


def imap_config(port: int, ca_file: str | None, *, security: str = "tls", extra: str = "") -> str:
    ca = f"    ca_file: {ca_file}\n" if ca_file else ""
    return (
        "bounces:\n  imap:\n    host: 127.0.0.1\n"
        f"    port: {port}\n    security: {security}\n    user: bounces\n"
        f"    password_env: BOUNCE_IMAP_PASSWORD\n    done_folder: Processed\n{ca}{extra}"
    )


def send_edition(project: Project, smtp: SMTPSink, extra: str) -> dict[str, str]:
    """Build, approve and send to the three readers; each reader's return path."""
    project.write_config(
        "smtp",
        {"host": smtp.host, "port": smtp.port, "security": "none"},
        extra="email:\n  return_path_domain: bounce.news.example.org\n" + extra,
    )
    built = project.cli("build", "--json")
    assert built.exit_code == 0, built.output
    edition = str(json.loads(built.stdout)["id"])
    assert project.cli("approve", edition, "--by", "Editor").exit_code == 0
    assert project.cli("send", edition).exit_code == 0
    return {m.rcpt_tos[0]: m.mail_from for m in smtp.messages}


def state(project: Project, email: str) -> str:
    shown = project.cli("subscribers", "show", email)
    assert shown.exit_code == 0, shown.output
    return str(json.loads(shown.stdout)["subscriber"]["state"])


def warnings(output: str) -> list[str]:
    """The tick's warning lines about the bounce mailboxes."""
    return [line for line in output.splitlines() if "warning: bounces" in line]


def test_tick_reads_the_mailbox_over_tls_and_moves_what_it_stored(
    project: Project, smtp_server: SMTPSink, imap: IMAPServer, tls_cert: tuple[str, str]
) -> None:
    paths = send_edition(project, smtp_server, imap_config(imap.port, tls_cert[0]))
    imap.deliver(dsn("anna.s@forward.example", bounce_to=paths["anna@example.org"]))
    imap.deliver(arf("ben@example.net"))
    imap.deliver(b"")  # not a mail: named, and moved so that it cannot hold up every tick
    first = project.cli("tick", env=ENV)
    assert first.exit_code == 0, first.output
    assert "bounces: 2 read from bounces.imap (2 suppressed)" in first.output
    [junk] = warnings(first.output)
    assert "127.0.0.1/INBOX/UID 3" in junk
    assert imap.logins == ["bounces"]
    assert imap.messages("INBOX") == []
    assert len(imap.messages("Processed")) == 3  # made when missing, then filled
    assert state(project, "anna@example.org") == "bounced"
    assert state(project, "ben@example.net") == "complained"
    assert state(project, "dmitri@example.org") == "active"
    second = project.cli("tick", env=ENV)
    assert second.exit_code == 0, second.output
    assert "bounces:" not in second.output
    assert PASSWORD not in first.output + second.output


def test_starttls_and_a_move_that_fails_reads_again_and_counts_once(
    project: Project, smtp_server: SMTPSink, tls_cert: tuple[str, str]
) -> None:
    with IMAPServer(
        user="bounces",
        password=PASSWORD,
        security="starttls",
        cert=tls_cert,
        refuse={"UID COPY"},
    ) as imap:
        config = imap_config(imap.port, tls_cert[0], security="starttls")
        paths = send_edition(project, smtp_server, config)
        mail = dsn(
            "dmitri@example.org",
            bounce_to=paths["dmitri@example.org"],
            status="4.2.2",
            diagnostic="452 4.2.2 Mailbox full",
            action="delayed",
        )
        imap.deliver(mail)
        # The server fails as digest moves the message: what it said is stored already,
        # and the message stays in the folder (never lost).
        first = project.cli("tick", env=ENV)
        assert first.exit_code == 0, first.output
        [line] = warnings(first.output)
        assert "COPY to 'Processed' refused" in line
        assert len(imap.messages("INBOX")) == 1
        imap.refuse.clear()
        second = project.cli("tick", env=ENV)
        assert second.exit_code == 0, second.output
        assert imap.messages("INBOX") == []
        assert imap.messages("Processed") == [mail]
        assert imap.commands.index("STARTTLS") < imap.commands.index("LOGIN")
    shown = json.loads(project.cli("subscribers", "show", "dmitri@example.org").stdout)
    assert [e["kind"] for e in shown["bounces"]] == ["soft"]  # read twice, counted once


def test_a_wrong_password_is_one_warning_and_the_maildir_is_still_read(
    project: Project, smtp_server: SMTPSink, imap: IMAPServer, tls_cert: tuple[str, str]
) -> None:
    maildir = project.root / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = imap_config(imap.port, tls_cert[0]) + "  maildir: Maildir\n"
    send_edition(project, smtp_server, config)
    (maildir / "new" / "1.host").write_bytes(arf("anna@example.org"))
    imap.deliver(arf("ben@example.net"))
    result = project.cli("tick", env={"BOUNCE_IMAP_PASSWORD": "wrong"})
    assert result.exit_code == 0, result.output
    assert len(warnings(result.output)) == 1
    assert "bounces.imap: 127.0.0.1:" in result.output
    assert "login as 'bounces' refused" in result.output
    assert "wrong" not in result.output.replace("warning", "")
    assert "bounces: 1 read from bounces.maildir (1 suppressed)" in result.output
    assert imap.failed_logins == 1
    assert len(imap.messages("INBOX")) == 1  # left for the tick with the right password
    assert state(project, "anna@example.org") == "complained"
    assert state(project, "ben@example.net") == "active"


def test_a_server_that_is_down_is_one_warning(project: Project, tls_cert: tuple[str, str]) -> None:
    project.write_config(extra=imap_config(free_port(), tls_cert[0]))
    result = project.cli("tick", env=ENV)
    assert result.exit_code == 0, result.output
    assert len(warnings(result.output)) == 1, result.output
    [line] = warnings(result.output)
    assert "cannot connect" in line
    assert "built edition 1" in result.output  # the tick did its other work
    assert "check host and port and that the server is up" in line


def test_no_password_variable_is_one_warning(project: Project, tls_cert: tuple[str, str]) -> None:
    project.write_config(extra=imap_config(free_port(), tls_cert[0]))
    result = project.cli("tick")
    assert result.exit_code == 0, result.output
    assert len(warnings(result.output)) == 1, result.output
    [line] = warnings(result.output)
    assert "BOUNCE_IMAP_PASSWORD" in line
    assert "is not set" in line


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_server_without_tls_never_gets_the_password(project: Project, security: str) -> None:
    with IMAPServer(user="bounces", password=PASSWORD, security="none") as imap:
        project.write_config(extra=imap_config(imap.port, None, security=security))
        result = project.cli("tick", env=ENV)
        assert result.exit_code == 0, result.output
        assert len(warnings(result.output)) == 1, result.output
        [line] = warnings(result.output)
        assert ("offers no STARTTLS" if security == "starttls" else "no TLS session") in line
        assert "LOGIN" not in imap.commands


def test_a_certificate_from_an_unknown_ca_is_refused(project: Project, imap: IMAPServer) -> None:
    project.write_config(extra=imap_config(imap.port, None))
    result = project.cli("tick", env=ENV)
    assert result.exit_code == 0, result.output
    assert len(warnings(result.output)) == 1, result.output
    [line] = warnings(result.output)
    assert "TLS certificate rejected" in line
    assert "bounces.imap.ca_file" in line
    assert imap.logins == []
    assert imap.failed_logins == 0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("    security: none\n", "must be tls or starttls"),
        ("    done_folder: INBOX\n", "done_folder must differ from folder"),
        ("    passwrd_env: X\n", "unknown key 'passwrd_env'"),
    ],
)
def test_bad_imap_settings_are_one_line_naming_the_file(
    project: Project, extra: str, says: str
) -> None:
    text = "bounces:\n  imap:\n    host: 127.0.0.1\n    user: u\n    password_env: P\n" + extra
    project.write_config(extra=text)
    result = project.cli("tick")
    assert result.exit_code != 0
    assert says in result.output
    assert "digest.yaml" in result.output
    assert "Traceback" not in result.output
