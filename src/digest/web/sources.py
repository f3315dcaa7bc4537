"""The Sources page (`/sources`): every configured source's health, its last items and its
last error, for the editor wondering why a story is missing."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.exceptions import NeedSignIn
from digest.models import Story
from digest.store.sources import SourceState
from digest.web.common import Pages, Viewer, relative

LAST_ITEMS = 5


class Sources(Pages):
    """One card per source in the config, in the config's order."""

    def routes(self) -> list[Route]:
        return [Route("/sources", self.handle(self.sources, form=False), methods=["GET"])]

    def sources(self, request: Request, _form: FormData | None) -> Response:
        session = self.accounts.session(request.cookies.get(self.accounts.session_cookie))
        if session is None:
            raise NeedSignIn
        now = self.app.now()
        names = [s.name for s in self.settings.sources]
        state = SourceState(self.store)
        health, cached = state.health(names), state.cache(names)
        # Without a cache entry (no ETag or Last-Modified) the last items are those of the
        # newest edition that has any from the source.
        shown: dict[str, list[Story]] = {n: list(cached[n].stories) for n in cached}
        for edition in self.store.list_editions(limit=10):
            for story in edition.stories:
                if story.source in names and story.source not in cached:
                    shown.setdefault(story.source, []).append(story)
            cached_or_found = set(shown)
            if cached_or_found >= set(names):
                break
        alert = self.settings.fetch.failure_alert
        rows = []
        for source in self.settings.sources:
            h = health.get(source.name)
            failing = h is not None and h.consecutive_failures > 0
            rows.append(
                {
                    "source": source,
                    "health": h,
                    "status": "never fetched"
                    if h is None
                    else ("failing" if failing else "healthy"),
                    "alarm": h is not None and alert > 0 and h.consecutive_failures >= alert,
                    "success_in": relative(h.last_success, now) if h and h.last_success else "",
                    "error_in": relative(h.last_error_at, now) if h and h.last_error_at else "",
                    "last": shown.get(source.name, [])[:LAST_ITEMS],
                }
            )
        return self.page(
            request,
            "sources.html",
            title="Sources",
            viewer=Viewer(session.name, session.email),
            rows=rows,
            nav="sources",
        )
