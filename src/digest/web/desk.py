"""The editors' pages: sign-in, the list of editions, review, approve, reject, edit."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import ConfigError, StateError, TokenError
from digest.models import Edition, EditionState
from digest.proofs import approval_signer
from digest.render import placeholders
from digest.render.variants import ALL
from digest.tokens import approval_token, read_approval_token, secrets_from_env
from digest.web.auth import SESSION_COOKIE, Sessions, sign_in
from digest.web.common import NeedSignIn, Pages, Refused, Viewer, safe_next
from digest.workflow import find_editor

log = logging.getLogger("digest.web")

_NOTICES = {
    "revised": "Saved as a new revision; the earlier proof links no longer work, and the "
    "editors were sent new proofs.",
    "approved": "Your approval is recorded.",
    "rejected": "The edition is rejected; it will not be sent.",
}


class Desk(Pages):
    """Where editors review and decide; every change is a POST with a CSRF token."""

    def __init__(self, app: App, environ: Mapping[str, str]) -> None:
        super().__init__(app, environ)
        keys = secrets_from_env(self.settings.secret_env, environ)
        self.approvals = approval_signer(self.settings, clock=app.now, environ=environ)
        self.sessions = Sessions(self.settings, keys, clock=app.now)
        self.link_age = int(self.settings.approval.link_hours * 3600)

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/", lambda _r: RedirectResponse("/editions", 303)),
            Route("/editions", h(self.editions, form=False)),
            Route("/signin", h(self.signin_form, form=False), methods=["GET"]),
            Route("/signin", h(self.signin, form=True), methods=["POST"]),
            Route("/signout", h(self.signout, form=True), methods=["POST"]),
            Route("/e/{id}", h(self.review, form=False), methods=["GET"]),
            Route("/e/{id}/approve", h(self.confirm, form=False), methods=["GET"]),
            Route("/e/{id}/approve", h(self.approve, form=True), methods=["POST"]),
            Route("/e/{id}/reject", h(self.reject, form=True), methods=["POST"]),
            Route("/e/{id}/remove", h(self.change, form=True), methods=["POST"]),
            Route("/e/{id}/pin", h(self.change, form=True), methods=["POST"]),
        ]

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
            editor = find_editor(self.settings.approval, claim.editor)
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
        # Each topic variant is shown exactly as stored and approved; ?variant=KEY picks one.
        variants = {ALL: edition.rendered} | {
            v.key: v.rendered for v in self.store.variants(edition)
        }
        key = request.query_params.get("variant", ALL)
        if key not in variants:
            raise Refused(404, "No such variant", f"Edition {edition.id} has no variant {key}.")
        shown = variants[key]
        values = placeholders.values_for(
            name=viewer.name, email=viewer.email,
            unsubscribe_url=f"{self.settings.publication.base_url.rstrip('/')}/u/preview",
        )  # fmt: skip
        html_values = {k: html.escape(v, quote=True) for k, v in values.items()}
        return self.page(
            request, "review.html", title=f"Edition {edition.id}", edition=edition,
            viewer=viewer, pending=edition.state is EditionState.PENDING_APPROVAL,
            approvals=self.store.approvers(edition),
            needed=self.settings.approval.approvals_needed,
            deadline=self.app.deadline(edition).isoformat(),
            variants=[(k, _variant_label(k), v.content_hash) for k, v in variants.items()],
            variant=key, variant_hash=shown.content_hash,
            frame=placeholders.substitute(shown.html, html_values),
            text=placeholders.substitute(shown.text, values),
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
            viewer=viewer, approvals=self.store.approvers(edition),
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
        result = self.app.approve(edition.id, by=viewer.email, via="web", revision=revision)
        return self.back_to(result.edition, viewer, "approved")

    def reject(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        rejected = self.app.reject(
            edition.id,
            by=viewer.email,
            via="web",
            reason=str(form.get("reason", "")),
            revision=revision,
        )
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
        revised = self.app.revise(
            edition.id, by=viewer.email, via="web", revision=revision,
            remove=() if pin else (url,), pin=url if pin else None, position=position,
        )  # fmt: skip
        for problem in revised.warnings[len(edition.warnings) :]:
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
            request, "signin.html", title="Sign in", next=safe_next(request.query_params)
        )

    def signin(self, request: Request, form: FormData | None) -> Response:
        self.check_csrf(request, form)
        assert form is not None
        target = safe_next(form)
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


def _variant_label(key: str) -> str:
    topics = json.loads(key)
    return ", ".join(topics) if topics else "Whole edition"
