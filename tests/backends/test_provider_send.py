"""`digest send` of a small edition through each provider API backend, against its local
fake: every reader once, a refused reader failed and suppressed, a 5xx retried, a 429's
Retry-After honoured by the ledger."""

from __future__ import annotations

import email.policy
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.parser import BytesParser

import pytest

from digest.store.returns import Returns
from digest.testing.providers import TEST_SECRET, ProviderServer

from conftest import NOW, Project
from sending import FAST_RETRY, approved, ledger, rows

KEY = "provider-key-for-a-full-send"
ENV = {
    "ses": "AWS_ACCESS_KEY_ID",
    "postmark": "POSTMARK_SERVER_TOKEN",
    "mailgun": "MAILGUN_API_KEY",
    "sendgrid": "SENDGRID_API_KEY",
}
READERS = {"anna@example.org", "ben@example.net", "dmitri@example.org"}


@pytest.fixture(params=sorted(ENV))
def api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProviderServer]:
    monkeypatch.setenv(ENV[request.param], KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with ProviderServer(request.param, key=KEY) as server:
        yield server


def configure(project: Project, api: ProviderServer, extra: str = FAST_RETRY) -> None:
    options: dict[str, object] = {"endpoint": api.url, "allow_private": True, "timeout": 5}
    if api.provider == "mailgun":
        options["domain"] = api.domain
    project.write_config(api.provider, options, extra=extra)


def test_digest_send_through_the_provider(project: Project, api: ProviderServer) -> None:
    configure(project, api)
    api.reject("ben@example.net")
    api.fail(503)  # the first call fails as a whole: retried within the run
    edition = approved(project)
    result = project.cli("send", str(edition))
    assert result.exit_code == 0, result.output
    assert ledger(project, edition) == {
        "anna@example.org": "sent",
        "ben@example.net": "failed",
        "dmitri@example.org": "sent",
    }
    counts = Counter(r.recipient for r in api.received)
    assert counts == {"anna@example.org": 1, "dmitri@example.org": 1}
    store = project.open_store()
    try:
        assert store.is_suppressed("ben@example.net")  # like an SMTP 5xx: a hard bounce
        assert not store.is_suppressed("anna@example.org")
        # The provider's id of each message is recorded: its events find the delivery.
        for got in api.received:
            found = Returns(store).by_provider_id(got.provider_id)
            assert found is not None
            assert (found.edition_id, found.email) == (edition, got.recipient)
        assert Returns(store).by_provider_id("not-an-id") is None
    finally:
        store.close()

    # What arrived is the digest the ledger recorded: its Message-ID, its unsubscribe headers.
    recorded = {e: str(r["message_id"]) for e, r in rows(project, edition).items()}
    for got in api.received:
        if got.data:
            msg = BytesParser(policy=email.policy.default).parsebytes(got.data)
            headers = {k: str(v) for k, v in msg.items()}
            assert msg.get_body(("html",)) is not None
        elif "personalizations" in got.fields:
            headers = got.fields["headers"]
            assert [c["type"] for c in got.fields["content"]] == ["text/plain", "text/html"]
            assert got.fields["custom_args"]["message_id"] == recorded[got.recipient]
        else:
            headers = {h["Name"]: h["Value"] for h in got.fields["Headers"]}
            assert got.fields["HtmlBody"]
            assert got.fields["Metadata"]["message_id"] == recorded[got.recipient]
        assert headers["Message-ID"] == recorded[got.recipient]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Unsubscribe"].startswith("<https://")


def test_a_429_leaves_the_reader_deferred_until_after_retry_after(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", KEY)
    with ProviderServer("postmark", key=KEY) as api:
        configure(project, api)
        # Every call of this run is refused: how readers spread over connections varies.
        api.fail(429, times=10, retry_after="3600")
        edition = approved(project)
        result = project.cli("send", str(edition))
        assert result.exit_code == 0, result.output
        assert api.received == []
    found = rows(project, edition)
    assert {e: r["state"] for e, r in found.items()} == dict.fromkeys(READERS, "deferred")
    now = datetime.fromisoformat(NOW)
    for row in found.values():
        due = row["next_attempt_at"]
        due = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
        if due.tzinfo is None:
            due = due.replace(tzinfo=now.tzinfo)
        assert due >= now + timedelta(seconds=3600)
        assert "429" in str(row["last_error"])
