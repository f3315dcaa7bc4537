"""The editor's review pages and the one-click unsubscribe endpoint, as a Starlette ASGI app.

Link scanners open every URL in a message, so no GET changes anything: approve, reject,
remove, pin and unsubscribe happen only on POST. Editor forms carry a CSRF token; the
one-click unsubscribe POST (RFC 8058) needs none, because its signed URL is the credential.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest import editions as book
from digest.app import App
from digest.exceptions import ConfigError, DigestError, StateError
from digest.models import Edition, EditionState
from digest.proofs import approval_signer, send_proofs
from digest.render import placeholders
from digest.tokens import (
    UNSUBSCRIBE_SALT,
    Signer,
    TokenError,
    approval_token,
    read_approval_token,
    read_unsubscribe_token,
    secrets_from_env,
)
from digest.web.auth import CSRF_COOKIE, SESSION_COOKIE, Sessions, csrf_ok, new_csrf, sign_in

log = logging.getLogger("digest.web")

_NOTICES = {
    "revised": "Saved as a new revision; the earlier proof links no longer work, and the "
    "editors were sent new proofs.",
    "approved": "Your approval is recorded.",
    "rejected": "The edition is rejected; it will not be sent.",
}
_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; img-src https: http: data:; "
     b"style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),  # proof tokens are in URLs
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a signed-in editor, or one let in by a proof link (``token``)."""

    name: str
    email: str
    token: str = ""


