"""The sending engine against real SMTP servers, on SQLite and PostgreSQL: faults, throttling,
streaming, resume, refusals; the ledger and the server's log are the judges."""

from __future__ import annotations

import json
import quopri
from collections import Counter
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.backends import memory
from digest.store.subscribers import SubscriberStore
from digest.store.tables import editions
from digest.testing.faults import FaultServer
from digest.testing.smtp import SMTPSink

from conftest import ROOT, Project, on_a_terminal
from sending import FAST_RETRY, approved, ledger, message_id, project, rows, smtp
from sending import subscribers as _subscribers

__all__ = ["project"]  # the fixture: the shared project on both databases


def test_faults_deliver_everyone_once_and_suppress_hard_bounces(project: Project) -> None:
    emails = _subscribers(project, 300)
    bounced = {emails[7], emails[150], emails[299]}
    with FaultServer(
        seed=7, temp_rcpt=0.05, temp_data=0.05, drop_mid_data=0.01, reject=bounced
    ) as server:
        project.write_config("smtp", smtp(server), extra=FAST_RETRY)
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        assert all(server.faults[k] for k in ("451-rcpt", "451-data", "drop")), server.faults
        counts = Counter(m.rcpt for m in server.messages)
        assert {e for e in emails if counts[e] != 1} == bounced, (
            result.output,
            server.faults,
            sorted(Counter(counts[e] for e in emails).items()),
        )
        assert all(counts[e] == 0 for e in bounced)
        states = ledger(project, edition)
        assert {e for e, s in states.items() if s == "failed"} == bounced
        assert {e for e, s in states.items() if s == "sent"} == set(emails) - bounced
        assert "is sent: sent 297, failed 3" in result.stdout
        assert f"in doubt {server.faults['drop']}" in result.stdout  # counted, and resent

        # A later edition skips the hard bounces without talking to the server about them.
        later = f"sources:\n  - name: Late\n    url: {project.feeds.url('/later.rss')}\n"
        project.write_config(
            "smtp", smtp(server), extra=FAST_RETRY, sources=later + "    allow_private: true\n"
        )
        second = approved(project)
        before = server.faults["550"]
        result = project.cli("send", str(second))
        assert result.exit_code == 0, result.output
        assert server.faults["550"] == before
        # The bounces became the subscribers' state, so they are not recipients any more.
        assert not bounced & set(ledger(project, second))
        store = project.open_store()
        try:
            states = {r.email: r.state.value for r in SubscriberStore(store).listing()}
        finally:
            store.close()
        assert {e for e, s in states.items() if s == "bounced"} == bounced
        assert Counter(m.rcpt for m in server.messages)[emails[0]] == 2


def test_throttle_never_exceeds_the_window(project: Project) -> None:
    _subscribers(project, 50)
    with FaultServer() as server:
        project.write_config(
            "smtp",
            smtp(server),
            extra="send:\n  connections: 4\n  window_messages: 20\n  window_seconds: 2\n",
        )
        edition = approved(project)
        assert project.cli("send", str(edition)).exit_code == 0
        times = sorted(m.at for m in server.messages)
    assert len(times) == 50
    busiest = max(sum(1 for t in times if start <= t < start + 2.0) for start in times)
    assert busiest <= 20
    assert busiest >= 15  # the limit is used, not just respected by sending slowly


def test_in_doubt_skip_records_unknown(project: Project) -> None:
    emails = _subscribers(project, 5)
    project.write_config(
        "memory", {"fail_in_doubt": [emails[2]]}, extra="send:\n  in_doubt: skip\n"
    )
    edition = approved(project)
    result = project.cli("send", str(edition))
    assert result.exit_code == 4, result.output  # documented: done, with deliveries in doubt
    assert "unknown 1, in doubt 1" in result.stdout
    assert ledger(project, edition)[emails[2]] == "unknown"
    assert json.loads(project.cli("status", str(edition), "--json").stdout)["state"] == "sent"


