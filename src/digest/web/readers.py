"""Pages for readers: sign-up with double opt-in, preferences, the archive, unsubscribe.

No reader page sets a cookie or needs one. Links from e-mails are signed URLs, and the
signature is the credential: a GET only shows a page with a button, the POST acts. The
sign-up form may be embedded on the newsroom's own site, so its POST needs no CSRF token;
instead a POST from another site's page is refused unless signup.allowed_origins lists it,
and limits (web.guard) bound how much mail anyone can cause. It only queues the sign-up, so
it answers the same, in the same time, whether or not the address is known. Every lookup is
by key (address, id, nonce), never a scan.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import Refused, TokenError, TooMany
from digest.models import SubscriberState
from digest.render.dates import day_label
from digest.store.images import ImageStore
from digest.store.subscribers import Record, SubscriberStore
from digest.subscribers.links import preferences_url, reason
from digest.subscribers.signup import PAUSES, consent_text
from digest.tokens import (
    ARCHIVE_SALT,
    UNSUBSCRIBE_SALT,
    Signer,
    read_archive_token,
    read_unsubscribe_token,
    secrets_from_env,
)
from digest.web.archive import Archive, Links
from digest.web.auth import Accounts
from digest.web.common import Pages, cross_origin, origin_of
from digest.web.guard import SignupGuard

log = logging.getLogger("digest.readers")
S = SubscriberState


_LIMITED = {
    "client": "Too many sign-ups came from your network just now.",
    "address": "Too many sign-ups were made for this address just now.",
    "form": "Too many people are signing up just now.",
}


class Readers(Pages):
    """The readers' routes on one App."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)
        keys = secrets_from_env(self.settings.secret_env, environ)
        self.unsubscribes = Signer(keys, salt=UNSUBSCRIBE_SALT, clock=app.now)
        self.archive_keys = Signer(keys, salt=ARCHIVE_SALT, clock=app.now)
        self.readers = app.readers.pages(environ)
        self.list = SubscriberStore(self.store)
        self.archive = Archive(self.env, self.settings, self.store)
        # The app's clock (DIGEST_NOW, a test's), so the limits' windows move with it.
        self.guard = SignupGuard(self.settings.signup, clock=lambda: app.now().timestamp())
        self.images = ImageStore(self.store)
        signup = self.settings.signup
        self.links = Links(signup="/subscribe" if signup.enabled else "")

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/subscribe", h(self.subscribe_form, form=False), methods=["GET"]),
            Route("/subscribe", h(self.subscribe, form=True), methods=["POST"]),
            Route("/confirm/{token}", h(self.confirm_form, form=False), methods=["GET"]),
            Route("/confirm/{token}", h(self.confirm, form=True), methods=["POST"]),
            Route("/p/{token}", h(self.preferences, form=False), methods=["GET"]),
            Route("/p/{token}", h(self.save_preferences, form=True), methods=["POST"]),
            Route("/u/{token}", h(self.unsubscribe_form, form=False), methods=["GET"]),
            Route("/u/{token}", h(self.unsubscribe, form=True), methods=["POST"]),
            Route("/archive", lambda _r: RedirectResponse("/archive/", 308)),
            Route("/archive/", h(self.archive_index, form=False), methods=["GET"]),
            Route("/archive/feed.xml", h(self.archive_feed, form=False), methods=["GET"]),
            Route("/archive/{id:int}", h(self.archive_edition, form=False), methods=["GET"]),
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

    def show(self, template: str, status: int = 200, **ctx: Any) -> Response:
        """A reader page: no cookie of any kind."""
        ctx.setdefault("publication", self.settings.publication)
        ctx.setdefault("home", "/archive/")
        return HTMLResponse(self.env.get_template(template).render(**ctx), status_code=status)

    def refused(self, request: Request, exc: Refused) -> Response:
        page = self.show("reader_message.html", exc.status, title=exc.title, message=exc.message)
        if isinstance(exc, TooMany):
            page.headers["retry-after"] = str(exc.retry_after)
        return page

    # sign-up ------------------------------------------------------------------------------

    def _signup_open(self) -> None:
        if not self.settings.signup.enabled:
            name = self.settings.publication.name
            raise Refused(404, "Sign-up is closed", f"{name} does not take sign-ups here.")

    def _form_page(
        self,
        status: int = 200,
        *,
        email: str = "",
        name: str = "",
        chosen: tuple[str, ...] = (),
        error: str = "",
    ) -> Response:
        picked = {c.casefold() for c in chosen}
        return self.show(
            "subscribe.html",
            status,
            title=f"Subscribe to {self.settings.publication.name}",
            topics=[(t, t.casefold() in picked) for t in self.readers.topics],
            email=email,
            name=name,
            error=error,
            consent=consent_text(self.settings.publication),
        )

    def subscribe_form(self, request: Request, _form: FormData | None) -> Response:
        self._signup_open()
        return self._form_page()

    def subscribe(self, request: Request, form: FormData | None) -> Response:
        self._signup_open()
        if form is None:
            raise Refused(400, "Form not readable", "Nothing was changed; reload the page.")
        self._same_site(request)
        client = request.client.host if request.client else ""
        email, name = str(form.get("email", "")).strip(), str(form.get("name", ""))
        topics = [str(t) for t in form.getlist("topics")]
        limited = self.guard.check(host=client, email=email)
        if limited is not None:
            raise TooMany(
                limited.retry_after,
                f"{_LIMITED[limited.what]} Nothing was changed; please try again in "
                f"{max(1, round(limited.retry_after / 60))} minute(s).",
            )
        # The same work for every address, known or not: one row queued. Whether it gets a
        # confirmation is decided later, off the request (Readers.drain), so the answer's
        # timing tells nothing about who is subscribed.
        if not form.get("website"):  # the honeypot: a robot filled in the hidden field
            try:
                self.readers.enqueue(email=email, name=name, topics=topics, ip=client)
            except ValueError:
                return self._form_page(
                    400,
                    email=email,
                    name=name,
                    chosen=tuple(topics),
                    error="Enter an e-mail address like name@example.org",
                )
        if self.settings.signup.redirect_url:
            return RedirectResponse(self.settings.signup.redirect_url, 303)
        return self.show("signup_sent.html", title="Check your inbox")

    def _same_site(self, request: Request) -> None:
        """Refuse a POST another site's page made its visitor's browser send (CSRF)."""
        own = frozenset({origin_of(self.settings.publication.base_url)})
        allowed = frozenset(origin_of(o) for o in self.settings.signup.allowed_origins)
        foreign = cross_origin(request, own, allowed=allowed)
        if foreign:
            log.info("sign-up refused: posted from %s", foreign)
            raise Refused(
                403,
                "Sign-up refused",
                "This form was sent from a page on another site. Nothing was changed; "
                f"sign up at {self.settings.publication.base_url.rstrip('/')}/subscribe "
                "(site owners: list your site in signup.allowed_origins).",
            )

    def _pending(self, token: str) -> Any:
        try:
            return self.readers.pending(token)
        except TokenError as exc:
            raise Refused(
                400,
                "Link not valid",
                f"This confirmation link cannot be used: {exc}. "
                "Nothing was changed; sign up again for a new one.",
            ) from exc

    def _used(self) -> Refused:
        return Refused(
            410,
            "Link already used",
            "This link was used already, or it expired. If you confirmed, you are subscribed; "
            "otherwise sign up again.",
        )

    def confirm_form(self, request: Request, _form: FormData | None) -> Response:
        token = request.path_params["token"]
        found = self._pending(token)
        if found is None:
            raise self._used()
        pending, record = found
        return self.show(
            "signup_confirm.html",
            title="Confirm your subscription",
            email=record.email,
            topics=pending.topics,
            action=f"/confirm/{token}",
        )

    def confirm(self, request: Request, _form: FormData | None) -> Response:
        token = request.path_params["token"]
        self._pending(token)  # a bad or expired link gets its own page
        client = request.client.host if request.client else ""
        record = self.readers.confirm(token, ip=client)
        if record is None:
            raise self._used()
        url = preferences_url(
            "", self.readers.preferences, subscriber_id=record.id, email=record.email
        )
        return self.show(
            "signup_confirmed.html", title="You are subscribed", email=record.email, preferences=url
        )

    # preferences -------------------------------------------------------------------------

    def _reader(self, token: str) -> Record:
        try:
            return self.readers.reader(token)
        except TokenError as exc:
            raise Refused(
                400,
                "Link not valid",
                f"This preference link cannot be used: {exc}. Use the link in your latest edition.",
            ) from exc

    def preferences(self, request: Request, _form: FormData | None) -> Response:
        token = request.path_params["token"]
        record = self._reader(token)
        zone = self.settings.publication.timezone
        why, _ = reason(record.source, record.since, zone)
        now = self.app.now()
        paused = (
            day_label(record.paused_until.astimezone(ZoneInfo(zone)).date())
            if record.state is S.PAUSED and record.paused_until and record.paused_until > now
            else ""
        )
        chosen = {t.casefold() for t in record.topics}
        unsubscribe = self.unsubscribes.sign({"e": record.key})
        return self.show(
            "preferences.html",
            title="Your preferences",
            email=record.email,
            reason=why,
            receiving=record.state in (S.ACTIVE, S.PAUSED),
            state=str(record.state),
            paused_until=paused,
            name=record.name,
            pauses=PAUSES,
            topics=[(t, t.casefold() in chosen) for t in self.readers.choices(record)],
            action=f"/p/{token}",
            unsubscribe=f"/u/{unsubscribe}",
            saved=request.query_params.get("saved") == "1",
            signup=self.links.signup,
        )

    def save_preferences(self, request: Request, form: FormData | None) -> Response:
        token = request.path_params["token"]
        self._reader(token)
        if form is None:
            raise Refused(400, "Form not readable", "Nothing was changed; reload the page.")
        client = request.client.host if request.client else ""
        try:
            self.readers.save(
                token,
                topics=[str(t) for t in form.getlist("topics")],
                name=str(form.get("name", "")),
                pause=str(form.get("pause", "keep")),
                ip=client,
            )
        except TokenError as exc:
            raise Refused(409, "Not saved", str(exc)) from exc
        return RedirectResponse(f"/p/{token}?saved=1", 303)

    # unsubscribe (RFC 8058 one-click) ------------------------------------------------------

    def _address(self, request: Request) -> tuple[str, str]:
        token = request.path_params["token"]
        try:
            return token, read_unsubscribe_token(self.unsubscribes, token)
        except TokenError as exc:
            raise Refused(
                400,
                "Link not valid",
                f"This unsubscribe link cannot be used: {exc}. Nothing was changed. Reply to "
                "the newsletter to be removed by hand.",
            ) from exc

    def unsubscribe_form(self, request: Request, _form: FormData | None) -> Response:
        token, email = self._address(request)
        done = self.list.suppression(email) is not None  # a lookup by key
        return self.show(
            "unsubscribe.html", title="Unsubscribe", token=token, email=email, done=done
        )

    def unsubscribe(self, request: Request, _form: FormData | None) -> Response:
        # The body (List-Unsubscribe=One-Click, urlencoded or multipart) was read and is not
        # needed: the signed URL alone authorises this, and mail providers send no cookies.
        token, email = self._address(request)
        client = request.client.host if request.client else ""
        self.list.opt_out(
            email,
            reason="unsubscribed",
            now=self.app.now(),
            consent=("unsubscribe", "link", client, "unsubscribe link"),
        )
        return self.show(
            "unsubscribe.html", title="Unsubscribed", token=token, email=email, done=True
        )

    # archive -----------------------------------------------------------------------------

    def _editor(self, request: Request) -> bool:
        return self.accounts.session(request.cookies.get(self.accounts.session_cookie)) is not None

    def _private(self) -> Refused:
        return Refused(404, "Not found", "There is no such page.")

    def archive_index(self, request: Request, _form: FormData | None) -> Response:
        if not self.settings.archive.public and not self._editor(request):
            raise self._private()
        return HTMLResponse(self.archive.index(self.links))

    def archive_feed(self, request: Request, _form: FormData | None) -> Response:
        if not self.settings.archive.public:
            raise self._private()
        return Response(self.archive.feed(), media_type="application/atom+xml; charset=utf-8")

    def archive_edition(self, request: Request, _form: FormData | None) -> Response:
        edition_id = int(request.path_params["id"])
        if not self.settings.archive.public and not self._editor(request):
            try:
                allowed = read_archive_token(self.archive_keys, request.query_params.get("k", ""))
            except TokenError:
                allowed = -1
            if allowed != edition_id:
                raise self._private()
        edition = self.archive.get(edition_id)
        if edition is None:  # never sent (or not yet): not published
            raise Refused(404, "No such edition", f"There is no published edition {edition_id}.")
        return HTMLResponse(self.archive.edition(edition, self.links))
