"""Mailgun's HTTP API: the MIME digest as built, to /v3/DOMAIN/messages.mime."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any, ClassVar

from digest.backends.api import APIBackend, json_of
from digest.backends.base import Envelope
from digest.exceptions import PermanentFailure

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


class MailgunBackend(APIBackend):
    """Options: ``domain`` (the sending domain set up at Mailgun, required), ``region``
    (``us`` or ``eu``: the base URL; ``endpoint`` overrides it), plus allow_private,
    timeout and key_env (default ``MAILGUN_API_KEY``, sent as basic auth api:KEY)."""

    name: ClassVar[str] = "mailgun"
    options: ClassVar[frozenset[str]] = APIBackend.shared_options | {"domain", "region"}
    default_key_env: ClassVar[str] = "MAILGUN_API_KEY"
    max_message_bytes: ClassVar[int] = 25_000_000  # 25 MB per message

    def __init__(
        self, *, domain: str = "", region: str = "us", endpoint: str | None = None, **rest: Any
    ) -> None:
        super().__init__(endpoint=endpoint or REGIONS.get(region, REGIONS["us"]), **rest)
        if region not in REGIONS:
            self.fail(f"region must be us or eu, not {region!r}")
        if not isinstance(domain, str) or not domain or "/" in domain:
            self.fail(f"domain must be your Mailgun sending domain, not {domain!r}")
        self.domain = domain
        self.region = region

    def send(self, envelope: Envelope) -> None:
        self.check_size(envelope)
        key = self.secret(self.key_env)
        boundary = secrets.token_hex(16)
        body = _form(
            boundary,
            [
                ("to", "", envelope.recipient.encode("utf-8")),
                # Our Message-ID, for Mailgun's webhooks (user-variables come back in them).
                ("v:message_id", "", envelope.message_id.encode("utf-8")),
                ("message", "message.mime", envelope.data),
            ],
        )
        auth = base64.b64encode(f"api:{key}".encode()).decode("ascii")
        answer = self.post(
            f"/v3/{self.domain}/messages.mime",
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            content=body,
        )
        found = json_of(answer)
        detail = str(found.get("message", "")) if isinstance(found, dict) else ""
        detail = detail or answer.body[:200].decode("utf-8", "replace").strip()
        self.check_answer(answer, detail)
        if answer.status == 200 and isinstance(found, dict):
            self.provider_ids[envelope.message_id] = str(found.get("id", ""))
            return
        if answer.status == 400 and re.search(r"\bto\b", detail.lower()):
            raise PermanentFailure(f"mailgun: {envelope.recipient}: {detail}", code=400)
        if answer.status == 413:
            self.fail(f"the message to {envelope.recipient} is too large for Mailgun ({detail})")
        self.fail(f"the API answered {answer.status}: {detail or 'an unexpected body'}")


def _form(boundary: str, fields: list[tuple[str, str, bytes]]) -> bytes:
    """multipart/form-data with ``fields`` (name, file name or "", bytes)."""
    out = b""
    for name, filename, value in fields:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
            head = f"Content-Disposition: {disposition}\r\nContent-Type: message/rfc822\r\n"
        else:
            head = f"Content-Disposition: {disposition}\r\n"
        out += f"--{boundary}\r\n{head}\r\n".encode() + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()
