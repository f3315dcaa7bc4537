"""Today (`/`): what needs an editor now, what comes next, what is going out, what failed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import NeedSignIn
from digest.models import DeliveryState, EditionState
from digest.web.auth import Accounts
from digest.web.common import Pages, Viewer, clock, day, relative
from digest.workflow import counted_approvers

S = EditionState
D = DeliveryState
NEXT_SLOTS = 3
RECENT = 5


class Today(Pages):
    """The editor's start page after signing in."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)

    def routes(self) -> list[Route]:
        return [Route("/", self.handle(self.today, form=False), methods=["GET"])]

    def today(self, request: Request, _form: FormData | None) -> Response:
        session = self.accounts.session(request.cookies.get(self.accounts.session_cookie))
        if session is None:
            raise NeedSignIn
        now = self.app.now()
        zone = self.settings.schedule.timezone
        editions = self.store.list_editions(limit=30)
        policy = self.app.editions.policy()  # a revoked editor's approvals no longer count
        pending: list[dict[str, Any]] = []
        for e in editions:
            if e.state is S.PENDING_APPROVAL:
                deadline = self.app.schedule.deadline(e)
                send_at = self.app.schedule.slot_for(e.slot).first_wave
                pending.append(
                    {
                        "edition": e,
                        "at": deadline,
                        "approvals": len(counted_approvers(self.store, e, policy)),
                        "deadline": clock(deadline, zone),
                        "deadline_in": relative(deadline, now),
                        "passed": deadline <= now,
                        "send": clock(send_at, zone),
                        "day": day(send_at, zone),
                    }
                )
        pending.sort(key=lambda p: p["at"])  # the most urgent (earliest deadline) first
        sending = [self._progress(e) for e in editions if e.state is S.SENDING]
        sent = [self._progress(e) for e in editions if e.state is S.SENT][:RECENT]
        failing = [r for r in self.app.context.source_health(live=True) if r["alert"]]
        slots = self._next_slots(now)
        shown = {s["edition"].id for s in slots if s["edition"] is not None}
        return self.page(
            request,
            "today.html",
            title="Today",
            viewer=Viewer(session.name, session.email),
            nav="today",
            pending=pending,
            sending=sending,
            sent=sent,
            failing=failing,
            sources=len(self.settings.sources),
            slots=slots,
            approved=[e for e in editions if e.state is S.APPROVED and e.id not in shown][:RECENT],
            alert=self.settings.fetch.failure_alert,
            approvals_needed=self.settings.approval.approvals_needed,
        )

    def _progress(self, edition: Any) -> dict[str, Any]:
        counts = self.store.delivery_counts(edition.id)
        total = sum(counts.values())
        done = sum(counts.get(s.value, 0) for s in (D.SENT, D.FAILED, D.SKIPPED, D.UNKNOWN))
        return {
            "edition": edition,
            "total": total,
            "done": done,
            "sent": counts.get(D.SENT.value, 0),
            "failed": counts.get(D.FAILED.value, 0),
            "percent": int(100 * done / total) if total else 0,
        }

    def _next_slots(self, now: Any) -> list[dict[str, Any]]:
        sched = self.settings.schedule
        zone = sched.timezone
        every = self.app.schedule.slots_between(now, now + timedelta(days=8))
        upcoming = [s for s in every if s.first_wave > now][:NEXT_SLOTS]
        out = []
        for s in upcoming:
            edition = self.store.latest_for_slot(s.key)
            out.append(
                {
                    "day": day(s.first_wave, zone),
                    "send": clock(s.first_wave, zone),
                    "send_in": relative(s.first_wave, now),
                    "build": clock(s.build_at, zone),
                    "built": s.build_at <= now,
                    "edition": edition,
                }
            )
        return out
