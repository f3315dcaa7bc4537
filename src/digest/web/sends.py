"""The desk's send control: send now (after a confirmation page), pause, resume, cancel,
and the progress of a send as a small JSON document the review page polls.

The send itself runs in a thread of this process (``Runner``), exactly as `digest send`
would run it; pause and resume go through the store, so they also stop and restart a send
running in another process (`digest send`, `digest worker`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import DigestError, LockedError, Refused
from digest.models import Edition, EditionState
from digest.web.auth import Accounts
from digest.web.common import Viewer
from digest.web.desk import Desk
from digest.web.progress import view

log = logging.getLogger("digest.web")
S = EditionState
STARTING = 60.0  # seconds a "send now" waits for the recipient list to be frozen
ENDING = 30.0  # seconds a resume waits for the paused run to finish its in-flight messages


class Runner:
    """At most one send thread per edition in this process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.threads: dict[int, threading.Thread] = {}
        self.lock = threading.Lock()

    def start(self, edition_id: int, *, actor: str) -> str:
        """Start sending; return once the edition is sending (or the send ended), with the
        error that stopped it ("" if none)."""
        with self.lock:
            running = self.threads.get(edition_id)
            if running is not None and running.is_alive():
                running.join(ENDING)  # a paused run finishing what was in flight
                if running.is_alive():
                    return ""  # still sending: it finds the rows the resume made due
            begun = threading.Event()
            failure: list[str] = []

            def run() -> None:
                try:
                    self.app.sending.send(edition_id, actor=actor, on_sending=begun.set)
                except LockedError as exc:
                    log.info("edition %s: %s", edition_id, exc)
                except DigestError as exc:
                    failure.append(str(exc))
                    log.warning("edition %s: the send stopped: %s", edition_id, exc)
                finally:
                    begun.set()

            thread = threading.Thread(target=run, name=f"digest-send-{edition_id}", daemon=True)
            self.threads[edition_id] = thread
            thread.start()
        begun.wait(STARTING)
        return failure[0] if failure else ""


class Sends(Desk):
    """Routes of the send control; every change is a POST with the session's CSRF token."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        super().__init__(app, environ, accounts)
        self.runner = Runner(app)

    def routes(self) -> list[Route]:
        h = self.handle
        return [
            Route("/e/{id}/send", h(self.confirm_send, form=False), methods=["GET"]),
            Route("/e/{id}/send", h(self.send_now, form=True), methods=["POST"]),
            Route("/e/{id}/pause", h(self.pause, form=True), methods=["POST"]),
            Route("/e/{id}/resume", h(self.resume, form=True), methods=["POST"]),
            Route("/e/{id}/cancel", h(self.cancel, form=True), methods=["POST"]),
            Route("/e/{id}/progress.json", h(self.progress, form=False), methods=["GET"]),
        ]

    def _control(self, request: Request, form: FormData | None) -> tuple[Edition, Viewer]:
        """A signed-in editor's form (a proof link cannot send), same origin, with its token."""
        self.check_csrf(request, form)
        return self.edition(request.path_params["id"]), self.signed_in(request)

    def confirm_send(self, request: Request, _form: FormData | None) -> Response:
        edition = self.edition(request.path_params["id"])
        viewer = self.signed_in(request)
        if edition.state is not S.APPROVED:
            raise Refused(
                409,
                "Nothing to send",
                f"Edition {edition.id} is {edition.state.replace('_', ' ')}.",
            )
        audience = self.app.editions.audience(edition)
        return self.page(
            request,
            "send_confirm.html",
            title=f"Send edition {edition.id} now?",
            edition=edition,
            viewer=viewer,
            recipients=audience.recipients,
            when=self.when(edition, self.app.now()),
        )

    def send_now(self, request: Request, form: FormData | None) -> Response:
        edition, viewer = self._control(request, form)
        if edition.state is not S.APPROVED:
            raise Refused(
                409,
                "Nothing to send",
                f"Edition {edition.id} is {edition.state.replace('_', ' ')}.",
            )
        failure = self.runner.start(edition.id, actor=viewer.name)
        if failure:
            raise Refused(409, "Not sent", failure)
        return self._back(edition, "sending")

    def pause(self, request: Request, form: FormData | None) -> Response:
        edition, viewer = self._control(request, form)
        self.app.sending.pause(edition.id, by=viewer.name, via="web")
        return self._back(edition, "paused")

    def resume(self, request: Request, form: FormData | None) -> Response:
        edition, viewer = self._control(request, form)
        self.app.sending.resume(edition.id, by=viewer.name, via="web")
        failure = self.runner.start(edition.id, actor=viewer.name)
        if failure:
            raise Refused(409, "Not resumed", failure)
        return self._back(edition, "resumed")

    def cancel(self, request: Request, form: FormData | None) -> Response:
        edition, viewer = self._control(request, form)
        self.app.sending.cancel(edition.id, by=viewer.name, via="web")
        return self._back(edition, "cancelled")

    def progress(self, request: Request, _form: FormData | None) -> Response:
        edition = self.edition(request.path_params["id"])
        self.signed_in(request)
        progress = self.app.sending.progress(edition.id)
        return JSONResponse(view(progress, self.settings.schedule.timezone))

    @staticmethod
    def _back(edition: Edition, notice: str) -> Response:
        return RedirectResponse(f"/e/{edition.id}?n={notice}#progress", 303)
