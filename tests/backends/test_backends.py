"""One contract suite run against every delivery backend, then each backend's own cases."""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from digest.backends import memory
from digest.backends.base import Backend, Envelope, load_backend
from digest.backends.console import SEPARATOR, ConsoleBackend
from digest.backends.discard import DiscardBackend
from digest.backends.memory import MemoryBackend
from digest.backends.outbox import OutboxBackend
from digest.backends.smtp import SMTPBackend
from digest.exceptions import (
    BackendError,
    InDoubtFailure,
    PermanentFailure,
    TemporaryFailure,
)
from digest.testing.contract import SENDER, BackendContract, envelope
from digest.testing.smtp import SMTPSink, free_port

from conftest import Project, make_cert

PASSWORD = "s3cret-Pa55word"  # must never show up in an error


def smtp_options(sink: SMTPSink, **extra: Any) -> dict[str, Any]:
    return {"host": sink.host, "port": sink.port, "local_hostname": "client.localhost", **extra}


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


# --------------------------------------------------------------------------- contract suite
# digest.testing.contract is shipped for plug-in authors; every built-in backend passes it.


def _maildir_files(root: Path) -> list[bytes]:
    files = sorted((root / "new").iterdir(), key=lambda p: int(re.findall(r"Q(\d+)", p.name)[0]))
    return [p.read_bytes() for p in files]


def _console_messages(out: str) -> list[bytes]:
    chunks = out.split(SEPARATOR + "\n")[1:]
    return [chunk.split("\n", 1)[1].encode() for chunk in chunks]


class TestSMTPContract(BackendContract):
    name = "smtp"

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        with SMTPSink() as server:
            self.server = server
            yield

    def backend(self, **options: Any) -> Backend:
        return load_backend("smtp", {**smtp_options(self.server), **options})

    def delivered(self) -> list[bytes]:
        return [m.data for m in self.server.messages]

    def lose_connection(self) -> bool:
        self.server.stop()
        return True


class TestOutboxContract(BackendContract):
    name = "outbox"

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.root = tmp_path / "out"

    def backend(self, **options: Any) -> Backend:
        return load_backend("outbox", {"path": self.root, **options})

    def delivered(self) -> list[bytes]:
        return _maildir_files(self.root)


