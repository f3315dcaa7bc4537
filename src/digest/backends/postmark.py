"""Postmark's HTTP API: batches of up to 500 messages to /email/batch (it takes no raw MIME,
so each digest goes as its fields: From, Subject, the text and HTML bodies, our headers)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, ClassVar

from digest.backends.api import APIBackend, json_of, parts
from digest.backends.base import Envelope
from digest.exceptions import BackendError, PermanentFailure

BATCH_LIMIT = 500  # Postmark's most messages per batch call
# Per-message ErrorCodes that are about the recipient: the address will never take mail
# from us through Postmark (406: inactive, i.e. bounced, complained or unsubscribed there;
# 300: an invalid address).
_RECIPIENT_CODES = {406: "inactive recipient", 300: "invalid email request"}


class PostmarkBackend(APIBackend):
    """Options: ``message_stream`` (default ``broadcast``, Postmark's stream for bulk
    mail), ``batch_size`` (1-500), plus endpoint, allow_private, timeout and key_env
    (default ``POSTMARK_SERVER_TOKEN``, sent as X-Postmark-Server-Token)."""

    name: ClassVar[str] = "postmark"
    options: ClassVar[frozenset[str]] = APIBackend.shared_options | {
        "message_stream",
        "batch_size",
    }
    default_endpoint: ClassVar[str] = "https://api.postmarkapp.com"
    default_key_env: ClassVar[str] = "POSTMARK_SERVER_TOKEN"
    max_message_bytes: ClassVar[int] = 10_000_000  # 10 MB per message, attachments included

    def __init__(
        self, *, message_stream: str = "broadcast", batch_size: int = BATCH_LIMIT, **rest: Any
    ) -> None:
        super().__init__(**rest)
        if not isinstance(message_stream, str) or not message_stream:
            self.fail(f"message_stream must be a stream id, not {message_stream!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            self.fail(f"batch_size must be an integer from 1 to {BATCH_LIMIT}, not {batch_size!r}")
        if not 1 <= batch_size <= BATCH_LIMIT:
            self.fail(f"batch_size must be from 1 to {BATCH_LIMIT}, not {batch_size}")
        self.message_stream = message_stream
        self.batch_size = batch_size

    def send(self, envelope: Envelope) -> None:
        failure = self._batch([envelope])[0]
        if failure is not None:
            raise failure

    def send_each(self, envelopes: Iterable[Envelope]) -> Iterator[BackendError | None]:
        """One batch call for up to ``batch_size`` messages at hand (the iterator never
        blocks: it gives what the worker has queued)."""
        it = iter(envelopes)
        while batch := list(islice(it, self.batch_size)):
            try:
                outcomes = self._batch(batch)
            except BackendError as exc:
                # The call as a whole failed (429, 5xx, a bad key): each message of the
                # batch gets that outcome, and no more are taken now.
                yield from [exc] * len(batch)
                return
            yield from outcomes

    def _batch(self, batch: list[Envelope]) -> list[BackendError | None]:
        for envelope in batch:
            self.check_size(envelope)
        token = self.secret(self.key_env)
        answer = self.post(
            "/email/batch",
            headers={"X-Postmark-Server-Token": token, "Accept": "application/json"},
            json_body=[self._message(e) for e in batch],
        )
        found = json_of(answer)
        detail = found.get("Message", "") if isinstance(found, dict) else ""
        self.check_answer(answer, detail)
        if answer.status != 200 or not isinstance(found, list) or len(found) != len(batch):
            self.fail(f"the API answered {answer.status}: {detail or 'an unexpected body'}")
        return [self._outcome(e, r) for e, r in zip(batch, found, strict=True)]

    def _outcome(self, envelope: Envelope, result: Any) -> BackendError | None:
        code = result.get("ErrorCode") if isinstance(result, dict) else None
        text = str(result.get("Message", "")) if isinstance(result, dict) else ""
        if code == 0:
            self.provider_ids[envelope.message_id] = str(result.get("MessageID", ""))
            return None
        if code in _RECIPIENT_CODES:
            return PermanentFailure(
                f"postmark: {envelope.recipient}: {_RECIPIENT_CODES[code]} ({code}: {text})",
                code=code,
            )
        return BackendError(f"backend 'postmark': error {code}: {text}")

    def _message(self, envelope: Envelope) -> dict[str, Any]:
        p = parts(envelope.data)
        message: dict[str, Any] = {
            "From": p.sender,
            "To": envelope.recipient,
            "Subject": p.subject,
            "MessageStream": self.message_stream,
            "Headers": [{"Name": k, "Value": v} for k, v in p.headers.items()],
            "Metadata": {"message_id": envelope.message_id},
            "TrackOpens": False,
            "TrackLinks": "None",
        }
        if p.text:
            message["TextBody"] = p.text
        if p.html:
            message["HtmlBody"] = p.html
        if p.reply_to:
            message["ReplyTo"] = p.reply_to
        if p.attachments:
            message["Attachments"] = [
                {
                    "Name": a["name"],
                    "Content": a["content"],
                    "ContentType": a["type"],
                    **({"ContentID": f"cid:{a['content_id']}"} if a["content_id"] else {}),
                }
                for a in p.attachments
            ]
        return message