def test_deferred_rows_wait_for_the_next_run_then_expire(project: Project) -> None:
    emails = _subscribers(project, 3)
    project.write_config(
        "memory",
        {"fail_temporary": [emails[1]]},
        extra=(
            "send:\n  retry_base_seconds: 3600\n  retry_max_seconds: 7200\n"
            "  retry_deadline_hours: 1\n"
        ),
    )
    edition = approved(project)
    first = project.cli("send", str(edition))
    assert first.exit_code == 0
    assert "run `digest send" in first.stdout
    assert ledger(project, edition)[emails[1]] == "deferred"
    assert json.loads(project.cli("status", str(edition), "--json").stdout)["state"] == "sending"
    # Two hours later the retry deadline has passed: the row fails as expired.
    later = project.cli("send", str(edition), env={"DIGEST_NOW": "2026-11-24T08:00:00+00:00"})
    assert later.exit_code == 0, later.output  # the edition went out; one row failed
    assert ledger(project, edition)[emails[1]] == "failed"
    assert "is sent: sent 0, failed 1" in later.stdout
    assert str(rows(project, edition)[emails[1]]["last_error"]).startswith(
        "expired: retry deadline passed"
    )


def test_a_resend_after_doubt_carries_the_same_message_id(project: Project) -> None:
    emails = _subscribers(project, 3)
    # emails[0]: the server takes the message and hangs up before its reply; emails[1]: it
    # never replies (a 250 after our timeout would be a duplicate). Both are in doubt.
    with SMTPSink(hangup={emails[0]: "data", emails[1]: "stall"}) as sink:
        # No waiting for retries in the run: the clock is frozen, so a retry due within the
        # run's window would be waited for in real time.
        extra = "send:\n  connections: 2\n  retry_base_seconds: 3600\n  retry_in_run_seconds: 0\n"
        project.write_config("smtp", {**smtp(sink), "timeout": 1}, extra=extra)
        edition = approved(project)
        first = project.cli("send", str(edition))
        assert first.exit_code == 0, first.output  # in doubt, to be resent: not unknown
        assert "in doubt 2" in first.stdout
        assert "resent (a reader may get two copies)" in first.output
        assert ledger(project, edition) == {
            emails[0]: "deferred",
            emails[1]: "deferred",
            emails[2]: "sent",
        }
        sink.hangup.clear()
        later = project.cli("send", str(edition), env={"DIGEST_NOW": "2026-11-24T09:00:00+00:00"})
        assert later.exit_code == 0, later.output
        copies: dict[str, set[str]] = {}
        for m in sink.messages:
            copies.setdefault(m.rcpt_tos[0], set()).add(message_id(m.data))
        assert Counter(m.rcpt_tos[0] for m in sink.messages)[emails[0]] == 2
        assert all(len(ids) == 1 for ids in copies.values()), copies
        stored = {e: r["message_id"] for e, r in rows(project, edition).items()}
        assert {e: next(iter(ids)) for e, ids in copies.items()} == stored


def test_csv_subscribers_are_streamed(project: Project) -> None:
    emails = _subscribers(project, 40, csv=True)
    project.write_config(extra="")
    text = project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
    project.config.write_text(text)
    edition = approved(project)
    assert project.cli("send", str(edition)).exit_code == 0
    assert sorted(e.recipient for e in memory.outbox) == emails


def test_server_down_at_start_defers_every_row_for_a_later_run(project: Project) -> None:
    _subscribers(project, 5)
    sink = SMTPSink()
    extra = "send:\n  connections: 2\n  retry_base_seconds: 5\n  retry_in_run_seconds: 1\n"
    project.write_config("smtp", {"host": sink.host, "port": sink.port}, extra=extra)
    edition = approved(project)
    result = project.cli("send", str(edition))
    assert result.exit_code == 0, result.output  # a deferral, not the end of the run
    assert "run `digest send" in result.output
    assert set(ledger(project, edition).values()) == {"deferred"}
    assert all("cannot connect" in str(r["last_error"]) for r in rows(project, edition).values())
    with sink:
        later = {"DIGEST_NOW": "2026-11-24T07:00:00+00:00"}
        assert project.cli("send", str(edition), env=later).exit_code == 0
        assert len(sink.messages) == 5
    assert set(ledger(project, edition).values()) == {"sent"}


def test_421_greetings_and_refused_connections_are_retried_not_fatal(project: Project) -> None:
    emails = _subscribers(project, 60)
    with FaultServer(seed=3, greet_421=0.3) as server:
        project.write_config("smtp", _smtp_once(server), extra=FAST_RETRY)
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        assert server.faults["421"] > 0
        assert sorted(m.rcpt for m in server.messages) == emails
    assert set(ledger(project, edition).values()) == {"sent"}


def _smtp_once(server: FaultServer) -> dict[str, object]:
    # One message per connection: every message needs a new greeting.
    return {**smtp(server), "max_messages_per_connection": 1}