class Refused(Exception):
    """Render a clear page with ``status`` instead of doing what was asked."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class NeedSignIn(Exception):
    """No session and no proof link: send the browser to the sign-in page."""


class SecurityHeaders:
    """Adds the same protective headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = list(message.get("headers", []))
                # A response's own Cache-Control (the immutable images) wins over no-store.
                present = {k.lower() for k, _ in own}
                message["headers"] = [*own, *(h for h in _HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Web:
    """The request handlers, sharing one App (config, store, clock) and the signing keys."""

    def __init__(self, app: App, environ: Mapping[str, str]) -> None:
        self.app = app
        self.settings = app.settings
        self.store = app.store
        self.environ = environ
        keys = secrets_from_env(self.settings.secret_env, environ)
        self.approvals = approval_signer(self.settings, clock=app.now, environ=environ)
        self.unsubscribes = Signer(keys, salt=UNSUBSCRIBE_SALT, clock=app.now)
        self.sessions = Sessions(self.settings, keys, clock=app.now)
        self.link_age = int(self.settings.approval.link_hours * 3600)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("digest.web", "templates"), autoescape=True
        )

    # plumbing ----------------------------------------------------------------------------

    def page(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        """Render a template; make sure the browser holds a CSRF cookie for its forms."""
        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf()
        html = self.env.get_template(name).render(csrf=csrf, **ctx)
        response = HTMLResponse(html, status_code=status)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            self._cookie(request, response, CSRF_COOKIE, csrf)
        return response

    def _cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, httponly=True, samesite="lax", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip

    def refused(self, request: Request, exc: Refused) -> Response:
        return self.page(request, "message.html", exc.status, title=exc.title, message=exc.message)

    def handle(
        self, method: Callable[[Request, FormData | None], Response], *, form: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a blocking handler: parse the form, run it in a thread, turn errors into pages."""

        async def endpoint(request: Request) -> Response:
            data = await _form(request) if form else None
            try:
                return await run_in_threadpool(method, request, data)
            except Refused as exc:
                return self.refused(request, exc)
            except NeedSignIn:
                target = request.url.path
                return RedirectResponse(f"/signin?next={quote(target, safe='/')}", 303)
            except StateError as exc:
                return self.refused(request, Refused(409, "Not possible now", str(exc)))
            except DigestError as exc:
                return self.refused(request, Refused(400, "Not possible", str(exc)))

        return endpoint

    def check_csrf(self, request: Request, form: FormData | None) -> None:
        if form is None or not csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            raise Refused(
                403, "Form refused",
                "This form was not sent from this site's page, or the page is too old "
                "(missing or wrong CSRF token). Nothing was changed; reload the page and retry.",
            )  # fmt: skip

    def edition(self, edition_id: str) -> Edition:
        try:
            return self.store.get_edition(int(edition_id))
        except (ValueError, StateError):
            raise Refused(404, "No such edition", f"There is no edition {edition_id}.") from None

    def viewer(self, request: Request, edition: Edition, token: object) -> Viewer:
        """The editor behind a proof link (checked strictly), else the session, else sign-in."""
        if isinstance(token, str) and token:
            try:
                claim = read_approval_token(self.approvals, token, max_age=self.link_age)
            except TokenError as exc:
                raise Refused(
                    403, "Link refused",
                    f"This review link cannot be used: {exc}. Nothing was changed. Use the "
                    "links in the latest proof, or sign in.",
                ) from exc  # fmt: skip
            editor = book.find_editor(self.settings, claim.editor)
            if claim.edition_id != edition.id or editor is None:
                raise Refused(403, "Link refused", "This link is not for this edition or editor.")
            if claim.revision != edition.revision:
                raise Refused(
                    410, "Link superseded",
                    f"This link is for revision {claim.revision} of edition {edition.id}, which "
                    f"has been replaced by revision {edition.revision}. Nothing was changed. Use "
                    "the links in the newest proof.",
                )  # fmt: skip
            return Viewer(editor.name, editor.email, token)
        session = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NeedSignIn
        return Viewer(session.name, session.email)

    def back_to(self, edition: Edition, viewer: Viewer, notice: str) -> Response:
        """303 to the review page; a proof-link viewer gets a link for the current revision."""
        url = f"/e/{edition.id}?n={notice}"
        if viewer.token:
            token = approval_token(
                self.approvals, edition_id=edition.id, revision=edition.revision,
                editor=viewer.email,
            )  # fmt: skip
            url += f"&t={token}"
        return RedirectResponse(url, 303)

    # editor pages ------------------------------------------------------------------------

    def review(self, request: Request, _form: FormData | None) -> Response:
        edition = self.edition(request.path_params["id"])
        viewer = self.viewer(request, edition, request.query_params.get("t"))
        values = placeholders.values_for(
            name=viewer.name, email=viewer.email,
            unsubscribe_url=f"{self.settings.publication.base_url.rstrip('/')}/u/preview",
        )  # fmt: skip
        html_values = {k: html.escape(v, quote=True) for k, v in values.items()}
        return self.page(
            request, "review.html", title=f"Edition {edition.id}", edition=edition,
            viewer=viewer, pending=edition.state is EditionState.PENDING_APPROVAL,
            approvals=book.approvals_for(self.store, edition),
            needed=self.settings.approval.approvals_needed,
            deadline=book.deadline(self.settings, edition).isoformat(),
            frame=placeholders.substitute(edition.rendered.html, html_values),
            text=placeholders.substitute(edition.rendered.text, values),
            audit=self.store.audit_trail(edition.id),
            notice=_NOTICES.get(request.query_params.get("n", ""), ""),
        )  # fmt: skip

    def confirm(self, request: Request, _form: FormData | None) -> Response:
        edition = self.edition(request.path_params["id"])
        viewer = self.viewer(request, edition, request.query_params.get("t"))
        if edition.state is not EditionState.PENDING_APPROVAL:
            raise Refused(409, "Nothing to approve", f"Edition {edition.id} is {edition.state}.")
        review_url = f"/e/{edition.id}" + (f"?t={viewer.token}" if viewer.token else "")
        return self.page(
            request, "confirm.html", title=f"Approve edition {edition.id}", edition=edition,
            viewer=viewer, approvals=book.approvals_for(self.store, edition),
            needed=self.settings.approval.approvals_needed, review_url=review_url,
        )  # fmt: skip

    def _action(self, request: Request, form: FormData | None) -> tuple[Edition, Viewer, int]:
        self.check_csrf(request, form)
        assert form is not None  # check_csrf refuses a missing form
        edition = self.edition(request.path_params["id"])
        viewer = self.viewer(request, edition, form.get("t"))
        try:
            revision = int(str(form.get("revision", "")))
        except ValueError:
            raise Refused(400, "Form refused", "The form lacks the revision it shows.") from None
        return edition, viewer, revision

    def approve(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        result = book.approve(
            self.settings, self.store, edition.id, by=viewer.email, via="web",
            now=self.app.now(), revision=revision,
        )  # fmt: skip
        return self.back_to(result.edition, viewer, "approved")

    def reject(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        rejected = book.reject(
            self.settings, self.store, edition.id, by=viewer.email, via="web",
            reason=str(form.get("reason", "")), now=self.app.now(), revision=revision,
        )  # fmt: skip
        return self.back_to(rejected, viewer, "rejected")

    def change(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        url = str(form.get("url", ""))
        pin = request.url.path.endswith("/pin")
        try:
            position = int(str(form.get("position", "1")))
        except ValueError:
            raise Refused(400, "Form refused", "The position must be a number.") from None
        now = self.app.now()
        revised = book.revise(
            self.settings, self.store, edition.id, by=viewer.email, via="web", now=now,
            revision=revision, remove=() if pin else (url,), pin=url if pin else None,
            position=position,
        )  # fmt: skip
        for problem in send_proofs(self.settings, self.store, revised, now=now):
            log.warning("%s", problem)
        return self.back_to(revised, viewer, "revised")

    def editions(self, request: Request, _form: FormData | None) -> Response:
        session = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NeedSignIn
        return self.page(
            request, "editions.html", title="Editions", viewer=Viewer(session.name, session.email),
            editions=self.store.list_editions(),
        )  # fmt: skip

    # sign-in -----------------------------------------------------------------------------

    def signin_form(self, request: Request, _form: FormData | None) -> Response:
        return self.page(
            request, "signin.html", title="Sign in", next=_safe_next(request.query_params)
        )

    def signin(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        assert form is not None
        target = _safe_next(form)
        try:
            editor = sign_in(
                self.settings, str(form.get("email", "")), str(form.get("password", "")),
                self.environ,
            )  # fmt: skip
        except ConfigError as exc:
            raise Refused(503, "Sign-in is not set up", str(exc)) from exc
        if editor is None:
            return self.page(
                request, "signin.html", 401, title="Sign in", next=target,
                message="Wrong e-mail address or password.",
            )  # fmt: skip
        response = RedirectResponse(target, 303)
        self._cookie(request, response, SESSION_COOKIE, self.sessions.cookie(editor))
        return response

    def signout(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # unsubscribe (RFC 8058) --------------------------------------------------------------

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
        done = email in self.store.suppressed()
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


async def _form(request: Request) -> FormData | None:
    try:
        return await request.form()
    except Exception:  # python-multipart and Starlette raise several types for bad bodies
        return None


def _safe_next(params: Mapping[str, Any]) -> str:
    """Only local paths: an open redirect would turn the sign-in page into a phishing aid."""
    target = str(params.get("next", "") or "/editions")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/editions"
    return target


def image_route(app: App) -> Callable[[Request], Awaitable[Response]]:
    """GET /img/KEY: an edition's processed image; content-addressed, so cached for good."""
    from digest.images import ImageStore

    stores: list[ImageStore] = []  # made on first use: creating it checks the table

    def lookup(key: str) -> tuple[bytes, str] | None:
        if not stores:
            stores.append(ImageStore(app.store))
        return stores[0].get(key)

    async def serve(request: Request) -> Response:
        found = await run_in_threadpool(lookup, str(request.path_params["key"]))
        if found is None:
            return Response("not found\n", 404, media_type="text/plain")
        data, kind = found
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return Response(data, 200, headers=headers, media_type=kind)

    return serve


def create_app(app: App, *, environ: Mapping[str, str] | None = None) -> Starlette:
    """The ASGI app for ``app``'s config; ConfigError at once if the signing key is missing."""
    web = Web(app, os.environ if environ is None else environ)
    h = web.handle
    routes = [
        Route("/", lambda _r: RedirectResponse("/editions", 303)),
        Route("/editions", h(web.editions, form=False)),
        Route("/signin", h(web.signin_form, form=False), methods=["GET"]),
        Route("/signin", h(web.signin, form=True), methods=["POST"]),
        Route("/signout", h(web.signout, form=True), methods=["POST"]),
        Route("/e/{id}", h(web.review, form=False), methods=["GET"]),
        Route("/e/{id}/approve", h(web.confirm, form=False), methods=["GET"]),
        Route("/e/{id}/approve", h(web.approve, form=True), methods=["POST"]),
        Route("/e/{id}/reject", h(web.reject, form=True), methods=["POST"]),
        Route("/e/{id}/remove", h(web.change, form=True), methods=["POST"]),
        Route("/e/{id}/pin", h(web.change, form=True), methods=["POST"]),
        Route("/u/{token}", h(web.unsubscribe_form, form=False), methods=["GET"]),
        Route("/u/{token}", h(web.unsubscribe, form=True), methods=["POST"]),
        Route("/img/{key}", image_route(app), methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
