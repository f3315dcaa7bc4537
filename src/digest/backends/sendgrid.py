"""SendGrid's v3 API, /v3/mail/send: it takes no raw MIME, so each digest goes as its
fields (one personalization per message: every reader's copy differs)."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any, ClassVar

from digest.backends.api import APIBackend, json_of, parts
from digest.backends.base import Envelope
from digest.exceptions import PermanentFailure

# Headers SendGrid refuses in "headers" (it writes them itself); everything else we set
# (List-Unsubscribe, List-Unsubscribe-Post, Message-ID, List-Id) goes through.
_RESERVED = frozenset({"x-sg-id", "x-sg-eid", "received", "content-type", "date"})


class SendGridBackend(APIBackend):
    """Options: endpoint (``https://api.sendgrid.com``; the EU subuser API is
    ``https://api.eu.sendgrid.com``), allow_private, timeout and key_env (default
    ``SENDGRID_API_KEY``, sent as a Bearer token)."""

    name: ClassVar[str] = "sendgrid"
    options: ClassVar[frozenset[str]] = APIBackend.shared_options
    default_endpoint: ClassVar[str] = "https://api.sendgrid.com"
    default_key_env: ClassVar[str] = "SENDGRID_API_KEY"
    max_message_bytes: ClassVar[int] = 30_000_000  # 30 MB per request

    def send(self, envelope: Envelope) -> None:
        self.check_size(envelope)
        key = self.secret(self.key_env)
        answer = self.post(
            "/v3/mail/send",
            headers={"Authorization": f"Bearer {key}"},
            json_body=self._payload(envelope),
        )
        found = json_of(answer)
        errors = found.get("errors") if isinstance(found, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        detail = str(first.get("message", "")) if isinstance(first, dict) else ""
        self.check_answer(answer, detail)
        if answer.status in (200, 202):
            self.provider_ids[envelope.message_id] = answer.headers.get("x-message-id", "")
            return
        field = str(first.get("field") or "") if isinstance(first, dict) else ""
        if answer.status == 400 and field.startswith("personalizations.0.to"):
            raise PermanentFailure(f"sendgrid: {envelope.recipient}: {detail}", code=400)
        if answer.status == 413:
            self.fail(f"the message to {envelope.recipient} is too large for SendGrid")
        self.fail(f"the API answered {answer.status}: {detail or 'an unexpected body'}")

    def _payload(self, envelope: Envelope) -> dict[str, Any]:
        p = parts(envelope.data)
        name, address = _split(p.sender)
        content = []
        if p.text:
            content.append({"type": "text/plain", "value": p.text})  # SendGrid: text first
        if p.html:
            content.append({"type": "text/html", "value": p.html})
        payload: dict[str, Any] = {
            "personalizations": [{"to": [{"email": envelope.recipient}]}],
            "from": {"email": address, **({"name": name} if name else {})},
            "subject": p.subject,
            "content": content,
            "headers": {k: v for k, v in p.headers.items() if k.lower() not in _RESERVED},
            # Comes back in every event webhook: the delivery is found by it.
            "custom_args": {"message_id": envelope.message_id},
            "tracking_settings": {
                "click_tracking": {"enable": False},
                "open_tracking": {"enable": False},
            },
        }
        if p.reply_to:
            payload["reply_to"] = {"email": _split(p.reply_to)[1]}
        if p.attachments:
            payload["attachments"] = [
                {
                    "content": a["content"],
                    "type": a["type"],
                    "filename": a["name"],
                    **(
                        {"disposition": "inline", "content_id": a["content_id"]}
                        if a["content_id"]
                        else {}
                    ),
                }
                for a in p.attachments
            ]
        return payload


def _split(header: str) -> tuple[str, str]:
    return parseaddr(header)
