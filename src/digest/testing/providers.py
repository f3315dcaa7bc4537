"""Local fakes of the provider send APIs (Amazon SES v2, Postmark, Mailgun, SendGrid).

Each checks what the real one checks before it takes a message: the key (a wrong one gets
the provider's own 401/403), the request's shape and required fields, its batch and size
limits. Tests can make it answer 429 with Retry-After or a 5xx (``fail``), or refuse one
recipient the way that provider does (``reject``). ``received`` holds what was accepted.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from digest.backends.sigv4 import signature

Answer = tuple[int, dict[str, str], bytes]
TEST_SECRET = "test-secret"  # noqa: S105 (the fake's made-up SES key)
_LIMITS = {"ses": 40_000_000, "postmark": 10_000_000, "mailgun": 25_000_000, "sendgrid": 30_000_000}


@dataclass(frozen=True)
class Received:
    """One accepted message: the raw MIME (SES, Mailgun) or the JSON fields (Postmark,
    SendGrid), and the id the fake gave it."""

    recipient: str
    provider_id: str
    data: bytes = b""
    fields: dict[str, Any] = field(default_factory=dict)


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


class ProviderServer:
    """``with ProviderServer("postmark", key="k") as api: ... endpoint=api.url``.

    ``key`` is the API key (for SES the access key id, with ``secret`` its secret key);
    ``domain`` is Mailgun's sending domain; ``region`` SES's.
    """

    def __init__(
        self,
        provider: str,
        *,
        key: str = "test-key",
        secret: str = TEST_SECRET,
        domain: str = "mg.example.com",
        region: str = "us-east-1",
    ) -> None:
        handlers: dict[str, Callable[[str, dict[str, str], bytes], Answer]] = {
            "ses": self._ses,
            "postmark": self._postmark,
            "mailgun": self._mailgun,
            "sendgrid": self._sendgrid,
        }
        if provider not in handlers:
            raise ValueError(f"no fake for provider {provider!r}")
        self.provider, self.key, self.secret = provider, key, secret
        self.domain, self.region = domain, region
        self.handle = handlers[provider]
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.calls = 0  # requests answered, accepted or not
        self.batch_sizes: list[int] = []
        self._faults: list[tuple[int, str]] = []
        self._rejected: set[str] = set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # what tests tell it -------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, retry_after: str = "") -> None:
        """Answer the next ``times`` requests with ``status`` (429 carries ``retry_after``);
        status 0 reads the request and hangs up without an answer."""
        with self.lock:
            self._faults += [(status, retry_after)] * times

    def reject(self, address: str) -> None:
        """Refuse ``address`` as this provider refuses a recipient it will not send to."""
        with self.lock:
            self._rejected.add(address.lower())

    def delivered(self) -> list[bytes]:
        return [r.data for r in self.received]

    # the server ---------------------------------------------------------------------------

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.calls += 1
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            status, wait = fault
            extra = {"Retry-After": wait} if wait else {}
            kind = "TooManyRequestsException" if status == 429 else "InternalFailure"
            if self.provider == "ses":
                extra["x-amzn-ErrorType"] = kind
            return _json(status, {"message": "try later", "ErrorCode": status}, extra)
        return self.handle(path, headers, body)

    def _rejects(self, address: str) -> bool:
        with self.lock:
            return address.lower() in self._rejected

    def _take(self, received: Received) -> None:
        with self.lock:
            self.received.append(received)

    def _ses(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        def error(status: int, kind: str, message: str) -> Answer:
            return _json(status, {"message": message}, {"x-amzn-ErrorType": kind})

        if path != "/v2/email/outbound-emails":
            return error(404, "NotFoundException", "no such resource")
        problem = self._sigv4_problem(path, headers, body)
        if problem[0]:
            return error(403, *problem)
        try:
            payload = json.loads(body)
            data = base64.b64decode(payload["Content"]["Raw"]["Data"], validate=True)
        except (ValueError, KeyError, TypeError):
            return error(400, "BadRequestException", "Content.Raw.Data: base64 MIME required")
        if len(data) > _LIMITS["ses"]:
            return error(400, "MessageRejected", "Message length is more than 40 MB")
        to = payload.get("Destination", {}).get("ToAddresses") or []
        if not to or not payload.get("FromEmailAddress"):
            return error(400, "BadRequestException", "a sender and a destination are required")
        if any(self._rejects(a) for a in to):
            return error(400, "MessageRejected", f"Email address is not verified: {to[0]}")
        mid = f"0100{uuid.uuid4().hex}-000000"
        self._take(Received(to[0], mid, data=data))
        return _json(200, {"MessageId": mid})

    def _sigv4_problem(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
        auth = headers.get("authorization", "")
        fields = dict(
            p.strip().split("=", 1) for p in auth.partition(" ")[2].split(",") if "=" in p
        )
        scope = fields.get("Credential", "").split("/")
        if not auth.startswith("AWS4-HMAC-SHA256 ") or len(scope) != 5:
            return "MissingAuthenticationTokenException", "Missing Authentication Token"
        if scope[0] != self.key:
            return "UnrecognizedClientException", "The security token included is invalid."
        try:
            when = datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        except ValueError:
            return "IncompleteSignatureException", "X-Amz-Date is missing or malformed"
        when = when.replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - when).total_seconds()) > 300:
            return "InvalidSignatureException", "Signature expired"
        names = fields.get("SignedHeaders", "").split(";")
        if "host" not in names or scope[2:] != [self.region, "ses", "aws4_request"]:
            return "IncompleteSignatureException", "host must be signed for ses in this region"
        signed = {n: headers.get(n, "") for n in names}
        url = f"http://{headers.get('host', '')}{path}"
        expected, _ = signature(
            "POST",
            url,
            signed,
            body,
            secret_key=self.secret,
            access_key=self.key,
            region=self.region,
            service="ses",
            when=when,
        )
        if expected != fields.get("Signature"):
            return "SignatureDoesNotMatchException", "The request signature does not match"
        return "", ""

    def _postmark(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path != "/email/batch":
            return _json(404, {"ErrorCode": 404, "Message": "not found"})
        if headers.get("x-postmark-server-token") != self.key:
            return _json(401, {"ErrorCode": 10, "Message": "No valid Server API token"})
        if not headers.get("content-type", "").startswith("application/json"):
            return _json(415, {"ErrorCode": 415, "Message": "Content-Type: application/json"})
        try:
            batch = json.loads(body)
        except ValueError:
            return _json(422, {"ErrorCode": 402, "Message": "Invalid JSON"})
        if not isinstance(batch, list) or not 1 <= len(batch) <= 500:
            return _json(422, {"ErrorCode": 300, "Message": "A batch holds 1 to 500 messages"})
        self.batch_sizes.append(len(batch))
        return _json(200, [self._postmark_one(m) for m in batch])

    def _postmark_one(self, m: Any) -> dict[str, Any]:
        def error(code: int, text: str) -> dict[str, Any]:
            return {"ErrorCode": code, "Message": text}

        if not isinstance(m, dict) or not m.get("From") or not m.get("To"):
            return error(300, "Invalid email request: From and To are required")
        if not (m.get("HtmlBody") or m.get("TextBody")):
            return error(300, "Provide either email TextBody or HtmlBody or both.")
        heads = m.get("Headers", [])
        if not isinstance(heads, list) or any(set(h) != {"Name", "Value"} for h in heads):
            return error(300, "Headers must be a list of {Name, Value}")
        if len(json.dumps(m)) > _LIMITS["postmark"]:
            return error(300, "The message is over 10 MB")
        if self._rejects(str(m["To"])):
            return error(406, "You tried to send to recipient(s) marked as inactive.")
        mid = str(uuid.uuid4())
        self._take(Received(str(m["To"]), mid, fields=m))
        return {"ErrorCode": 0, "Message": "OK", "MessageID": mid, "To": m["To"]}

    def _mailgun(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path != f"/v3/{self.domain}/messages.mime":
            return _json(404, {"message": f"Domain not found: {path}"})
        token = base64.b64encode(f"api:{self.key}".encode()).decode()
        if headers.get("authorization") != f"Basic {token}":
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        if len(body) > _LIMITS["mailgun"] + 100_000:
            return _json(413, {"message": "request entity too large"})
        got = _form_fields(headers.get("content-type", ""), body)
        if got is None:
            return _json(400, {"message": "messages.mime takes multipart/form-data"})
        if "to" not in got:
            return _json(400, {"message": "'to' parameter is missing"})
        if "message" not in got:
            return _json(400, {"message": "'message' parameter is missing"})
        to = got["to"].decode()
        if self._rejects(to):
            return _json(400, {"message": "to parameter is not a valid address."})
        mid = f"<{uuid.uuid4().hex}@{self.domain}>"
        self._take(Received(to, mid, data=got["message"]))
        return _json(200, {"id": mid, "message": "Queued. Thank you."})

    def _sendgrid(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        def error(status: int, text: str, where: str | None = None) -> Answer:
            return _json(status, {"errors": [{"message": text, "field": where, "help": None}]})

        if path != "/v3/mail/send":
            return error(404, "not found")
        if headers.get("authorization") != f"Bearer {self.key}":
            return error(401, "The provided authorization grant is invalid, expired, or revoked")
        if len(body) > _LIMITS["sendgrid"]:
            return error(413, "payload too large")
        try:
            m = json.loads(body)
            to = m["personalizations"][0]["to"][0]["email"]
            sender = m["from"]["email"]
        except (ValueError, KeyError, IndexError, TypeError):
            return error(400, "personalizations[].to[] and from.email are required")
        if not 1 <= len(m["personalizations"]) <= 1000 or not sender:
            return error(400, "1 to 1000 personalizations", "personalizations")
        kinds = [c.get("type") for c in m.get("content") or [] if isinstance(c, dict)]
        if not kinds or ("text/plain" in kinds and kinds[0] != "text/plain"):
            return error(400, "content: text/plain first, then text/html", "content")
        if not m.get("subject"):
            return error(400, "The subject is required.", "subject")
        reserved = {"x-sg-id", "x-sg-eid", "received", "content-type", "date", "to", "from"}
        if any(k.lower() in reserved for k in m.get("headers", {})):
            return error(400, "reserved header in headers", "headers")
        if self._rejects(to):
            return error(400, "Does not contain a valid address.", "personalizations.0.to.0.email")
        mid = uuid.uuid4().hex[:22]
        self._take(Received(to, mid, fields=m))
        return 202, {"X-Message-Id": mid}, b""

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _form_fields(kind: str, body: bytes) -> dict[str, bytes] | None:
    """The fields of a multipart/form-data body, each value byte for byte (None: not one)."""
    match = re.match(r'multipart/form-data;\s*boundary="?([^";]+)"?', kind)
    if match is None:
        return None
    fields: dict[str, bytes] = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:-1]:
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is None or not value.endswith(b"\r\n"):
            return None
        fields[name.group(1).decode()] = value[:-2]
    return fields


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fake: ProviderServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on purpose leaves a broken pipe: the test's point


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, out = self.server.fake.answer(self.path, headers, body)
        if status == 0:
            self.close_connection = True
            return
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, format: str, *args: Any) -> None:
        pass
