"""Provider webhooks on `digest serve` (Postmark, Mailgun, SendGrid): each request is
checked by its provider's own authentication, the events go through the one bounce policy,
and a replay answers 200 and changes nothing. Each attack has its test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.app import App
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import NOW, SECRET, Clock, Project, loopback_client

PM_AUTH = "postmark-hook:s3cret-pass"
MG_KEY = "key-mailgun-signing-0123456789"
NOW_TS = int(datetime.fromisoformat(NOW).timestamp())
SG_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _public(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


CONFIG = (
    "bounces:\n"
    "  postmark_auth_env: PM_AUTH\n"
    "  mailgun_key_env: MG_KEY\n"
    f"  sendgrid_public_key: {_public(SG_KEY)}\n"
)
ENV = {"DIGEST_SECRET": SECRET, "PM_AUTH": PM_AUTH, "MG_KEY": MG_KEY}


@contextmanager
def _served(project: Project, state_url: str = "") -> Iterator[Any]:
    project.state_url = state_url
    project.write_config(extra=CONFIG)
    assert project.cli("subscribers", "sync").exit_code == 0
    app = App(project.config, clock=Clock())
    with (
        BackgroundServer(create_app(app, environ=ENV)) as server,
        loopback_client(server.url) as http,
    ):
        yield http
    app.close()


def _shown(project: Project, email: str) -> dict[str, Any]:
    shown = project.cli("subscribers", "show", email)
    assert shown.exit_code == 0, shown.output
    return dict(json.loads(shown.stdout))


def _state(project: Project, email: str) -> str:
    return str(_shown(project, email)["subscriber"]["state"])


# Postmark ---------------------------------------------------------------------------------


def _postmark(kind: str, email: str, record_id: int, record: str = "Bounce") -> dict[str, Any]:
    return {
        "RecordType": record,
        "ID": record_id,
        "Type": kind,
        "TypeCode": {"HardBounce": 1, "Transient": 2, "SpamComplaint": 512}[kind],
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": email,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "BouncedAt": "2026-11-24T05:50:00Z",
    }


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_postmark_bounces_and_complaints_apply_once_with_the_right_credentials(
    project: Project, state_url: str
) -> None:
    with _served(project, state_url) as http:
        hard = _postmark("HardBounce", "anna@example.org", 101)
        first = http.post("/hooks/postmark", json=hard, headers=_basic(PM_AUTH))
        again = http.post("/hooks/postmark", json=hard, headers=_basic(PM_AUTH))
        spam = _postmark("SpamComplaint", "ben@example.net", 102, record="SpamComplaint")
        complained = http.post("/hooks/postmark", json=spam, headers=_basic(PM_AUTH))
        soft = _postmark("Transient", "dmitri@example.org", 103)
        counted = http.post("/hooks/postmark", json=soft, headers=_basic(PM_AUTH))
    assert (first.status_code, first.text) == (200, "suppressed\n")
    assert (again.status_code, again.text) == (200, "replay\n")
    assert complained.text == "suppressed\n"
    assert counted.text == "counted\n"
    anna = _shown(project, "anna@example.org")
    assert anna["subscriber"]["state"] == "bounced"
    assert [(b["kind"], b["source"]) for b in anna["bounces"]] == [("hard", "postmark webhook")]
    assert _state(project, "ben@example.net") == "complained"
    assert _state(project, "dmitri@example.org") == "active"


def test_postmark_refuses_wrong_or_missing_credentials(project: Project) -> None:
    hard = _postmark("HardBounce", "anna@example.org", 201)
    with _served(project) as http:
        wrong = http.post("/hooks/postmark", json=hard, headers=_basic("postmark-hook:guess"))
        missing = http.post("/hooks/postmark", json=hard)
        garbled = http.post("/hooks/postmark", json=hard, headers={"Authorization": "Basic %%"})
    assert wrong.status_code == missing.status_code == garbled.status_code == 401
    assert wrong.text == "postmark: wrong or missing Basic credentials\n"
    assert _state(project, "anna@example.org") == "active"


def test_a_webhook_refuses_get_and_oversize_bodies(project: Project) -> None:
    with _served(project) as http:
        get = http.get("/hooks/postmark", headers=_basic(PM_AUTH))
        huge = b'{"RecordType": "Bounce", "pad": "' + b"x" * 1_100_000 + b'"}'
        big = http.post("/hooks/postmark", content=huge, headers=_basic(PM_AUTH))

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
            for _ in range(12):
                yield b" " * 100_000

        streamed = http.post("/hooks/mailgun", content=chunks())
        junk = http.post("/hooks/postmark", content=b"not json", headers=_basic(PM_AUTH))
    assert get.status_code == 405
    assert big.status_code == streamed.status_code == 413
    assert junk.status_code == 400
    assert junk.text == "postmark: the body is not JSON\n"


# Mailgun ----------------------------------------------------------------------------------


def _mailgun(
    event: dict[str, Any], *, token: str, timestamp: int = NOW_TS, key: str = MG_KEY
) -> dict[str, Any]:
    signed = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": str(timestamp), "token": token, "signature": signed},
        "event-data": event,
    }


def _failed(email: str, severity: str = "permanent", event_id: str = "ev1") -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "failed",
        "severity": severity,
        "recipient": email,
        "message": {"headers": {"message-id": "20261124.abc@news.example.org"}},
        "delivery-status": {"code": 550, "description": "5.1.1 mailbox does not exist"},
    }


def test_mailgun_events_apply_once_and_a_reused_token_carries_nothing(
    project: Project, state_url: str
) -> None:
    with _served(project, state_url) as http:
        signed = _mailgun(_failed("anna@example.org"), token="t" * 50)
        first = http.post("/hooks/mailgun", json=signed)
        again = http.post("/hooks/mailgun", json=signed)
        # The signature covers timestamp and token only: a captured request re-used with
        # another event is refused as a replay, and Ben is untouched.
        forged = {**signed, "event-data": _failed("ben@example.net", event_id="ev2")}
        reused = http.post("/hooks/mailgun", json=forged)
        complaint = {"id": "ev3", "event": "complained", "recipient": "dmitri@example.org"}
        complained = http.post("/hooks/mailgun", json=_mailgun(complaint, token="u" * 50))
        soft = _failed("ben@example.net", "temporary", "ev4")
        counted = http.post("/hooks/mailgun", json=_mailgun(soft, token="v" * 50))
    assert (first.status_code, first.text) == (200, "suppressed\n")
    assert (again.status_code, again.text) == (200, "replay\n")
    assert (reused.status_code, reused.text) == (200, "replay\n")
    assert complained.text == "suppressed\n"
    assert counted.text == "counted\n"
    assert _state(project, "anna@example.org") == "bounced"
    assert _state(project, "ben@example.net") == "active"
    assert _state(project, "dmitri@example.org") == "complained"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"key": "key-someone-else"}, "mailgun: the signature does not match the signing key"),
        ({"timestamp": NOW_TS - 3600}, "mailgun: the timestamp is 3600 s off; refused as a replay"),
        ({"timestamp": NOW_TS + 3600}, "mailgun: the timestamp is -3600 s off"),
    ],
)
def test_mailgun_refuses_a_bad_signature_or_a_stale_timestamp(
    project: Project, options: dict[str, Any], expected: str
) -> None:
    with _served(project) as http:
        answer = http.post(
            "/hooks/mailgun", json=_mailgun(_failed("anna@example.org"), token="w" * 50, **options)
        )
    assert answer.status_code == 403
    assert answer.text.startswith(expected)
    assert _state(project, "anna@example.org") == "active"


# SendGrid ---------------------------------------------------------------------------------


def _sendgrid(
    events: list[dict[str, Any]],
    *,
    key: ec.EllipticCurvePrivateKey = SG_KEY,
    timestamp: int = NOW_TS,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
    }


SG_EVENTS = [
    {
        "email": "anna@example.org",
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 no such user",
        "sg_event_id": "sg-1",
        "smtp-id": "<20261124.abc@news.example.org>",
    },
    {"email": "ben@example.net", "event": "spamreport", "sg_event_id": "sg-2"},
    {"email": "dmitri@example.org", "event": "bounce", "type": "blocked", "sg_event_id": "sg-3"},
    {"email": "dmitri@example.org", "event": "delivered", "sg_event_id": "sg-4"},
]


def test_sendgrid_signed_events_apply_once(project: Project, state_url: str) -> None:
    body, headers = _sendgrid(SG_EVENTS)
    with _served(project, state_url) as http:
        first = http.post("/hooks/sendgrid", content=body, headers=headers)
        again = http.post("/hooks/sendgrid", content=body, headers=headers)
    assert (first.status_code, first.text) == (200, "suppressed\nsuppressed\ncounted\n")
    assert (again.status_code, again.text) == (200, "replay\nreplay\nreplay\n")
    assert _state(project, "anna@example.org") == "bounced"
    assert _state(project, "ben@example.net") == "complained"
    dmitri = _shown(project, "dmitri@example.org")
    assert dmitri["subscriber"]["state"] == "active"
    assert [b["action"] for b in dmitri["bounces"]] == ["counted"]


def test_sendgrid_refuses_tampering_another_key_and_stale_timestamps(project: Project) -> None:
    body, headers = _sendgrid(SG_EVENTS)
    tampered = body.replace(b"ben@example.net", b"eve@example.net")
    _, other = _sendgrid(SG_EVENTS, key=OTHER_KEY)
    stale_body, stale = _sendgrid(SG_EVENTS, timestamp=NOW_TS - 600)
    with _served(project) as http:
        answers = [
            http.post("/hooks/sendgrid", content=tampered, headers=headers),
            http.post("/hooks/sendgrid", content=body, headers=other),
            http.post("/hooks/sendgrid", content=stale_body, headers=stale),
            http.post("/hooks/sendgrid", content=body, headers={"Content-Type": "text/json"}),
        ]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert answers[0].text == "sendgrid: the signature does not match the public key\n"
    assert answers[2].text.startswith("sendgrid: the timestamp is 600 s off")
    for email in ("anna@example.org", "ben@example.net", "dmitri@example.org"):
        assert _state(project, email) == "active"


# Configuration ----------------------------------------------------------------------------


def test_endpoints_are_off_unless_configured(project: Project) -> None:
    project.write_config()
    app = App(project.config, clock=Clock())
    asgi = create_app(app, environ={"DIGEST_SECRET": SECRET})
    with BackgroundServer(asgi) as server, loopback_client(server.url) as http:
        answers = [http.post(f"/hooks/{p}", json={}) for p in ("ses", "postmark", "mailgun")]
    app.close()
    assert [a.status_code for a in answers] == [404, 404, 404]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "bounces:\n  mailgun_key_env: MG_MISSING\n",
            "bounces.mailgun_key_env names MG_MISSING, which is not set: set it or remove the key",
        ),
        (
            "bounces:\n  sendgrid_public_key: bm90IGEga2V5\n",
            "bounces.sendgrid_public_key is not a public key",
        ),
    ],
)
def test_serve_refuses_a_webhook_whose_secret_is_missing_or_bad(
    project: Project, extra: str, expected: str
) -> None:
    project.write_config(extra=extra)
    result = project.cli("serve", "--port", "0")
    assert result.exit_code != 0
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
