"""Provider webhooks on `digest serve`: bounces and complaints from Amazon SES (through
SNS), Postmark, Mailgun and SendGrid, each checked by its provider's own authentication,
then applied by the one bounce policy (app.bounces.take_webhook).

An endpoint is on only when its ``bounces`` key is set, and answers POST only. A refused
request gets 4xx and one line saying why; a replay is answered 200 and changes nothing
(the event ids are kept in the state database). Bodies over MAX_BODY are refused unread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.deliverability import mailgun, postmark, sendgrid, sns
from digest.deliverability.hooks import MAX_BODY, HookEvent
from digest.exceptions import ConfigError, FetchError, WebhookError
from digest.http import Fetcher

Handler = Callable[[Request, bytes], list[str] | str]


@dataclass
class Outbound:
    """How the SES endpoint reaches SNS (certificates, subscription confirmations): the
    hardened client; tests give one that trusts their CA and resolves sns hosts locally,
    and the port their HTTPS server listens on."""

    fetcher: Fetcher | None = None
    sns_port: int | None = None
    _own: list[Fetcher] = field(default_factory=list)


class Hooks:
    """The /hooks/{ses,postmark,mailgun,sendgrid} routes that ``bounces`` turns on."""

    def __init__(self, app: App, environ: Mapping[str, str], outbound: Outbound | None) -> None:
        self.app = app
        conf = app.settings.bounces
        self.postmark = _secret(environ, conf.postmark_auth_env, "postmark_auth_env")
        self.mailgun = _secret(environ, conf.mailgun_key_env, "mailgun_key_env")
        self.sendgrid = (
            sendgrid.public_key(conf.sendgrid_public_key) if conf.sendgrid_public_key else None
        )
        out = outbound or Outbound()
        self.fetcher = out.fetcher or Fetcher(settings=app.settings.fetch)
        self.sns = sns.Verifier(topics=conf.sns_topics, fetch=self._get, port=out.sns_port)

    def routes(self) -> list[Route]:
        handlers: dict[str, Handler] = {}
        if self.app.settings.bounces.sns_topics:
            handlers["ses"] = self._ses
        if self.postmark:
            handlers["postmark"] = self._postmark
        if self.mailgun:
            handlers["mailgun"] = self._mailgun
        if self.sendgrid is not None:
            handlers["sendgrid"] = self._sendgrid
        return [
            Route(f"/hooks/{name}", self._endpoint(handler), methods=["POST"])
            for name, handler in handlers.items()
        ]

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await _body(request)
                # Verifying, fetching a certificate and writing the store all block.
                result = await run_in_threadpool(handler, request, body)
            except WebhookError as exc:
                return PlainTextResponse(f"{exc}\n", status_code=exc.status)
            except FetchError as exc:
                # SNS retries a 5xx: the certificate or confirmation can be fetched later.
                return PlainTextResponse(f"ses: cannot reach SNS ({exc})\n", status_code=502)
            if isinstance(result, str):
                return PlainTextResponse(f"{result}\n")
            return PlainTextResponse("".join(f"{action}\n" for action in result) or "ok\n")

        return endpoint

    def _get(self, url: str) -> bytes:
        return self.fetcher.fetch(url).body

    def _take(self, provider: str, events: list[HookEvent], request_id: str = "") -> list[str]:
        return self.app.bounces.take_webhook(provider, events, request_id=request_id)

    def _ses(self, _request: Request, body: bytes) -> list[str] | str:
        message = self.sns.verify(body, now=self.app.now())
        if message.type == "SubscriptionConfirmation":
            self.fetcher.fetch(message.subscribe_url)
            return f"subscribed to {message.topic}"
        if message.type == "UnsubscribeConfirmation":
            return "unsubscribe confirmation noted (not followed)"
        return self._take(sns.PROVIDER, list(message.events))

    def _postmark(self, request: Request, body: bytes) -> list[str]:
        postmark.check_auth(request.headers, self.postmark)
        return self._take(postmark.PROVIDER, postmark.events(body))

    def _mailgun(self, _request: Request, body: bytes) -> list[str]:
        token, events = mailgun.verify(body, self.mailgun, now=self.app.now())
        return self._take(mailgun.PROVIDER, events, request_id=token)

    def _sendgrid(self, request: Request, body: bytes) -> list[str]:
        assert self.sendgrid is not None  # the route exists only with a key
        events = sendgrid.verify(request.headers, body, self.sendgrid, now=self.app.now())
        return self._take(sendgrid.PROVIDER, events)


def _secret(environ: Mapping[str, str], name: str, key: str) -> str:
    """The value of the variable config key ``bounces.<key>`` names; ConfigError if unset."""
    if not name:
        return ""
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"bounces.{key} names {name}, which is not set: set it or remove the key")
    return value


async def _body(request: Request) -> bytes:
    """The body, at most MAX_BODY bytes: a larger one is refused before it is all read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise WebhookError(f"the body is over {MAX_BODY} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise WebhookError(f"the body is over {MAX_BODY} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)
