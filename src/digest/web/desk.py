"""The editors' pages: the list of editions, review, edit, test send, approve and reject."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.added import fetch_story, hand_story
from digest.app import App
from digest.checks import edition_findings
from digest.edits import Edit, Kind
from digest.exceptions import (
    NeedSignIn,
    PreflightFailed,
    Refused,
    SendLimitReached,
    StateError,
    TokenError,
)
from digest.models import Edition, EditionState
from digest.proofs import approval_signer, edition_date_line
from digest.render import placeholders
from digest.render.variants import ALL
from digest.store.figures import edition_figures
from digest.store.pause import Pauses
from digest.tokens import approval_token, read_approval_token
from digest.web.auth import Accounts
from digest.web.common import Pages, Viewer, clock, day, plural, relative
from digest.web.progress import view
from digest.workflow import Audience, counted_approvers, find_editor

log = logging.getLogger("digest.web")
S = EditionState

_NOTICES = {
    "revised": "Saved as a new revision; the earlier proof links no longer work. When you "
    "are done editing, Send proofs mails the new revision to the other editors.",
    "removed": "Story removed (a new revision).",
    "restored": "Story put back (a new revision).",
    "added": "Story added (a new revision).",
    "proofed": "Proofs of this revision are on their way to the other editors.",
    "approved": "Your approval is recorded.",
    "rejected": "The edition is rejected; it will not be sent.",
    "tested": "The test e-mail is on its way. It is not a delivery and counts for nothing.",
    "sending": "Sending has started.",
    "paused": "Paused: no new message goes out; those already in flight finish.",
    "resumed": "Resumed: the rest is going out.",
    "cancelled": "Cancelled: the edition will not be sent.",
    "moved": "The send time is moved; the schedule sends it then.",
}
_DONE = {Kind.REMOVE: "removed", Kind.RESTORE: "restored"}


class Desk(Pages):
    """Where editors review and decide; every change is a POST with a CSRF token."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)
        self.approvals = approval_signer(self.settings, clock=app.now, environ=environ)
        self.link_age = int(self.settings.approval.link_hours * 3600)

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/editions", h(self.editions, form=False)),
            Route("/e/{id}", h(self.review, form=False), methods=["GET"]),
            Route("/e/{id}/approve", h(self.confirm, form=False), methods=["GET"]),
            Route("/e/{id}/approve", h(self.approve, form=True), methods=["POST"]),
            Route("/e/{id}/reject", h(self.reject, form=True), methods=["POST"]),
            Route("/e/{id}/edit", h(self.change, form=True), methods=["POST"]),
            Route("/e/{id}/remove", h(self.change, form=True), methods=["POST"]),
            Route("/e/{id}/pin", h(self.change, form=True), methods=["POST"]),
            Route("/e/{id}/test", h(self.test_send, form=True), methods=["POST"]),
            Route("/e/{id}/proofs", h(self.send_proofs, form=True), methods=["POST"]),
            Route("/e/{id}/add", h(self.add, form=True), methods=["POST"]),
        ]

    def edition(self, edition_id: str) -> Edition:
        try:
            return self.store.get_edition(int(edition_id))
        except (ValueError, StateError):
            raise Refused(404, "No such edition", f"There is no edition {edition_id}.") from None

    def signed_in(self, request: Request) -> Viewer:
        session = self.accounts.session(request.cookies.get(self.accounts.session_cookie))
        if session is None:
            raise NeedSignIn
        return Viewer(session.name, session.email)

    def viewer(self, request: Request, edition: Edition, token: object) -> Viewer:
        """The editor behind a proof link (checked strictly), else the session, else sign-in."""
        if isinstance(token, str) and token:
            try:
                claim = read_approval_token(self.approvals, token, max_age=self.link_age)
            except TokenError as exc:
                raise Refused(
                    403,
                    "Link refused",
                    f"This review link cannot be used: {exc}. Nothing was changed. Use the "
                    "links in the latest proof, or sign in.",
                ) from exc
            editor = find_editor(self.app.editions.policy(), claim.editor)
            if claim.edition_id != edition.id or editor is None:
                raise Refused(403, "Link refused", "This link is not for this edition or editor.")
            if claim.revision != edition.revision:
                raise Refused(
                    410,
                    "Link superseded",
                    f"This link is for revision {claim.revision} of edition {edition.id}, which "
                    f"has been replaced by revision {edition.revision}. Nothing was changed. Use "
                    "the links in the newest proof.",
                )
            return Viewer(editor.name, editor.email, token)
        return self.signed_in(request)

    def back_to(
        self, edition: Edition, viewer: Viewer, notice: str, anchor: str = "", **more: str
    ) -> Response:
        """303 to the review page (at ``anchor``); a proof-link viewer gets a link for the
        current revision."""
        params = {"n": notice, **more}
        if viewer.token:
            params["t"] = approval_token(
                self.approvals,
                edition_id=edition.id,
                revision=edition.revision,
                editor=viewer.email,
            )
        fragment = f"#{anchor}" if anchor else ""
        return RedirectResponse(f"/e/{edition.id}?{urlencode(params)}{fragment}", 303)

    # editor pages ------------------------------------------------------------------------

    def editions(self, request: Request, _form: FormData | None) -> Response:
        """Every edition with its figures; ?state= filters, ?q= searches headlines."""
        viewer = self.signed_in(request)
        state = request.query_params.get("state", "")
        words = request.query_params.get("q", "").strip()[:200]
        found = [
            e
            for e in self.store.list_editions(limit=500)
            if (not state or e.state == state) and (not words or _mentions(e, words.casefold()))
        ]
        return self.page(
            request,
            "editions.html",
            title="Editions",
            viewer=viewer,
            editions=found,
            figures=edition_figures(self.store, [e.id for e in found]),
            states=[s.value for s in S],
            state=state,
            q=words,
            zone=self.settings.schedule.timezone,
            nav="editions",
        )

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
            name=viewer.name,
            email=viewer.email,
            unsubscribe_url=f"{self.settings.publication.base_url.rstrip('/')}/u/preview",
            date_line=edition_date_line(edition, self.settings.publication.timezone),
        )
        html_values = {k: html.escape(v, quote=True) for k, v in values.items()}
        now = self.app.now()
        audience = self.app.editions.audience(edition)
        pending = edition.state is S.PENDING_APPROVAL
        built = self.store.ranking(edition.id)
        extra = built[1] if built else {}
        findings = [str(f) for f in edition_findings(self.settings, shown, edition.stories)]
        undo = request.query_params.get("story", "")
        aside = self.accounts.desk.set_aside(edition.id)
        notice = _NOTICES.get(request.query_params.get("n", ""), "")
        approvals = counted_approvers(self.store, edition, self.app.editions.policy())
        if request.query_params.get("n") == "approved" and pending:
            got, needed = (
                len(approvals),
                self.settings.approval.approvals_needed,
            )
            notice = f"Your approval is recorded: {got} of {needed}. It needs another editor's."
        return self.page(
            request,
            "review.html",
            title=f"Edition {edition.id}",
            edition=edition,
            viewer=viewer,
            pending=pending,
            approvals=approvals,
            needed=self.settings.approval.approvals_needed,
            when=self.when(edition, now),
            send_line=self.send_line(edition, audience, now),
            variants=[
                (k, _variant_label(k), v.content_hash, audience.by_variant.get(k))
                for k, v in variants.items()
            ],
            variant=key,
            variant_hash=shown.content_hash,
            shown=shown,
            frame=placeholders.substitute(shown.html, html_values, shown.marker),
            text=placeholders.substitute(shown.text, values, shown.marker),
            findings=findings,
            note=str(extra.get("note") or ""),
            subject_override=str(extra.get("subject") or ""),
            set_aside=aside,
            undo=undo if any(s.url == undo for _, s in aside) else "",
            audit=list(reversed(self.store.audit_trail(edition.id))),
            notice=notice,
            tested=request.query_params.get("to", ""),
            hidden_fields={"t": viewer.token, "revision": str(edition.revision)},
            progress=self.progress_of(edition),
            returned=self.app.bounces.figures([edition.id])[edition.id],
            approved_by_me=viewer.name in approvals,
        )

    def progress_of(self, edition: Edition) -> dict[str, object] | None:
        """The send's figures once it can be sent (approved) or is going out."""
        if edition.state not in (S.APPROVED, S.SENDING, S.SENT, S.FAILED):
            return None
        return view(self.app.sending.progress(edition.id), self.settings.schedule.timezone)

    def when(self, edition: Edition, now: datetime) -> dict[str, object]:
        """The send time and approval deadline, in the schedule's zone and from now."""
        sched, policy = self.settings.schedule, self.settings.approval
        send_at = self.app.schedule.send_time(edition)  # moved by an editor, or the slot's
        earliest, latest = self.app.schedule.window(edition)
        deadline = self.app.schedule.deadline(edition)
        outcome = (
            "it is sent anyway (approval.at_deadline: send)"
            if policy.at_deadline == "send"
            else "it is not sent (approval.at_deadline: skip)"
        )
        return {
            "zone": sched.timezone,
            "day": day(send_at, sched.timezone),
            "send_clock": clock(send_at, sched.timezone),
            "send_in": relative(send_at, now),
            "send_passed": send_at <= now,
            "deadline_clock": clock(deadline, sched.timezone),
            "deadline_in": relative(deadline, now),
            "deadline_passed": deadline <= now,
            "outcome": outcome,
            "local": sched.local_delivery,
            "moved": send_at != self.app.schedule.slot_for(edition.slot).first_wave,
            "earliest": clock(earliest, sched.timezone),
            "latest": clock(latest, sched.timezone),
        }

    def send_line(self, edition: Edition, audience: Audience, now: datetime) -> str:
        """ "Goes to 1,204 recipients (3 variants) at 07:00 Europe/London, in 47 min"."""
        when = self.when(edition, now)
        who = plural(audience.recipients, "recipient")
        if len(audience.by_variant) > 1:
            who += f" ({plural(len(audience.by_variant), 'variant')})"
        at = f"{when['send_clock']} {when['zone']}"
        if when["local"]:
            at = f"{when['send_clock']} in each reader's time zone"
        if edition.state is S.SENT:
            return f"Sent to {who}."
        if edition.state is S.SENDING and Pauses(self.store).get(edition.id) is not None:
            return f"Paused while going to {who}; the rest get it when resumed."
        if edition.state is S.SENDING:
            return f"Sending to {who} now."
        if edition.state in (S.REJECTED, S.EXPIRED):
            return f"Not sent: the edition is {edition.state}."
        if when["send_passed"]:
            return f"Goes to {who}; it was due at {at} ({when['send_in']})."
        return f"Goes to {who} at {at}, {when['send_in']}."

    def confirm(self, request: Request, _form: FormData | None) -> Response:
        edition = self.edition(request.path_params["id"])
        viewer = self.viewer(request, edition, request.query_params.get("t"))
        if edition.state is not S.PENDING_APPROVAL:
            # Approved already (the back button, a second click): the edition as it is now.
            return self.back_to(edition, viewer, "")
        review_url = f"/e/{edition.id}" + (f"?t={viewer.token}" if viewer.token else "")
        now = self.app.now()
        return self.page(
            request,
            "confirm.html",
            title=f"Approve edition {edition.id}",
            edition=edition,
            viewer=viewer,
            approvals=counted_approvers(self.store, edition, self.app.editions.policy()),
            needed=self.settings.approval.approvals_needed,
            review_url=review_url,
            send_line=self.send_line(edition, self.app.editions.audience(edition), now),
            when=self.when(edition, now),
        )

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
        try:
            result = self.app.editions.approve(
                edition.id, by=viewer.email, via="web", revision=revision
            )
        except PreflightFailed as exc:
            # What would go out broken is not approved; the page names each error to fix.
            raise Refused(409, "Not approved: preflight errors", str(exc)) from None
        return self.back_to(result.edition, viewer, "approved")

    def reject(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        rejected = self.app.editions.reject(
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
        action = request.url.path.rsplit("/", 1)[1]
        try:
            kind = Kind(str(form.get("action", "")) if action == "edit" else action)
            position = int(str(form.get("position", "1")))
        except ValueError:
            raise Refused(400, "Form refused", "The form asks for a change there is not.") from None
        url = str(form.get("url", ""))
        edit = Edit(kind, url=url, text=str(form.get("text", "")), position=position)
        # No proofs per edit: a proof per click would bury the other editors in mail.
        revised = self.app.editions.revise(
            edition.id, by=viewer.email, via="web", revision=revision, edits=[edit], proofs=False
        )
        for problem in revised.warnings[len(edition.warnings) :]:
            log.warning("%s", problem)
        more = {"story": url} if kind is Kind.REMOVE else {}
        urls = [s.url for s in revised.stories]
        # Back to the story edited (where a removed one was; its undo is at the top).
        at = urls.index(url) + 1 if url in urls else min(position_of(edition, url), len(urls))
        anchor = f"story-{at}" if at else ""
        return self.back_to(revised, viewer, _DONE.get(kind, "revised"), anchor=anchor, **more)

    def add(self, request: Request, form: FormData | None) -> Response:
        """A story by URL (fetched like a page source's article) or typed by hand."""
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        try:
            position = int(str(form.get("position", "1")))
        except ValueError:
            raise Refused(400, "Form refused", "The position is not a number.") from None
        field = {k: str(form.get(k, "")) for k in ("url", "link", "title", "teaser", "image")}
        now = self.app.now()
        if field["link"].strip() or field["title"].strip():
            story = hand_story(
                url=field["link"],
                title=field["title"],
                teaser=field["teaser"],
                image=field["image"],
                now=now,
            )
        else:
            story = fetch_story(self.settings, field["url"], now=now)
        edit = Edit(Kind.ADD, url=story.url, position=position, story=story)
        revised = self.app.editions.revise(
            edition.id, by=viewer.email, via="web", revision=revision, edits=[edit], proofs=False
        )
        at = position_of(revised, story.url)
        return self.back_to(revised, viewer, "added", anchor=f"story-{at}")

    def send_proofs(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        if revision != edition.revision:
            raise Refused(409, "Changed meanwhile", f"Edition {edition.id} has a newer revision.")
        problems = self.app.editions.proofs(edition, skip=viewer.email)
        if problems:
            raise Refused(502, "Proofs not sent", "; ".join(problems))
        return self.back_to(edition, viewer, "proofed")

    def test_send(self, request: Request, form: FormData | None) -> Response:
        edition, viewer, revision = self._action(request, form)
        assert form is not None
        to = str(form.get("to", "")).strip()
        variant = str(form.get("variant", ALL))
        try:
            self.app.editions.send_test(
                edition.id, by=viewer.email, to=to, revision=revision, variant=variant
            )
        except SendLimitReached as exc:
            raise Refused(429, "Too many test e-mails", str(exc)) from exc
        return self.back_to(self.store.get_edition(edition.id), viewer, "tested", to=to)


def _mentions(edition: Edition, words: str) -> bool:
    """Whether the subject or a headline of ``edition`` holds ``words`` (case-folded)."""
    texts = [edition.rendered.subject, *(s.title for s in edition.stories)]
    return any(words in t.casefold() for t in texts)


def position_of(edition: Edition, url: str) -> int:
    """1-based place of ``url`` among the edition's stories, 0 if it is not one of them."""
    urls = [s.url for s in edition.stories]
    return urls.index(url) + 1 if url in urls else 0


def _variant_label(key: str) -> str:
    topics = json.loads(key)
    return ", ".join(t[:1].upper() + t[1:] for t in topics) if topics else "Whole edition"
