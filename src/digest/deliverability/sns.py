"""Amazon SES bounce and complaint notifications, delivered by SNS.

An SNS message is signed with the key of a certificate SNS publishes; the message names
the certificate's URL, so the URL itself is untrusted: it is fetched only over https from
``sns.<region>.amazonaws.com`` (rebuilt from the parts checked, so no userinfo, port or
query trick reaches the fetcher), and the signature (SignatureVersion 1: SHA1withRSA, 2:
SHA256withRSA) is checked over the canonical string of the message's fields. Only topics
named in ``bounces.sns_topics`` are taken: anyone can own an SNS topic.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.deliverability.hooks import HookEvent, angle, load_json, plain
from digest.exceptions import WebhookError

PROVIDER = "ses"
SNS_HOST = re.compile(r"sns\.[a-z]{2}(-[a-z]+)+-\d{1,2}\.amazonaws\.com")
CERT_PATH = re.compile(r"/[A-Za-z0-9._/-]{1,200}\.pem")
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True, slots=True)
class Message:
    """A verified SNS message: its type, and what to do about it."""

    type: str  # Notification, SubscriptionConfirmation, UnsubscribeConfirmation
    message_id: str
    topic: str
    subscribe_url: str = ""  # checked and rebuilt: safe to fetch
    events: tuple[HookEvent, ...] = ()


def sns_url(url: str, *, port: int | None = None, cert: bool) -> str:
    """``url`` rebuilt from its checked parts: https, an sns.<region>.amazonaws.com host,
    and a .pem path (``cert``) or the ConfirmSubscription query; WebhookError otherwise.

    ``port`` is the port the URL must name (None: none, https's own): tests serve the
    host from a local port.
    """
    try:
        parts = urlsplit(url)
        given_port = parts.port
    except ValueError:
        raise WebhookError(f"ses: refused URL {url[:200]!r} (not a URL)") from None
    host = parts.hostname or ""
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.password is not None
        or not SNS_HOST.fullmatch(host)
        or given_port != port
        or "\\" in url
    ):
        raise WebhookError(
            f"ses: refused URL {url[:200]!r} (not https://sns.<region>.amazonaws.com)"
        )
    where = host if port is None else f"{host}:{port}"
    if cert:
        if not CERT_PATH.fullmatch(parts.path) or parts.query or parts.fragment:
            raise WebhookError(f"ses: refused certificate URL {url[:200]!r} (not a .pem path)")
        return f"https://{where}{parts.path}"
    if "Action=ConfirmSubscription" not in parts.query.split("&") or parts.fragment:
        raise WebhookError(f"ses: refused SubscribeURL {url[:200]!r} (not a confirmation)")
    return f"https://{where}/?{parts.query}"


class Verifier:
    """Checks SNS messages; ``fetch`` GETs a (checked) certificate URL and returns its bytes.

    Certificates are kept by URL, so SNS's steady stream costs one fetch per certificate.
    """

    def __init__(
        self,
        *,
        topics: Collection[str],
        fetch: Callable[[str], bytes],
        port: int | None = None,
    ) -> None:
        self.topics = frozenset(topics)
        self.fetch = fetch
        self.port = port
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def verify(self, body: bytes, *, now: datetime) -> Message:
        data = load_json(body, PROVIDER)
        if not isinstance(data, dict) or not isinstance(data.get("Type"), str):
            raise WebhookError("ses: not an SNS message (no Type)", status=400)
        kind = data["Type"]
        fields = NOTIFICATION_FIELDS if kind == "Notification" else SUBSCRIPTION_FIELDS
        if kind not in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
            raise WebhookError(f"ses: unknown SNS message type {kind[:40]!r}", status=400)
        topic = plain(data.get("TopicArn"))
        if topic not in self.topics:
            raise WebhookError(f"ses: topic {topic!r} is not in bounces.sns_topics")
        self._check_signature(data, fields, now)
        message_id = plain(data.get("MessageId"))
        if kind != "Notification":
            url = sns_url(plain(data.get("SubscribeURL"), 2000), port=self.port, cert=False)
            return Message(kind, message_id, topic, subscribe_url=url)
        return Message(kind, message_id, topic, events=tuple(_ses(data.get("Message"), message_id)))

    def _check_signature(
        self, data: dict[str, Any], fields: tuple[str, ...], now: datetime
    ) -> None:
        version = plain(data.get("SignatureVersion"))
        if version not in HASHES:
            raise WebhookError(f"ses: unknown SignatureVersion {version!r}")
        canonical = "".join(
            f"{name}\n{data[name]}\n" for name in fields if isinstance(data.get(name), str)
        )
        url = sns_url(plain(data.get("SigningCertURL"), 2000), port=self.port, cert=True)
        key = self._key(url, now)
        try:
            signature = base64.b64decode(plain(data.get("Signature"), 4000), validate=True)
            key.verify(signature, canonical.encode(), padding.PKCS1v15(), HASHES[version]())
        except (binascii.Error, ValueError, InvalidSignature):
            raise WebhookError("ses: the SNS signature does not match its certificate") from None

    def _key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is None:
            try:
                cert = x509.load_pem_x509_certificate(self.fetch(url))
            except ValueError:
                raise WebhookError(f"ses: {url} is not a PEM certificate") from None
            found = cert.public_key()
            if not isinstance(found, rsa.RSAPublicKey):
                raise WebhookError(f"ses: {url} holds no RSA key")
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise WebhookError(f"ses: the certificate at {url} is not valid now")
            key = self._keys[url] = found
        return key


def _ses(message: Any, message_id: str) -> list[HookEvent]:
    """The recipients of an SES notification (notificationType, or eventType when sent
    through a configuration set's event destination)."""
    notice = load_json(message.encode(), PROVIDER) if isinstance(message, str) else None
    if not isinstance(notice, dict):
        raise WebhookError("ses: the notification's Message is not SES JSON", status=400)
    kind = plain(notice.get("notificationType") or notice.get("eventType"))
    common = _object(_object(notice.get("mail")).get("commonHeaders"))
    quoted = angle(plain(common.get("messageId"), 998))
    if kind == "Bounce":
        bounce = _object(notice.get("bounce"))
        hard = plain(bounce.get("bounceType")) == "Permanent"
        subtype = plain(bounce.get("bounceSubType"))
        people = bounce.get("bouncedRecipients")
        verdict = "hard" if hard else "soft"
    elif kind == "Complaint":
        complaint = _object(notice.get("complaint"))
        subtype = plain(complaint.get("complaintFeedbackType")) or "abuse"
        people = complaint.get("complainedRecipients")
        verdict = "not_a_bounce" if subtype == "not-spam" else "complaint"
    else:
        return []  # Delivery, Send, Open, ...: not for the bounce policy
    out = []
    for person in people if isinstance(people, list) else []:
        if not isinstance(person, dict):
            continue
        email = plain(person.get("emailAddress"), 320)
        out.append(
            HookEvent(
                event_id=f"{message_id}:{email.lower()}",
                email=email,
                kind=verdict,
                status=plain(person.get("status"), 20),
                reason=plain(person.get("diagnosticCode")) or subtype,
                message_id=quoted,
            )
        )
    return out


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
