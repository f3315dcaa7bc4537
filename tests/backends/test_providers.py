"""The provider HTTP API backends (SES, Postmark, Mailgun, SendGrid) against their local
fakes (digest.testing.providers): the shared contract, then each mapping of an answer onto
the ledger's deferred / failed / the run stopping."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from digest.backends import sigv4
from digest.backends.base import Backend, Envelope, load_backend
from digest.exceptions import BackendError, InDoubtFailure, PermanentFailure, TemporaryFailure
from digest.testing.contract import BackendContract, envelope
from digest.testing.providers import TEST_SECRET, ProviderServer

KEY = "k3y-that-must-never-show"
ENV = {
    "ses": "AWS_ACCESS_KEY_ID",
    "postmark": "POSTMARK_SERVER_TOKEN",
    "mailgun": "MAILGUN_API_KEY",
    "sendgrid": "SENDGRID_API_KEY",
}
PROVIDERS = sorted(ENV)


def options(server: ProviderServer, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"endpoint": server.url, "allow_private": True, "timeout": 5}
    if server.provider == "mailgun":
        found["domain"] = server.domain
    return {**found, **extra}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENV.values():
        monkeypatch.setenv(variable, KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture(params=PROVIDERS)
def api(request: pytest.FixtureRequest, keys: None) -> Iterator[ProviderServer]:
    with ProviderServer(request.param, key=KEY) as server:
        yield server


def _essentials(data: bytes) -> tuple[str, str, str, str]:
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("plain",))
    text = body.get_content().replace("\r\n", "\n") if body is not None else ""
    return str(msg["To"]), str(msg["Subject"]), str(msg["Message-ID"]), text


def _fields_essentials(fields: dict[str, Any]) -> tuple[str, str, str, str]:
    """The same four things from a Postmark or SendGrid JSON message."""
    if "personalizations" in fields:  # SendGrid
        to = fields["personalizations"][0]["to"][0]["email"]
        return to, fields["subject"], fields["headers"]["Message-ID"], fields["content"][0]["value"]
    heads = {h["Name"]: h["Value"] for h in fields["Headers"]}
    return fields["To"], fields["Subject"], heads["Message-ID"], fields["TextBody"]


class _Contract(BackendContract):
    @pytest.fixture(autouse=True)
    def _server(self, keys: None) -> Iterator[None]:
        with ProviderServer(self.name, key=KEY) as server:
            self.server = server
            yield

    def backend(self, **extra: Any) -> Backend:
        return load_backend(self.name, options(self.server, **extra))

    def delivered(self) -> list[bytes]:
        return self.server.delivered()

    def lose_connection(self) -> bool:
        self.server.stop()
        return True

    def assert_delivered(self, sent: list[Envelope]) -> None:
        if self.name in ("ses", "mailgun"):  # raw MIME: byte for byte
            super().assert_delivered(sent)
            return
        got = [_fields_essentials(r.fields) for r in self.server.received]
        assert got == [_essentials(e.data) for e in sent]


class TestSESContract(_Contract):
    name = "ses"


class TestPostmarkContract(_Contract):
    name = "postmark"


class TestMailgunContract(_Contract):
    name = "mailgun"


class TestSendGridContract(_Contract):
    name = "sendgrid"


# --------------------------------------------------------------------------- SigV4
# AWS's published Signature Version 4 test suite (docs.aws.amazon.com/general/latest/gr/
# signature-v4-test-suite.html): credentials AKIDEXAMPLE, service "service", us-east-1.

SUITE = {
    "access_key": "AKIDEXAMPLE",
    "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "region": "us-east-1",
    "service": "service",
    "when": datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
}
HOST = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", **HOST}


@pytest.mark.parametrize(
    ("case", "method", "url", "headers", "body", "expected"),
    [
        (
            "get-vanilla",
            "GET",
            "/",
            HOST,
            b"",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "post-vanilla",
            "POST",
            "/",
            HOST,
            b"",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-vanilla-query",
            "POST",
            "/?Param1=value1",
            HOST,
            b"",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            FORM,
            b"Param1=value1",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ],
)
def test_sigv4_matches_aws_published_test_vectors(
    case: str, method: str, url: str, headers: dict[str, str], body: bytes, expected: str
) -> None:
    found, auth = sigv4.signature(
        method,
        "https://example.amazonaws.com" + url,
        headers,
        body,
        **SUITE,  # type: ignore[arg-type]
    )
    assert found == expected, case
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/")


# --------------------------------------------------------------------------- error mapping


def test_a_wrong_key_stops_the_run_and_never_shows_the_key(
    api: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wr0ng-key-not-to-be-shown"
    monkeypatch.setenv(ENV[api.provider], wrong)
    backend = load_backend(api.provider, options(api))
    with pytest.raises(BackendError) as info:
        backend.send(envelope())
    assert type(info.value) is BackendError  # not a deferral: the run stops
    assert ENV[api.provider] in str(info.value)
    assert wrong not in str(info.value)
    assert KEY not in str(info.value)
    assert api.received == []


def test_a_missing_key_variable_fails_at_open_naming_it(
    api: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV[api.provider])
    with pytest.raises(BackendError, match=f"environment variable {ENV[api.provider]}"):
        load_backend(api.provider, options(api)).open()
    assert api.calls == 0


def test_429_with_retry_after_defers_and_pauses_the_connection(api: ProviderServer) -> None:
    api.fail(429, retry_after="120")
    backend = load_backend(api.provider, options(api))
    with pytest.raises(TemporaryFailure) as info:
        backend.send(envelope(1))
    assert info.value.code == 429
    assert info.value.retry_after == 120.0  # the worker's retry is not due before it
    assert backend.connected is False
    backend.send(envelope(2))  # the next try goes through, and the connection is healthy
    assert backend.connected is True
    assert [r.recipient for r in api.received] == ["alice@example.com"]


def test_no_answer_after_the_request_went_out_is_in_doubt(api: ProviderServer) -> None:
    api.fail(0)  # the request is read, then the connection closes without a word
    backend = load_backend(api.provider, options(api))
    with pytest.raises(InDoubtFailure):
        backend.send(envelope(1))
    assert backend.connected is False
    backend.send(envelope(2))
    assert len(api.received) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_defers(api: ProviderServer, status: int) -> None:
    api.fail(status)
    with pytest.raises(TemporaryFailure) as info:
        load_backend(api.provider, options(api)).send(envelope())
    assert info.value.code == status
    assert api.received == []


def test_a_refused_recipient_fails_for_good(api: ProviderServer) -> None:
    """Postmark 406 (inactive), SES MessageRejected, Mailgun and SendGrid's invalid "to":
    PermanentFailure, which the worker records as failed and suppresses (like an SMTP 5xx)."""
    api.reject("bob@example.com")
    backend = load_backend(api.provider, options(api))
    outcomes = list(backend.send_each([envelope(1), envelope(2, "bob@example.com"), envelope(3)]))
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], PermanentFailure)
    assert "bob@example.com" in str(outcomes[1])
    assert [r.recipient for r in api.received] == ["alice@example.com"] * 2


def test_postmark_406_is_the_inactive_recipient_code(keys: None) -> None:
    with ProviderServer("postmark", key=KEY) as api:
        api.reject("gone@example.com")
        with pytest.raises(PermanentFailure, match="inactive recipient") as info:
            load_backend("postmark", options(api)).send(envelope(1, "gone@example.com"))
    assert info.value.code == 406


def test_a_private_endpoint_needs_allow_private(api: ProviderServer) -> None:
    backend = load_backend(api.provider, options(api, allow_private=False))
    with pytest.raises(BackendError, match="non-public address") as info:
        backend.send(envelope())
    assert type(info.value) is BackendError
    assert api.calls == 0


def test_a_message_over_the_providers_size_limit_stops_the_run(api: ProviderServer) -> None:
    backend = load_backend(api.provider, options(api))
    small = envelope()
    limit = type(backend).max_message_bytes  # type: ignore[attr-defined]
    big = Envelope(small.sender, small.recipient, b"x" * (limit + 1), small.message_id)
    with pytest.raises(BackendError, match="over the provider's limit"):
        backend.send(big)
    assert api.calls == 0


def test_the_fake_refuses_what_the_real_api_refuses(keys: None) -> None:
    """The fakes are worth testing against only if they check: an empty batch, a message
    with no body, a SendGrid payload with HTML before text are all refused."""
    import httpx

    with ProviderServer("postmark", key=KEY) as api:
        head = {"X-Postmark-Server-Token": KEY}
        assert httpx.post(api.url + "/email/batch", json=[], headers=head).status_code == 422
        too_many = [{"From": "a@x.org", "To": "b@x.org", "TextBody": "t"}] * 501
        assert httpx.post(api.url + "/email/batch", json=too_many, headers=head).status_code == 422
        answer = httpx.post(
            api.url + "/email/batch", json=[{"From": "a@x.org", "To": "b@x.org"}], headers=head
        )
        assert answer.json()[0]["ErrorCode"] == 300
    with ProviderServer("sendgrid", key=KEY) as api:
        payload = {
            "personalizations": [{"to": [{"email": "b@x.org"}]}],
            "from": {"email": "a@x.org"},
            "subject": "s",
            "content": [{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}],
        }
        answer = httpx.post(
            api.url + "/v3/mail/send", json=payload, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert answer.status_code == 400
    with ProviderServer("ses", key=KEY) as api:
        body = b'{"Content": {"Raw": {"Data": "aGk="}}}'
        headers = sigv4.sign(
            "POST",
            api.url + "/v2/email/outbound-emails",
            body,
            access_key=KEY,
            secret_key="not-the-secret",
            region="us-east-1",
            service="ses",
            when=datetime.now(UTC),
        )
        answer = httpx.post(api.url + "/v2/email/outbound-emails", content=body, headers=headers)
        assert answer.status_code == 403
        assert answer.headers["x-amzn-ErrorType"] == "SignatureDoesNotMatchException"
    assert api.received == []


def test_postmark_sends_a_batch_per_call_up_to_batch_size(keys: None) -> None:
    sent = [envelope(n, f"reader{n}@example.com") for n in range(5)]
    with ProviderServer("postmark", key=KEY) as api:
        backend = load_backend("postmark", options(api, batch_size=2))
        assert list(backend.send_each(iter(sent))) == [None] * 5
        assert api.batch_sizes == [2, 2, 1]
        assert [r.recipient for r in api.received] == [e.recipient for e in sent]
        first = api.received[0].fields
        assert first["MessageStream"] == "broadcast"
        assert first["Metadata"] == {"message_id": sent[0].message_id}


def test_postmark_refuses_a_batch_size_over_500() -> None:
    with pytest.raises(BackendError, match="batch_size must be from 1 to 500"):
        load_backend("postmark", {"batch_size": 501})


def test_mailgun_region_picks_the_base_url() -> None:
    eu = load_backend("mailgun", {"domain": "mg.example.com", "region": "eu"})
    assert eu.endpoint == "https://api.eu.mailgun.net"  # type: ignore[attr-defined]
    with pytest.raises(BackendError, match="region must be us or eu"):
        load_backend("mailgun", {"domain": "mg.example.com", "region": "asia"})
    ses = load_backend("ses", {"region": "eu-west-1"})
    assert ses.endpoint == "https://email.eu-west-1.amazonaws.com"  # type: ignore[attr-defined]


@pytest.mark.parametrize("provider", ["postmark", "sendgrid"])
def test_fields_providers_get_the_decoded_name_subject_and_bodies(
    keys: None, provider: str
) -> None:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = '"Müller, Zeitung" <news@digest.example>'
    msg["To"] = "alice@example.com"
    msg["Subject"] = "Grüße aus Köln: 5 Geschichten"
    msg["Message-ID"] = "<umlaut.1@digest.example>"
    msg["List-Unsubscribe"] = "<https://digest.example/u/abc>"
    msg.set_content("Guten Morgen, café\n")
    msg.add_alternative("<p>Guten Morgen, café</p>", subtype="html")
    sent = Envelope("news@digest.example", "alice@example.com", msg.as_bytes(), msg["Message-ID"])
    with ProviderServer(provider, key=KEY) as api:
        load_backend(provider, options(api)).send(sent)
    got = api.received[0].fields
    if provider == "postmark":
        assert got["From"] == '"Müller, Zeitung" <news@digest.example>'
        assert (got["Subject"], got["TextBody"]) == (
            "Grüße aus Köln: 5 Geschichten",
            "Guten Morgen, café\n",
        )
        assert got["HtmlBody"].startswith("<p>Guten Morgen, café</p>")
    else:
        assert got["from"] == {"email": "news@digest.example", "name": "Müller, Zeitung"}
        assert got["subject"] == "Grüße aus Köln: 5 Geschichten"
        assert [c["value"][:20] for c in got["content"]] == [
            "Guten Morgen, café\n",
            "<p>Guten Morgen, caf",
        ]
