"""Pages for readers: the one-click unsubscribe (RFC 8058), no sign-in, no cookies needed."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import TokenError
from digest.store.images import ImageStore
from digest.tokens import UNSUBSCRIBE_SALT, Signer, read_unsubscribe_token, secrets_from_env
from digest.web.common import Pages, Refused


class Readers(Pages):
    """Reader links are signed URLs: the signature is the credential, so no CSRF cookie."""

    def __init__(self, app: App, environ: Mapping[str, str]) -> None:
        super().__init__(app, environ)
        keys = secrets_from_env(self.settings.secret_env, environ)
        self.unsubscribes = Signer(keys, salt=UNSUBSCRIBE_SALT, clock=app.now)
        self.images = ImageStore(self.store)

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/u/{token}", h(self.unsubscribe_form, form=False), methods=["GET"]),
            Route("/u/{token}", h(self.unsubscribe, form=True), methods=["POST"]),
            Route("/img/{key}", self.image, methods=["GET", "HEAD"]),
        ]

    async def image(self, request: Request) -> Response:
        """GET /img/KEY: an edition's processed image; content-addressed, so cached for good."""
        key = str(request.path_params["key"])
        found = await run_in_threadpool(self.images.get, key)
        if found is None:
            return Response("not found\n", 404, media_type="text/plain")
        data, kind = found
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return Response(data, 200, headers=headers, media_type=kind)

    def _subscriber(self, request: Request) -> tuple[str, str]:
        token = request.path_params["token"]
        try:
            return token, read_unsubscribe_token(self.unsubscribes, token)
        except TokenError as exc:
            raise Refused(
                400, "Link not valid",
                f"This unsubscribe link cannot be used: {exc}. Nothing was changed. Reply to "
                "the newsletter to be removed by hand.",
            ) from exc  # fmt: skip

    def unsubscribe_form(self, request: Request, _form: FormData | None) -> Response:
        token, email = self._subscriber(request)
        done = self.store.is_suppressed(email)
        return self.page(
            request, "unsubscribe.html", title="Unsubscribe", token=token, email=email,
            publication=self.settings.publication.name, done=done,
        )  # fmt: skip

    def unsubscribe(self, request: Request, _form: FormData | None) -> Response:
        # The body (List-Unsubscribe=One-Click, urlencoded or multipart) was read and is not
        # needed: the signed URL alone authorises this, and mail providers send no cookies.
        token, email = self._subscriber(request)
        self.store.suppress(email, reason="unsubscribed", now=self.app.now())
        return self.page(
            request, "unsubscribe.html", title="Unsubscribed", token=token, email=email,
            publication=self.settings.publication.name, done=True,
        )  # fmt: skip
