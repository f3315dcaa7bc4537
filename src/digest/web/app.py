"""The web app: the editors' desk and the readers' pages, as one Starlette ASGI app.

Link scanners open every URL in a message, so no GET changes anything: approve, reject,
edits, sign-in and unsubscribe happen only on POST. Editor forms carry a CSRF token; the
one-click unsubscribe POST (RFC 8058) needs none, because its signed URL is the credential.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from digest.app import App
from digest.store.desk import Backoff
from digest.tokens import secrets_from_env
from digest.web.auth import Accounts
from digest.web.common import SecurityHeaders
from digest.web.desk import Desk
from digest.web.metrics import Operations
from digest.web.readers import Readers
from digest.web.sends import Sends
from digest.web.signin import SignIn
from digest.web.sources import Sources
from digest.web.today import Today

STATIC = Path(__file__).parent / "static"


async def favicon(_request: Request) -> Response:
    """Browsers ask for /favicon.ico on every site; a 404 there is a console error."""
    headers = {"cache-control": "public, max-age=86400"}
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon", headers=headers)


def create_app(
    app: App, *, environ: Mapping[str, str] | None = None, backoff: Backoff | None = None
) -> Starlette:
    """The ASGI app for ``app``'s config; ConfigError at once if the signing key is missing."""
    env = os.environ if environ is None else environ
    accounts = Accounts(app, secrets_from_env(app.settings.secret_env, env), env, backoff)
    static = StaticFiles(directory=STATIC)
    routes = [
        *Today(app, env, accounts).routes(),
        *SignIn(app, env, accounts).routes(),
        *Desk(app, env, accounts).routes(),
        *Sends(app, env, accounts).routes(),
        *Sources(app, env, accounts).routes(),
        *Readers(app, env, accounts).routes(),
        *Operations(app, env).routes(),
        Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
        Mount("/static", app=static, name="static"),
    ]
    hsts = app.settings.publication.base_url.lower().startswith("https://")
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, hsts=hsts)])
