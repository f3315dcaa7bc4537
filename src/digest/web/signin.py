"""The sign-in pages: ask for a link, open it (GET shows, POST signs in), password, sign out.

The answer to "mail me a link" is the same page whether or not the address is an editor's,
and the mail leaves after the response, so neither words nor timing tell who is an editor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.backends.base import Envelope
from digest.config import EditorSettings, Settings
from digest.exceptions import BackendError, ConfigError, Refused, TokenError
from digest.render.message import clean_name, mailbox, make_message_id, sender_address
from digest.web.auth import LINK_MINUTES, SESSION_HOURS, Accounts
from digest.web.common import Pages, client_of, safe_next

log = logging.getLogger("digest.web")


def link_envelope(settings: Settings, editor: EditorSettings, url: str, now: datetime) -> Envelope:
    """The sign-in mail: one link, what it does, how long it works."""
    pub = settings.publication
    text = (
        f"Hello {clean_name(editor.name)},\n\n"
        f"open this link to sign in to the editors' desk of {pub.name}:\n\n{url}\n\n"
        f"It works once, within {LINK_MINUTES} minutes. If you did not ask to sign in, "
        "ignore this e-mail: nobody can sign in without the link.\n"
    )
    message_id = make_message_id(pub.sender_domain)
    msg = EmailMessage()
    msg["From"] = pub.sender
    msg["To"] = mailbox(clean_name(editor.name), editor.email)
    msg["Subject"] = f"Sign in to {pub.name}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    return Envelope(sender_address(pub), editor.email, msg.as_bytes(policy=SMTP), message_id)


class SignIn(Pages):
    """/signin, /s/TOKEN and /signout."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/signin", h(self.form, form=False), methods=["GET"]),
            Route("/signin/link", h(self.request_link, form=True), methods=["POST"]),
            Route("/signin/password", h(self.password, form=True), methods=["POST"]),
            Route("/s/{token}", h(self.link_page, form=False), methods=["GET"]),
            Route("/s/{token}", h(self.use_link, form=True), methods=["POST"]),
            Route("/signout", h(self.signout, form=True), methods=["POST"]),
        ]

    def form(self, request: Request, form: FormData | None, **ctx: object) -> Response:
        status = int(str(ctx.pop("status", 200)))
        target = safe_next(form if form is not None else request.query_params)
        return self.page(
            request,
            "signin.html",
            status,
            title="Sign in",
            next=target,
            passwords=self.accounts.passwords(),
            editors=bool(self.settings.approval.editors),
            signed_out=request.query_params.get("out") == "1",
            **ctx,
        )

    def request_link(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        assert form is not None
        email = str(form.get("email", "")).strip()
        if "@" not in email or len(email) > 320:
            return self.form(request, form, status=400, message="Type your e-mail address.")
        found = self.accounts.request_link(email, client_of(request), target=safe_next(form))
        response = self.page(
            request,
            "signin_sent.html",
            title="Check your e-mail",
            email=email,
            minutes=LINK_MINUTES,
        )
        if found is not None:
            editor, url = found
            response.background = BackgroundTask(self._mail, editor, url)
        return response

    def _mail(self, editor: EditorSettings, url: str) -> None:
        envelope = link_envelope(self.settings, editor, url, self.app.now())
        try:
            with self.app.context.mail_backend() as connection:
                connection.send(envelope)
        except (BackendError, ConfigError) as exc:
            # Never the link itself: it is a credential.
            log.warning("sign-in link to %s not sent: %s", editor.email, exc)

    def link_page(self, request: Request, _form: FormData | None) -> Response:
        """GET only shows: mail scanners open every link, and must not sign anyone in."""
        token = request.path_params["token"]
        try:
            claim = self.accounts.read_link(token)
        except TokenError as exc:
            raise _link_refused(exc) from exc
        return self.page(
            request,
            "signin_link.html",
            title="Sign in",
            token=token,
            editor_name=claim.editor.name,
            hours=SESSION_HOURS,
        )

    def use_link(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        try:
            claim, cookie = self.accounts.use_link(request.path_params["token"], client_of(request))
        except TokenError as exc:
            raise _link_refused(exc) from exc
        return self._signed_in(safe_next({"next": claim.target}), cookie)

    def password(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        assert form is not None
        target = safe_next(form)
        try:
            found = self.accounts.password(
                str(form.get("email", "")), str(form.get("password", "")), client_of(request)
            )
        except ConfigError as exc:
            raise Refused(503, "Sign-in is not set up", str(exc)) from exc
        if found is None:
            # The password form again, open, with the address as typed: only it was wrong.
            typed = str(form.get("email", "")).strip()[:320]
            message = "Wrong e-mail address or password."
            return self.form(request, form, status=401, message=message, typed=typed)
        return self._signed_in(target, found[1])

    def _signed_in(self, target: str, cookie: str) -> Response:
        response = RedirectResponse(target, 303)
        self.cookie(response, self.accounts.session_cookie, cookie, max_age=SESSION_HOURS * 3600)
        return response

    def signout(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        self.accounts.end(request.cookies.get(self.accounts.session_cookie))
        response = RedirectResponse("/signin?out=1", 303)
        response.delete_cookie(
            self.accounts.session_cookie, path="/", secure=self.secure, httponly=True
        )
        return response


def _link_refused(exc: TokenError) -> Refused:
    return Refused(
        403,
        "Link refused",
        f"This sign-in link cannot be used: {exc}. Nothing was changed. Ask for a new link "
        "on the sign-in page.",
    )
