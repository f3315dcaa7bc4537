"""What the provider HTTP API backends share: options, the key from the environment, the
hardened client (digest.http, so the SSRF rules hold), and the mapping of HTTP answers onto
the send contract. One module per provider (ses, postmark, mailgun, sendgrid) builds on it.
"""

from __future__ import annotations

import base64
import email.policy
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any, ClassVar, NoReturn

from digest.backends.base import Backend, Envelope
from digest.exceptions import (
    BackendError,
    DeadlineExceeded,
    FetchError,
    InDoubtFailure,
    TemporaryFailure,
)
from digest.http import Fetcher, FetchSettings, Response

# Headers the provider writes itself (or that describe the MIME structure we take apart).
_OWN_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "reply-to", "date", "mime-version", "sender"}
    | {"content-type", "content-transfer-encoding", "dkim-signature", "return-path"}
)


class APIBackend(Backend):
    """A backend that POSTs each message (or a batch) to a provider's HTTPS API.

    Options every provider shares: ``endpoint`` (the API's base URL, for a region or a
    test server), ``allow_private`` (let that URL resolve to a private address: tests and
    self-hosted relays only), ``timeout`` and ``key_env`` (the *name* of the environment
    variable holding the API key; the key is read at ``open()``, never stored in an error
    or a log). A 401/403 stops the run (BackendError); 429 and 5xx defer the message
    (TemporaryFailure, with the provider's Retry-After); a lost connection defers it too,
    an answer that never came leaves it in doubt.
    """

    parallel: ClassVar[bool] = True
    shared_options: ClassVar[frozenset[str]] = frozenset(
        {"endpoint", "allow_private", "timeout", "key_env"}
    )
    default_endpoint: ClassVar[str] = ""
    default_key_env: ClassVar[str] = ""
    max_message_bytes: ClassVar[int] = 10_000_000

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        allow_private: bool = False,
        timeout: float = 30.0,
        key_env: str | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(**unknown)
        if not isinstance(allow_private, bool):
            self.fail(f"allow_private must be true or false, not {allow_private!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            self.fail(f"timeout must be a positive number of seconds, not {timeout!r}")
        endpoint = self.default_endpoint if endpoint is None else endpoint
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            self.fail(f"endpoint must be an https:// URL, not {endpoint!r}")
        key_env = self.default_key_env if key_env is None else key_env
        if not isinstance(key_env, str) or not key_env:
            self.fail(f"key_env must name an environment variable, not {key_env!r}")
        self.endpoint = endpoint.rstrip("/")
        self.allow_private = allow_private
        self.timeout = float(timeout)
        self.key_env = key_env
        self._fetcher: Fetcher | None = None
        self._down = False
        # The provider's id of each message accepted, by our Message-ID, until the worker
        # takes it for the ledger (provider_id).
        self.provider_ids: dict[str, str] = {}

    def fail(self, problem: str) -> NoReturn:
        raise BackendError(f"backend {self.name!r}: {problem}")

    @property
    def connected(self) -> bool:
        """False after the API could not be reached or said "too many requests" (the
        worker then pauses this connection a little before the next message)."""
        return not self._down

    def provider_id(self, envelope: Envelope) -> str:
        return self.provider_ids.pop(envelope.message_id, "")

    def secret(self, variable: str, option: str = "key_env") -> str:
        value = os.environ.get(variable, "")
        if not value:
            self.fail(f"environment variable {variable} (named by {option}) is not set")
        return value

    def open(self) -> None:
        self.check_credentials()
        if self._fetcher is None:
            settings = FetchSettings(timeout=self.timeout, deadline=self.timeout, retries=0)
            self._fetcher = Fetcher(settings=settings)

    def check_credentials(self) -> None:
        """Fail now, not on the first message, when the key is missing."""
        self.secret(self.key_env)

    def close(self) -> None:
        fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.close()

    def post(
        self, path: str, *, headers: Mapping[str, str], json_body: object = None, **body: Any
    ) -> Response:
        """POST to ``endpoint + path``; transport failures become the contract's failures."""
        self.open()
        assert self._fetcher is not None
        url = self.endpoint + path
        try:
            answer = self._fetcher.post(
                url, json=json_body, headers=headers, allow_private=self.allow_private, **body
            )
        except DeadlineExceeded as exc:
            self._down = True
            raise InDoubtFailure(f"{self.name}: no answer from the API ({exc})") from exc
        except FetchError as exc:
            text = str(exc)
            if "ConnectError" in text or "cannot resolve" in text:
                self._down = True  # the request never left: simply later
                raise TemporaryFailure(f"{self.name}: {text}") from exc
            if "timed out" in text or "connection failed" in text:
                self._down = True  # lost after the request went out: it may have arrived
                raise InDoubtFailure(f"{self.name}: {text}") from exc
            self.fail(text)  # a refused address or scheme: configuration, not weather
        self._down = answer.status == 429
        return answer

    def check_answer(self, answer: Response, detail: str) -> None:
        """Raise what a whole-request failure means; return for 2xx and for 4xx answers
        the provider module reads itself (per-recipient errors)."""
        status = answer.status
        if status in (401, 403):
            self.fail(f"the API refused the key from {self.key_env} ({status}: {detail})")
        if status == 429 or status >= 500:
            raise TemporaryFailure(
                f"{self.name}: {status} {detail}".rstrip(),
                code=status,
                retry_after=retry_after(answer),
            )
        if 300 <= status < 400:
            self.fail(f"the API answered {status} (a redirect); check endpoint")

    def check_size(self, envelope: Envelope) -> None:
        if len(envelope.data) > self.max_message_bytes:
            self.fail(
                f"the message to {envelope.recipient} is {len(envelope.data):,} bytes, over "
                f"the provider's limit of {self.max_message_bytes:,}; make the edition smaller"
            )


def retry_after(answer: Response) -> float | None:
    """The provider's Retry-After (seconds), if it gave one we can read."""
    value = answer.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    reset = answer.headers.get("x-ratelimit-reset", "").strip()  # SendGrid: epoch seconds
    if reset.isdigit() and int(reset) > time.time():
        return float(int(reset) - int(time.time()))
    return None


def json_of(answer: Response) -> Any:
    try:
        return json.loads(answer.body or b"null")
    except ValueError:
        return None


@dataclass
class Parts:
    """A built digest taken apart for a provider that wants fields, not MIME."""

    sender: str
    subject: str
    text: str = ""
    html: str = ""
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[dict[str, str]] = field(default_factory=list)


def parts(data: bytes) -> Parts:
    """From, Subject, the text and HTML bodies, the headers to keep (List-Unsubscribe,
    Message-ID, ...) and any attachment or inline image of a serialised message.

    Parsed with the compat32 policy and decoded here: four times faster than the default
    policy's objects, and this runs once per reader."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    out = Parts(sender=_address(msg["From"]), subject=_header(msg["Subject"]))
    out.reply_to = _address(msg["Reply-To"])
    for name, value in msg.items():
        if name.lower() not in _OWN_HEADERS:
            out.headers[name] = " ".join(str(value).split())  # unfolded, as written
    for part in msg.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        inline = part.get("Content-Disposition") is None
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if kind in ("text/plain", "text/html") and inline:
            text = content.decode(part.get_content_charset() or "us-ascii", "replace")
            text = text.replace("\r\n", "\n")
            if kind == "text/plain" and not out.text:
                out.text = text
                continue
            if kind == "text/html" and not out.html:
                out.html = text
                continue
        out.attachments.append(
            {
                "name": part.get_filename() or "attachment",
                "type": kind,
                "content": base64.b64encode(content).decode("ascii"),
                "content_id": str(part["Content-ID"] or "").strip().strip("<>"),
            }
        )
    return out


def _address(value: str | None) -> str:
    """``Name <address>`` with the name decoded, quoted when it holds a comma or the like."""
    name, address = parseaddr(str(value or ""))
    name = _header(name).replace("\\", "").replace('"', "")
    if not name:
        return address
    return (
        f'"{name}" <{address}>' if any(c in name for c in ",;:<>@()[].") else f"{name} <{address}>"
    )


def _header(value: str | None) -> str:
    """A header's text with RFC 2047 encoded words decoded and its folding undone."""
    if value is None:
        return ""
    return " ".join(str(make_header(decode_header(str(value)))).split())
