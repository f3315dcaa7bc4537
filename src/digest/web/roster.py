"""The desk's Readers page (`/readers`): how many readers in each state, who came and went
week by week, and one address found, paused or unsubscribed on the reader's behalf.

The figures are a few grouped queries (store.reader_figures), never a row per reader in
Python; benchmarks/desk_readers.py times them at a million readers. A change is a POST
with the session's CSRF token, and the reader's consent trail names the editor who made it
(`digest subscribers show` prints it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import NeedSignIn, Refused
from digest.models import SubscriberState
from digest.store.reader_figures import growth, state_counts
from digest.store.subscribers import SubscriberStore
from digest.subscribers import manage
from digest.subscribers.signup import PAUSES
from digest.web.auth import Accounts
from digest.web.common import Pages, Viewer

log = logging.getLogger("digest.web")
S = SubscriberState
SHOWN = (S.ACTIVE, S.PENDING, S.PAUSED, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED)
WEEKS = 12
_NOTICES = {
    "paused": "Paused on the reader's behalf; their consent record names you.",
    "unsubscribed": "Unsubscribed on the reader's behalf; no sync or import adds them again.",
}


class Roster(Pages):
    """The Readers tab of the desk."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)
        zone = ZoneInfo(self.settings.schedule.timezone)
        self.env.filters["weekday"] = lambda moment: moment.astimezone(zone).strftime("%-d %b")

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/readers", h(self.readers, form=False), methods=["GET"]),
            Route("/readers/pause", h(self.pause, form=True), methods=["POST"]),
            Route("/readers/unsubscribe", h(self.unsubscribe, form=True), methods=["POST"]),
        ]

    def _signed_in(self, request: Request) -> Viewer:
        session = self.accounts.session(request.cookies.get(self.accounts.session_cookie))
        if session is None:
            raise NeedSignIn
        return Viewer(session.name, session.email)

    def readers(self, request: Request, _form: FormData | None) -> Response:
        viewer = self._signed_in(request)
        counts = state_counts(self.store)
        weeks = growth(self.store, now=self.app.now(), weeks=WEEKS)
        wanted = request.query_params.get("q", "").strip()[:320]
        subs = SubscriberStore(self.store)
        found = subs.get(wanted) if wanted else None
        return self.page(
            request,
            "roster.html",
            title="Readers",
            viewer=viewer,
            nav="readers",
            counts=[(s.value, counts.get(s.value, 0)) for s in SHOWN],
            total=sum(counts.values()),
            weeks=weeks,
            biggest=max([1, *(max(w.joined, w.left) for w in weeks)]),
            q=wanted,
            found=found,
            consents=subs.consents(found.id)[-5:] if found else [],
            pauses=PAUSES,
            notice=_NOTICES.get(request.query_params.get("n", ""), ""),
        )

    def _change(self, request: Request, form: FormData | None) -> tuple[str, Viewer]:
        self.check_csrf(request, form)
        assert form is not None  # check_csrf refuses a missing form
        viewer = self._signed_in(request)
        email = str(form.get("email", "")).strip()
        if not email:
            raise Refused(400, "Form refused", "The form names no address.")
        return email, viewer

    def pause(self, request: Request, form: FormData | None) -> Response:
        email, viewer = self._change(request, form)
        assert form is not None
        weeks = str(form.get("weeks", ""))
        if not weeks.isdigit() or int(weeks) not in PAUSES:
            choices = ", ".join(map(str, PAUSES))
            raise Refused(400, "Form refused", f"A pause is {choices} weeks, not {weeks!r}.")
        by = f"{viewer.name} <{viewer.email}>"
        record = manage.pause(
            self.store, email, weeks=int(weeks), now=self.app.now(), by=by, via="desk"
        )
        log.info("reader paused for %s week(s) on their behalf by %s", weeks, viewer.name)
        return self._back(record.email, "paused")

    def unsubscribe(self, request: Request, form: FormData | None) -> Response:
        email, viewer = self._change(request, form)
        by = f"{viewer.name} <{viewer.email}>"
        record = manage.remove(self.store, email, now=self.app.now(), by=by, via="desk")
        log.info("reader unsubscribed on their behalf by %s", viewer.name)
        return self._back(record.email, "unsubscribed")

    @staticmethod
    def _back(email: str, notice: str) -> Response:
        return RedirectResponse(f"/readers?{urlencode({'q': email, 'n': notice})}#found", 303)
