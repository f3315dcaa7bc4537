"""Amazon SES bounces and complaints through SNS on `digest serve`: the message signature is
checked against a certificate fetched only from https://sns.<region>.amazonaws.com, the
subscription is confirmed under the same rule, and a replay changes nothing.

The test is its own CA: the sns host's certificate and SNS's signing certificate are made
here, served by a local HTTPS server; the only fake is the DNS answer (every host name
resolves to it, attackers' included, so a refusal is the host rule's, not the network's)."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from digest.app import App
from digest.deliverability.sns import sns_url
from digest.exceptions import WebhookError
from digest.http import Fetcher
from digest.netpin import PinnedTransport
from digest.testing.http import FixtureServer
from digest.web.app import create_app
from digest.web.hooks import Outbound
from digest.web.server import BackgroundServer

from conftest import SECRET, Clock, Project, loopback_client

HOST = "sns.us-east-1.amazonaws.com"
TOPIC = "arn:aws:sns:us-east-1:123456789012:digest-bounces"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"
CONFIG = f"bounces:\n  sns_topics: [{TOPIC}]\n"
NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(
    name: str, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None, signer: rsa.RSAPrivateKey
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1))
        .not_valid_after(datetime(2028, 1, 1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
    return builder.sign(signer, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Sns:
    """The local stand-in for SNS: its HTTPS host, its signing key and certificate."""

    server: FixtureServer
    fetcher: Fetcher
    signing_key: rsa.RSAPrivateKey

    def url(self, path: str, host: str = HOST) -> str:
        return f"https://{host}:{self.server.port}{path}"

    def sign(
        self,
        message: dict[str, Any],
        *,
        version: str = "1",
        key: rsa.RSAPrivateKey | None = None,
        cert_url: str | None = None,
    ) -> dict[str, Any]:
        """``message`` signed the way SNS documents it (the reference algorithm)."""
        fields = NOTIFICATION if message["Type"] == "Notification" else SUBSCRIPTION
        canonical = "".join(f"{f}\n{message[f]}\n" for f in fields if f in message)
        # SignatureVersion 1 is SHA1withRSA: SNS's own choice, checked as it is.
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signature = (key or self.signing_key).sign(
            canonical.encode(), padding.PKCS1v15(), algorithm
        )
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": cert_url or self.url(CERT_PATH),
        }

    def fetched(self) -> list[str]:
        return [path for _, path, _ in self.server.requests]


@pytest.fixture(scope="module")
def sns() -> Iterator[Sns]:
    ca_key, host_key, signing_key = _key(), _key(), _key()
    ca = _cert("digest test CA", ca_key, None, ca_key)
    host = _cert(HOST, host_key, ca, ca_key)
    signing = _cert(HOST, signing_key, ca, ca_key)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    chain = _pem(host) + host_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(chain)
        handle.flush()
        server_tls.load_cert_chain(handle.name)
    client_tls = ssl.create_default_context(cadata=_pem(ca).decode())  # trusts only our CA
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    with (
        FixtureServer(tls=server_tls) as server,
        Fetcher(
            transport=PinnedTransport(limits, client_tls),
            resolver=lambda _host: ["127.0.0.1"],  # the one fake: every name is this server
            is_public=lambda _address: True,
        ) as fetcher,
    ):
        server.route(CERT_PATH, _pem(signing), headers={"Content-Type": "text/plain"})
        server.route("/", b"<ConfirmSubscriptionResponse/>", headers={"Content-Type": "text/xml"})
        yield Sns(server, fetcher, signing_key)


@pytest.fixture
def posting(project: Project, sns: Sns) -> Iterator[Any]:
    project.write_config(extra=CONFIG)
    assert project.cli("subscribers", "sync").exit_code == 0
    with sns.server.lock:
        sns.server.requests.clear()
        sns.server.bodies.clear()
    app = App(project.config, clock=Clock())
    outbound = Outbound(fetcher=sns.fetcher, sns_port=sns.server.port)
    asgi = create_app(app, environ={"DIGEST_SECRET": SECRET}, outbound=outbound)
    with BackgroundServer(asgi) as server, loopback_client(server.url) as http:
        yield lambda message: http.post(
            "/hooks/ses", content=json.dumps(message), headers={"Content-Type": "text/plain"}
        )
    app.close()


def _notification(notice: dict[str, Any], message_id: str) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(notice),
        "Timestamp": "2026-11-24T05:59:00.000Z",
    }


def _bounce(email: str, kind: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
        "mail": {"commonHeaders": {"messageId": "<nothing-digest-sent@news.example.org>"}},
    }


def _complaint(email: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse",
        },
        "mail": {},
    }


def _state(project: Project, email: str) -> str:
    shown = project.cli("subscribers", "show", email)
    assert shown.exit_code == 0, shown.output
    return str(json.loads(shown.stdout)["subscriber"]["state"])


def test_ses_notifications_signed_v1_and_v2_apply_once(
    project: Project, sns: Sns, posting: Any
) -> None:
    hard = sns.sign(_notification(_bounce("anna@example.org"), "m-1"), version="1")
    spam = sns.sign(_notification(_complaint("ben@example.net"), "m-2"), version="2")
    soft = sns.sign(_notification(_bounce("dmitri@example.org", "Transient"), "m-3"))
    answers = [posting(m) for m in (hard, spam, soft, hard, spam)]
    assert [(a.status_code, a.text) for a in answers] == [
        (200, "suppressed\n"),
        (200, "suppressed\n"),
        (200, "counted\n"),
        (200, "replay\n"),
        (200, "replay\n"),
    ]
    assert _state(project, "anna@example.org") == "bounced"
    assert _state(project, "ben@example.net") == "complained"
    assert _state(project, "dmitri@example.org") == "active"
    assert sns.fetched() == [CERT_PATH]  # one fetch per certificate, then kept


def test_a_subscription_is_confirmed_by_fetching_its_subscribe_url(sns: Sns, posting: Any) -> None:
    confirm = sns.url(f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37")
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "s-1",
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": confirm,
        "Timestamp": "2026-11-24T05:00:00.000Z",
    }
    answer = posting(sns.sign(message, version="2"))
    assert (answer.status_code, answer.text) == (200, f"subscribed to {TOPIC}\n")
    assert sns.fetched()[-1] == f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37"


@pytest.mark.parametrize(
    "host",
    ["sns.evil.com", f"{HOST}.evil.com", "sns.us-east-1.amazonaws.co", "evil.amazonaws.com"],
)
def test_a_certificate_or_subscribe_url_on_another_host_is_never_fetched(
    project: Project, sns: Sns, posting: Any, host: str
) -> None:
    # The attacker signs with their own key and names their own certificate's URL.
    attacker = _key()
    forged = sns.sign(
        _notification(_bounce("anna@example.org"), "x-1"),
        key=attacker,
        cert_url=sns.url(CERT_PATH, host=host),
    )
    subscribe = sns.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "x-2",
            "Token": "t",
            "TopicArn": TOPIC,
            "Message": "subscribe",
            "SubscribeURL": sns.url("/?Action=ConfirmSubscription&Token=t", host=host),
            "Timestamp": "2026-11-24T05:00:00.000Z",
        }
    )
    answers = [posting(forged), posting(subscribe)]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].text.startswith("ses: refused URL")
    assert answers[1].text.startswith("ses: refused URL")
    # Every name resolves to the local server, yet only the genuine host was asked: for the
    # genuine certificate (the confirmation is signed right), never for the SubscribeURL.
    assert sns.fetched() == [CERT_PATH]
    assert [h["host"] for _, _, h in sns.server.requests] == [f"{HOST}:{sns.server.port}"]
    assert _state(project, "anna@example.org") == "active"


def test_a_tampered_or_foreign_signature_or_topic_is_refused(
    project: Project, sns: Sns, posting: Any
) -> None:
    signed = sns.sign(_notification(_bounce("ben@example.net"), "t-1"))
    tampered = {**signed, "Message": json.dumps(_bounce("anna@example.org"))}
    other_key = sns.sign(_notification(_bounce("anna@example.org"), "t-2"), key=_key())
    version = {
        **sns.sign(_notification(_bounce("anna@example.org"), "t-3")),
        "SignatureVersion": "3",
    }
    topic = sns.sign({**_notification(_bounce("anna@example.org"), "t-4"), "TopicArn": TOPIC + "x"})
    answers = [posting(m) for m in (tampered, other_key, version, topic)]
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert answers[0].text == "ses: the SNS signature does not match its certificate\n"
    assert answers[2].text == "ses: unknown SignatureVersion '3'\n"
    assert answers[3].text == f"ses: topic '{TOPIC}x' is not in bounces.sns_topics\n"
    assert _state(project, "anna@example.org") == "active"
    assert _state(project, "ben@example.net") == "active"


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.evil.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-1.pem",
        "https://evil.com\\@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/index.html",
        "https://sns.us-east-1.amazonaws.com/x.pem#frag",
        "https://sns.us-east-1.amazonaws.com%2F@evil.com/x.pem",
    ],
)
def test_only_https_sns_hosts_name_a_certificate(url: str) -> None:
    with pytest.raises(WebhookError) as refused:
        sns_url(url, cert=True)
    assert refused.value.status == 403


def test_a_genuine_sns_url_is_rebuilt_from_its_checked_parts() -> None:
    good = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
    assert sns_url(good, cert=True) == good
    confirm = "https://sns.ap-southeast-2.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    assert sns_url(confirm, cert=False) == confirm
    with pytest.raises(WebhookError):
        sns_url("https://sns.ap-southeast-2.amazonaws.com/?Action=Publish&Token=abc", cert=False)
