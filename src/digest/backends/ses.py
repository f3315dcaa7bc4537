"""Amazon SES v2's HTTP API: SendEmail with Raw content (the MIME digest as built), signed
with AWS Signature Version 4 (digest.backends.sigv4)."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any, ClassVar

from digest.backends import sigv4
from digest.backends.api import APIBackend, json_of
from digest.backends.base import Envelope
from digest.exceptions import PermanentFailure, TemporaryFailure

PATH = "/v2/email/outbound-emails"
SECRET_ENV = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 (the name of a variable)
# SES error types that are about this message or its recipient, and those that say "later".
_REJECTED = frozenset({"MessageRejected"})
_LATER = frozenset({"TooManyRequestsException", "LimitExceededException", "Throttling"})


class SESBackend(APIBackend):
    """Options: ``region`` (default ``us-east-1``; the endpoint is
    ``https://email.REGION.amazonaws.com`` unless ``endpoint`` says otherwise),
    ``configuration_set`` (optional, for SES's event destinations), ``key_env`` (default
    ``AWS_ACCESS_KEY_ID``), ``secret_env`` (default ``AWS_SECRET_ACCESS_KEY``); a session
    token is taken from ``AWS_SESSION_TOKEN`` when set. Plus allow_private and timeout."""

    name: ClassVar[str] = "ses"
    options: ClassVar[frozenset[str]] = APIBackend.shared_options | {
        "region",
        "configuration_set",
        "secret_env",
    }
    default_key_env: ClassVar[str] = "AWS_ACCESS_KEY_ID"
    max_message_bytes: ClassVar[int] = 40_000_000  # SES v2: 40 MB per raw message

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        configuration_set: str = "",
        secret_env: str = SECRET_ENV,
        endpoint: str | None = None,
        **rest: Any,
    ) -> None:
        good = isinstance(region, str) and region.replace("-", "").isalnum() and region != ""
        super().__init__(
            endpoint=endpoint or f"https://email.{region if good else 'us-east-1'}.amazonaws.com",
            **rest,
        )
        if not good:
            self.fail(f"region must be an AWS region such as eu-west-1, not {region!r}")
        if not isinstance(configuration_set, str):
            self.fail(f"configuration_set must be a name, not {configuration_set!r}")
        if not isinstance(secret_env, str) or not secret_env:
            self.fail(f"secret_env must name an environment variable, not {secret_env!r}")
        self.region = region
        self.configuration_set = configuration_set
        self.secret_env = secret_env

    def check_credentials(self) -> None:
        self.secret(self.key_env)
        self.secret(self.secret_env, "secret_env")

    def send(self, envelope: Envelope) -> None:
        self.check_size(envelope)
        payload: dict[str, Any] = {
            "FromEmailAddress": envelope.sender,
            "Destination": {"ToAddresses": [envelope.recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(envelope.data).decode("ascii")}},
        }
        if self.configuration_set:
            payload["ConfigurationSetName"] = self.configuration_set
        body = json.dumps(payload).encode("utf-8")
        headers = sigv4.sign(
            "POST",
            self.endpoint + PATH,
            body,
            access_key=self.secret(self.key_env),
            secret_key=self.secret(self.secret_env, "secret_env"),
            session_token=os.environ.get("AWS_SESSION_TOKEN", ""),
            region=self.region,
            service="ses",
            when=datetime.now(UTC),  # AWS checks this against its own clock: the real one
        )
        answer = self.post(PATH, headers=headers, content=body)
        found = json_of(answer)
        kind = answer.headers.get("x-amzn-errortype", "").split(":")[0]
        if not kind and isinstance(found, dict):
            kind = str(found.get("__type", "")).rpartition("#")[2]
        detail = str(found.get("message", "")) if isinstance(found, dict) else ""
        detail = f"{kind}: {detail}" if kind else detail
        self.check_answer(answer, detail)
        if answer.status == 200 and isinstance(found, dict):
            self.provider_ids[envelope.message_id] = str(found.get("MessageId", ""))
            return
        if kind in _REJECTED:
            raise PermanentFailure(f"ses: {envelope.recipient}: {detail}", code=answer.status)
        if kind in _LATER:
            raise TemporaryFailure(f"ses: {detail}", code=answer.status)
        self.fail(f"the API answered {answer.status}: {detail or 'an unexpected body'}")