def test_a_tarpit_server_defers_instead_of_hanging(project: Project) -> None:
    _subscribers(project, 2)
    with FaultServer(trickle=0.3) as server:
        extra = "send:\n  connections: 2\n  retry_in_run_seconds: 0\n"
        project.write_config("smtp", {**smtp(server), "timeout": 1}, extra=extra)
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        assert "timed out" in str(next(iter(rows(project, edition).values()))["last_error"])
    assert set(ledger(project, edition).values()) == {"deferred"}


def test_dry_run_opens_no_connection(project: Project) -> None:
    _subscribers(project, 3)
    with FaultServer() as server:
        project.write_config("smtp", smtp(server))
        edition = approved(project)
        result = project.cli("send", str(edition), "--dry-run")
        assert result.exit_code == 0, result.output
        assert "would go to 3 subscriber(s)" in result.stdout
        assert server.connections == 0
    assert ledger(project, edition) == {}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=".a= é\n\tz", max_size=400))
def test_quoted_printable_needs_no_dot_stuffing_and_round_trips(text: str) -> None:
    from digest.render.message import _qp

    encoded = _qp(text)
    lines = encoded.split(b"\r\n")
    assert not any(line.startswith(b".") for line in lines)
    assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode() == text


def test_dotted_lines_arrive_intact_over_smtp(project: Project) -> None:
    # A template line starting with "." must survive SMTP (encoded, or stuffed and unstuffed).
    templates = project.root / "tpl"
    templates.mkdir()
    source = (ROOT / "templates" / "digest.txt.j2").read_text()
    (templates / "digest.txt.j2").write_text(".leading dot line\n..two dots\n" + source)
    _subscribers(project, 2)
    with SMTPSink() as sink:
        project.write_config(
            "smtp", {"host": sink.host, "port": sink.port}, extra="templates_dir: tpl\n"
        )
        edition = approved(project)
        assert project.cli("send", str(edition)).exit_code == 0
        for message in sink.messages:
            parsed = BytesParser(policy=policy.default).parsebytes(message.data)
            text = parsed.get_body(("plain",))
            assert text is not None
            lines = text.get_content().splitlines()
            assert lines[0] == ".leading dot line"
            assert lines[1].startswith("..two dots")


def test_progress_lines_when_not_a_terminal(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.cli import progress

    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    _subscribers(project, 30)
    edition = approved(project)
    result = project.cli("send", str(edition))
    assert result.exit_code == 0, result.output
    lines = [x for x in result.stdout.splitlines() if x.startswith(f"edition {edition}: ")]
    assert lines, result.stdout
    assert "sent" in lines[-1]
    assert lines[-1].endswith("/s")


def test_progress_bar_on_a_terminal(project: Project) -> None:
    _subscribers(project, 30)
    edition = approved(project)
    project.write_config("outbox", {"path": str(project.root / "outbox")})
    text = on_a_terminal(project, "send", str(edition))
    assert f"edition {edition}" in text
    assert "30/30" in text  # the bar's M-of-N column
    assert "is sent: sent 30" in text


def test_bad_subscriber_row_at_send_leaves_the_edition_approved(project: Project) -> None:
    _subscribers(project, 3, csv=True)
    project.config.write_text(
        project.config.read_text().replace("subscribers.yaml", "subscribers.csv")
    )
    edition = approved(project)
    csv = project.root / "subscribers.csv"
    csv.write_text(csv.read_text() + "not-an-address,Broken,,\n")
    result = project.cli("send", str(edition))
    assert result.exit_code == 1
    assert f"{csv}:5:" in result.output
    assert "invalid email address" in result.output
    assert json.loads(project.cli("status", str(edition), "--json").stdout)["state"] == "approved"
    assert ledger(project, edition) == {}
    assert memory.outbox == []
    csv.write_text(csv.read_text().replace("not-an-address,Broken,,\n", ""))
    assert project.cli("send", str(edition)).exit_code == 0
    assert len(memory.outbox) == 3


def test_content_changed_after_approval_is_not_sent(project: Project) -> None:
    _subscribers(project, 2)
    edition = approved(project)
    store = project.open_store()
    with store.transaction() as tx:
        tx.conn.execute(
            editions.update().where(editions.c.id == edition).values(content_hash="t", html="x")
        )
    store.close()
    result = project.cli("send", str(edition))
    assert result.exit_code == 1
    assert "differs from what was approved" in result.output
    assert memory.outbox == []
    assert ledger(project, edition) == {}