class TestConsoleContract(BackendContract):
    name = "console"

    @pytest.fixture(autouse=True)
    def _capture(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def backend(self, **options: Any) -> Backend:
        return load_backend("console", options)

    def delivered(self) -> list[bytes]:
        return _console_messages(self.capsys.readouterr().out)


class TestMemoryContract(BackendContract):
    name = "memory"

    def backend(self, **options: Any) -> Backend:
        return load_backend("memory", options)

    def delivered(self) -> list[bytes]:
        return [e.data for e in memory.outbox]


class TestDiscardContract(BackendContract):
    name = "discard"
    made: list[DiscardBackend]

    @pytest.fixture(autouse=True)
    def _made(self) -> None:
        self.made = []

    def backend(self, **options: Any) -> Backend:
        made = load_backend("discard", options)
        assert isinstance(made, DiscardBackend)
        self.made.append(made)
        return made

    def delivered(self) -> list[bytes]:
        raise AssertionError("the discard backend keeps nothing to compare")

    def assert_delivered(self, sent: list[Envelope]) -> None:
        # It keeps nothing, so compare what it counted with what it was given.
        assert sum(b.count for b in self.made) == len(sent)
        assert sum(b.bytes for b in self.made) == sum(len(e.data) for e in sent)


def test_load_backend_unknown_name_lists_valid_names() -> None:
    with pytest.raises(BackendError, match="nope") as info:
        load_backend("nope")
    for name in ("console", "memory", "outbox", "smtp"):
        assert name in str(info.value)


# --------------------------------------------------------------------------- smtp


class TestSMTPOptions:
    @pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
    def test_default_port_follows_security(self, security: str, port: int) -> None:
        assert SMTPBackend(security=security).port == port

    @pytest.mark.parametrize(
        ("options", "complaint"),
        [
            ({"security": "ssl"}, "security must be"),
            ({"port": "25"}, "port must be"),
            ({"port": 0}, "port must be"),
            ({"timeout": 0}, "timeout must be"),
            ({"max_messages_per_connection": 0}, "max_messages_per_connection"),
            ({"username_env": "U"}, "both username_env and password_env"),
            ({"tls_verify": "false"}, "tls_verify must be true or false"),
            ({"host": ""}, "host must be"),
        ],
    )
    def test_bad_values_fail_at_construction(self, options: dict[str, Any], complaint: str) -> None:
        with pytest.raises(BackendError, match=complaint):
            SMTPBackend(**options)

    def test_credentials_without_tls_are_refused(self) -> None:
        with pytest.raises(BackendError, match="in clear"):
            SMTPBackend(username_env="SMTP_USER", password_env="SMTP_PASSWORD")
        backend = SMTPBackend(
            username_env="SMTP_USER", password_env="SMTP_PASSWORD", allow_insecure_auth=True
        )
        assert backend.security == "none"


class TestSMTPDelivery:
    def test_delivers_to_the_envelope_recipient(self, sink: SMTPSink) -> None:
        with SMTPBackend(**smtp_options(sink)) as backend:
            backend.send(envelope(1, "bob@example.com"))
        (received,) = sink.messages
        assert received.mail_from == SENDER
        assert received.rcpt_tos == ["bob@example.com"]
        assert BytesParser(policy=email.policy.default).parsebytes(received.data)["Subject"] == (
            "Edition 1"
        )

    def test_mail_options_announce_size_and_8bit(self, sink: SMTPSink) -> None:
        utf8, ascii_only = envelope(1), envelope(2, body="plain ascii\n")
        with SMTPBackend(**smtp_options(sink)) as backend:
            backend.send(utf8)
            backend.send(ascii_only)
        assert sink.mail_options == [
            [f"SIZE={len(utf8.data)}", "BODY=8BITMIME"],
            [f"SIZE={len(ascii_only.data)}"],
        ]

    def test_dot_stuffing_and_final_crlf(self, sink: SMTPSink) -> None:
        data = b"Subject: dots\r\n\r\n.\r\n.x\r\n..y\r\nno final newline"
        with SMTPBackend(**smtp_options(sink)) as backend:
            backend.send(Envelope(SENDER, "a@example.com", data, "<d@example>"))
        assert sink.messages[0].data == data + b"\r\n"

    def test_550_is_permanent_and_the_connection_stays_usable(self, sink: SMTPSink) -> None:
        sink.reject["gone@example.com"] = 550
        with SMTPBackend(**smtp_options(sink)) as backend:
            with pytest.raises(PermanentFailure) as info:
                backend.send(envelope(1, "gone@example.com"))
            backend.send(envelope(2, "bob@example.com"))
        assert info.value.code == 550
        assert "gone@example.com" in str(info.value)
        assert [m.rcpt_tos for m in sink.messages] == [["bob@example.com"]]
        assert sink.connections == 1

    def test_451_is_temporary_and_the_connection_stays_usable(self, sink: SMTPSink) -> None:
        sink.reject["busy@example.com"] = 451
        with SMTPBackend(**smtp_options(sink)) as backend:
            with pytest.raises(TemporaryFailure) as info:
                backend.send(envelope(1, "busy@example.com"))
            backend.send(envelope(2))
        assert info.value.code == 451
        assert len(sink.messages) == 1
        assert sink.connections == 1

    def test_421_drops_the_connection_and_the_next_send_reconnects(self, sink: SMTPSink) -> None:
        sink.reject["closing@example.com"] = 421
        with SMTPBackend(**smtp_options(sink)) as backend:
            backend.send(envelope(1))
            with pytest.raises(TemporaryFailure) as info:
                backend.send(envelope(2, "closing@example.com"))
            backend.send(envelope(3))
        assert info.value.code == 421
        assert [m.connection for m in sink.messages] == [1, 2]

    def test_hangup_before_the_data_is_temporary(self, sink: SMTPSink) -> None:
        sink.hangup["drop@example.com"] = "rcpt"
        with SMTPBackend(**smtp_options(sink)) as backend:
            with pytest.raises(TemporaryFailure, match="before the message"):
                backend.send(envelope(1, "drop@example.com"))
            backend.send(envelope(2))
        assert len(sink.messages) == 1

    def test_hangup_after_the_final_dot_is_in_doubt(self, sink: SMTPSink) -> None:
        sink.hangup["doubt@example.com"] = "data"
        with SMTPBackend(**smtp_options(sink)) as backend:
            with pytest.raises(InDoubtFailure, match="may have accepted"):
                backend.send(envelope(1, "doubt@example.com"))
            backend.send(envelope(2))
        assert [m.rcpt_tos for m in sink.messages] == [["doubt@example.com"], ["alice@example.com"]]
        assert [m.connection for m in sink.messages] == [1, 2]

    def test_timeout_after_the_final_dot_is_in_doubt(self, sink: SMTPSink) -> None:
        sink.hangup["slow@example.com"] = "stall"
        with SMTPBackend(**smtp_options(sink, timeout=0.2)) as backend:
            with pytest.raises(InDoubtFailure, match="timed out"):
                backend.send(envelope(1, "slow@example.com"))
            backend.send(envelope(2))
        assert [m.connection for m in sink.messages] == [1, 2]

    def test_server_gone_is_temporary(self) -> None:
        sink = SMTPSink()
        with sink:
            backend = SMTPBackend(**smtp_options(sink))
            backend.send(envelope(1))
        with pytest.raises(TemporaryFailure):
            backend.send(envelope(2))  # the open connection was cut
        with pytest.raises(TemporaryFailure, match=f"127.0.0.1:{sink.port}"):
            backend.send(envelope(3))  # nothing listens any more
        backend.close()
        assert len(sink.messages) == 1

    def test_open_on_a_dead_port_is_a_deferral_naming_host_and_port(self) -> None:
        port = free_port()
        backend = SMTPBackend(host="127.0.0.1", port=port, local_hostname="client.localhost")
        with pytest.raises(TemporaryFailure, match=f"127.0.0.1:{port}"):
            backend.open()
        assert not backend.connected
        with pytest.raises(TemporaryFailure):
            backend.send(envelope())

    def test_reconnects_after_max_messages_per_connection(self, sink: SMTPSink) -> None:
        with SMTPBackend(**smtp_options(sink, max_messages_per_connection=2)) as backend:
            for n in range(5):
                backend.send(envelope(n))
        assert [m.connection for m in sink.messages] == [1, 1, 2, 2, 3]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TEST_SMTP_USER", "editor")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    return {"username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD"}


def _all_text(exc: BaseException) -> str:
    """The message of ``exc`` and of every exception chained to it."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        parts.append(f"{current!r} {current}")
        current = current.__cause__ or current.__context__
    return " ".join(parts)


class TestSMTPSecurity:
    def test_starttls_login_and_send(self, cert: tuple[str, str], secrets: dict[str, str]) -> None:
        with SMTPSink(security="starttls", cert=cert, credentials=("editor", PASSWORD)) as sink:
            options = smtp_options(sink, security="starttls", tls_verify=False, **secrets)
            with SMTPBackend(**options) as backend:
                backend.send(envelope())
        assert sink.logins == ["editor"]
        assert sink.messages[0].data == envelope().data

    def test_implicit_tls(self, cert: tuple[str, str]) -> None:
        with (
            SMTPSink(security="tls", cert=cert) as sink,
            SMTPBackend(**smtp_options(sink, security="tls", tls_verify=False)) as backend,
        ):
            backend.send(envelope())
        assert len(sink.messages) == 1

    def test_unverifiable_certificate_is_a_backend_error(self, cert: tuple[str, str]) -> None:
        with (
            SMTPSink(security="tls", cert=cert) as sink,
            pytest.raises(BackendError, match="certificate rejected"),
        ):
            SMTPBackend(**smtp_options(sink, security="tls")).open()

    def test_starttls_not_offered(self, sink: SMTPSink) -> None:
        with pytest.raises(BackendError, match="STARTTLS"):
            SMTPBackend(**smtp_options(sink, security="starttls")).open()

    def test_wrong_password_never_shows(
        self, cert: tuple[str, str], secrets: dict[str, str]
    ) -> None:
        with SMTPSink(security="starttls", cert=cert, credentials=("editor", "other")) as sink:
            backend = SMTPBackend(
                **smtp_options(sink, security="starttls", tls_verify=False, **secrets)
            )
            with pytest.raises(BackendError, match="login refused") as opened:
                backend.open()
            with pytest.raises(BackendError, match="login refused") as sent:
                backend.send(envelope())
        for info in (opened, sent):
            assert "TEST_SMTP_PASSWORD" in str(info.value)
            assert PASSWORD not in _all_text(info.value)
        assert not sink.messages

    def test_missing_secret_names_the_variable(
        self, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TEST_SMTP_USER", "editor")
        monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
        options = smtp_options(
            sink,
            username_env="TEST_SMTP_USER",
            password_env="TEST_SMTP_PASSWORD",
            allow_insecure_auth=True,
        )
        with pytest.raises(BackendError, match=r"TEST_SMTP_PASSWORD .* is not set"):
            SMTPBackend(**options).open()


# --------------------------------------------------------------------------- outbox


class TestOutbox:
    def test_maildir_layout(self, tmp_path: Path) -> None:
        root = tmp_path / "mail"
        with OutboxBackend(path=str(root)) as backend:
            backend.send(envelope(1))
            backend.send(envelope(2))
        assert sorted(p.name for p in root.iterdir()) == ["cur", "new", "tmp"]
        assert list((root / "tmp").iterdir()) == []
        names = [p.name for p in (root / "new").iterdir()]
        assert len(set(names)) == 2
        assert all(re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.\S+", name) for name in names)

    def test_folder_format_numbers_on_across_runs(self, tmp_path: Path) -> None:
        with OutboxBackend(path=tmp_path, format="folder") as backend:
            backend.send(envelope(1))
            backend.send(envelope(2, "../../etc/passwd"))
        with OutboxBackend(path=tmp_path, format="folder") as backend:
            backend.send(envelope(3, "bob@example.com"))
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "000001-alice@example.com.eml",
            "000002-_.._etc_passwd.eml",
            "000003-bob@example.com.eml",
        ]
        assert (tmp_path / "000003-bob@example.com.eml").read_bytes() == envelope(
            3, "bob@example.com"
        ).data

    @pytest.mark.parametrize("fmt", ["maildir", "folder"])
    def test_files_parse_back(self, tmp_path: Path, fmt: str) -> None:
        with OutboxBackend(path=tmp_path, format=fmt) as backend:
            backend.send(envelope(7))
        (path,) = [p for p in tmp_path.rglob("*") if p.is_file()]
        parsed = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
        assert parsed["Subject"] == "Edition 7"
        assert parsed.get_content().startswith("Hello 7, café")

    @pytest.mark.parametrize(
        ("options", "complaint"),
        [({}, "path is required"), ({"path": "x", "format": "mbox"}, "format must be")],
    )
    def test_bad_options(self, options: dict[str, Any], complaint: str) -> None:
        with pytest.raises(BackendError, match=complaint):
            OutboxBackend(**options)

    def test_path_that_is_a_file_names_the_path(self, tmp_path: Path) -> None:
        blocker = tmp_path / "blocker"
        blocker.write_text("not a folder")
        with pytest.raises(BackendError, match="blocker"):
            OutboxBackend(path=blocker).open()


# --------------------------------------------------------------------------- console


class TestConsole:
    def test_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        ConsoleBackend(stream="stderr").send(envelope())
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"from {SENDER} to alice@example.com" in captured.err
        assert _console_messages(captured.err) == [envelope().data]

    def test_bad_stream(self) -> None:
        with pytest.raises(BackendError, match="stdout or stderr"):
            ConsoleBackend(stream="printer")

    def test_output_is_captured_by_clirunner(self) -> None:
        @click.command()
        def send() -> None:
            with load_backend("console") as backend:
                backend.send(envelope())

        result = CliRunner().invoke(send)
        assert result.exit_code == 0, result.output
        assert _console_messages(result.stdout_bytes.decode()) == [envelope().data]


# --------------------------------------------------------------------------- memory


class TestMemory:
    def setup_method(self) -> None:
        memory.clear()

    def test_scripted_failures(self) -> None:
        backend = MemoryBackend(
            fail_permanent=["Gone@example.com"],
            fail_temporary=["busy@example.com"],
            fail_in_doubt=["doubt@example.com"],
        )
        with pytest.raises(PermanentFailure) as permanent:
            backend.send(envelope(1, "gone@EXAMPLE.com"))
        with pytest.raises(TemporaryFailure) as temporary:
            backend.send(envelope(2, "busy@example.com"))
        with pytest.raises(InDoubtFailure):
            backend.send(envelope(3, "doubt@example.com"))
        backend.send(envelope(4))
        assert (permanent.value.code, temporary.value.code) == (550, 451)
        assert [e.recipient for e in memory.outbox] == ["doubt@example.com", "alice@example.com"]

    def test_clear_empties_the_same_list(self) -> None:
        seen = memory.outbox
        MemoryBackend().send(envelope())
        memory.clear()
        assert seen is memory.outbox
        assert seen == []

    def test_address_in_two_lists(self) -> None:
        with pytest.raises(BackendError, match=r"a@example\.com"):
            MemoryBackend(fail_permanent=["a@example.com"], fail_in_doubt=["A@example.com"])

    def test_a_bare_string_is_not_a_list(self) -> None:
        with pytest.raises(BackendError, match="fail_temporary must be a list"):
            MemoryBackend(fail_temporary="a@example.com")


def test_a_misspelt_discard_option_is_one_line_from_the_cli(project: Project) -> None:
    project.write_config("discard", {"cuont": 1})
    result = project.cli("check")
    assert result.exit_code == 1
    assert "backend 'discard': unknown option(s) cuont; valid: none" in result.output
    assert "Traceback" not in result.output


def test_a_tarpit_banner_runs_into_the_phase_deadline() -> None:
    from digest.testing.faults import FaultServer

    # One byte every 0.3 s: every single read is quick, but the banner takes 8 s.
    with FaultServer(trickle=0.3) as server:
        backend = SMTPBackend(host=server.host, port=server.port, timeout=1.0)
        with pytest.raises(TemporaryFailure, match="cannot connect") as info:
            backend.open()
        assert "timed out" in str(info.value)
        assert not backend.connected


def test_a_421_greeting_is_a_deferral_with_its_code() -> None:
    from digest.testing.faults import FaultServer

    with FaultServer(greet_421=1.0) as server:
        backend = SMTPBackend(host=server.host, port=server.port, timeout=5)
        with pytest.raises(TemporaryFailure, match="421") as info:
            backend.open()
        assert info.value.code == 421
        with pytest.raises(TemporaryFailure):
            backend.send(envelope())
