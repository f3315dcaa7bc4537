"""What every page shares: rendering with CSRF tokens, the same-origin check of every form,
errors as pages, security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.app import App
from digest.exceptions import DigestError, NeedSignIn, Refused, StateError, Throttled
from digest.web.auth import MIN_TOKEN, Accounts, new_csrf

CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),  # for browsers that predate frame-ancestors
    (b"referrer-policy", b"no-referrer"),  # proof tokens are in URLs
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a signed-in editor, or one let in by a proof link (``token``)."""

    name: str
    email: str
    token: str = ""


class SecurityHeaders:
    """Adds the same protective headers to every response; HSTS when served over https."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = [*_HEADERS, *([_HSTS] if hsts else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = list(message.get("headers", []))
                # A response's own Cache-Control (the immutable images) wins over no-store.
                present = {k.lower() for k, _ in own}
                message["headers"] = [*own, *(h for h in self.headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Pages:
    """Request handlers sharing one App (config, store, clock) and one template folder."""

    def __init__(self, app: App, environ: Mapping[str, str], accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts
        self.settings = app.settings
        self.store = app.store
        self.environ = environ
        # Cookies are Secure whenever the public address is https, whatever the hop from a
        # proxy to this server looks like.
        self.secure = self.settings.publication.base_url.lower().startswith("https://")
        self.origins = frozenset({origin_of(self.settings.publication.base_url)})
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("digest.web", "templates"), autoescape=True
        )
        zone = self.settings.schedule.timezone
        self.env.filters.update(
            number=number,
            plural=plural,
            local=lambda moment: moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z"),
        )
        self.env.globals.update(publication=self.settings.publication.name)

    def page(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        """Render a template with the CSRF token of this browser's session (or pre-session,
        made here if the browser has none yet)."""
        binding = self.binding(request)
        fresh = "" if binding else new_csrf()
        csrf = self.accounts.csrf.token(binding or f"pre:{fresh}")
        html = self.env.get_template(name).render(csrf=csrf, **ctx)
        response = HTMLResponse(html, status_code=status)
        if fresh:
            self.cookie(response, self.accounts.csrf_cookie, fresh)
        return response

    def binding(self, request: Request) -> str:
        """What this browser's form tokens are bound to: its session cookie if it sends one,
        else its pre-session cookie; "" if neither (no token can match then)."""
        session = request.cookies.get(self.accounts.session_cookie, "")
        if len(session) >= MIN_TOKEN:
            return f"session:{session}"
        pre = request.cookies.get(self.accounts.csrf_cookie, "")
        return f"pre:{pre}" if len(pre) >= MIN_TOKEN else ""

    def cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            path="/",
            secure=self.secure,
        )

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
            except Throttled as exc:
                response = self.refused(request, Refused(429, "Too many attempts", str(exc)))
                response.headers["retry-after"] = str(exc.retry_after)
                return response
            except NeedSignIn:
                target = request.url.path
                return RedirectResponse(f"/signin?next={quote(target, safe='/')}", 303)
            except StateError as exc:
                return self.refused(request, Refused(409, "Not possible now", str(exc)))
            except DigestError as exc:
                return self.refused(request, Refused(400, "Not possible", str(exc)))

        return endpoint

    def check_csrf(self, request: Request, form: FormData | None) -> None:
        """Every state-changing form of the desk: same origin, and the session's token."""
        verdict = cross_origin(request, self.origins)
        if verdict:
            raise Refused(
                403,
                "Form refused",
                f"This form was sent from another site ({verdict}). Nothing was changed; "
                "open the page on this site and send the form from there.",
            )
        if form is None or not self.accounts.csrf.check(self.binding(request), form.get("csrf")):
            raise Refused(
                403,
                "Form refused",
                "This form was not sent from this site's page, or the page is too old "
                "(missing or wrong CSRF token). Nothing was changed; reload the page and retry.",
            )


async def _form(request: Request) -> FormData | None:
    try:
        return await request.form()
    except Exception:  # python-multipart and Starlette raise several types for bad bodies
        return None


def safe_next(params: Mapping[str, Any]) -> str:
    """Only local paths: an open redirect would turn the sign-in page into a phishing aid."""
    target = str(params.get("next", "") or "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def origin_of(url: str) -> str:
    """scheme://host[:port] of ``url``, lower case, without a default port ("" if none)."""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if not parts.scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def cross_origin(
    request: Request, origins: frozenset[str], *, allowed: frozenset[str] = frozenset()
) -> str:
    """Why a POST comes from another site, or "" if it may be from this one.

    Fetch metadata first (every current browser sends Sec-Fetch-Site): only same-origin and
    none (typed, bookmarked) pass; same-site is refused too, because a sibling subdomain is
    exactly the attacker SameSite cookies do not keep out. Then Origin, which browsers send
    on every POST since about 2020; "null" (sandboxed frames, privacy redirects) is
    refused. Then Referer, which our pages suppress (Referrer-Policy) but older browsers
    may send. A client that sends none of them (curl, a script, a very old browser) is not
    one an attacking page can drive, and still needs the session's token. The site's own
    origin is publication.base_url's, or the one the request was addressed to (a local
    address): a browser always names the origin it really is on.
    """
    own = origins | {origin_of(str(request.base_url))}
    # A page of another site that may post here (signup.allowed_origins: the newsroom's own
    # site embedding the sign-up form) passes by its Origin, whatever Sec-Fetch-Site says.
    if allowed and origin_of(request.headers.get("origin", "")) in allowed:
        return ""
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return "" if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    origin = request.headers.get("origin", "").strip()
    if origin:
        return "" if origin_of(origin) in own else f"Origin: {origin[:100]}"
    referer = request.headers.get("referer", "").strip()
    if referer and origin_of(referer) not in own:
        return f"Referer from {origin_of(referer)[:100] or 'elsewhere'}"
    return ""


def client_of(request: Request) -> str:
    """The client's address, as uvicorn saw it (X-Forwarded-For from a loopback proxy)."""
    return request.client.host if request.client else "unknown"


# Plain words for times and counts -------------------------------------------------------


def number(n: int) -> str:
    """1204 -> "1,204"."""
    return f"{n:,}"


def plural(n: int, word: str, many: str = "") -> str:
    """(1, "recipient") -> "1 recipient"; (3, "recipient") -> "3 recipients"."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def clock(moment: datetime, zone: str) -> str:
    """HH:MM in ``zone``."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def day(moment: datetime, zone: str) -> str:
    """ "Tue 24 Nov" in ``zone``."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b}"


def relative(moment: datetime, now: datetime) -> str:
    """ "in 47 min", "in 2 h 5 min", "3 days ago": the distance from ``now`` in words."""
    seconds = (moment - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    if minutes < 1:
        return "in under a minute" if seconds > 0 else "just now"
    if minutes < 60:
        words = f"{minutes} min"
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        words = f"{hours} h" + (f" {rest} min" if rest else "")
    else:
        words = plural(minutes // (24 * 60), "day")
    return f"in {words}" if seconds > 0 else f"{words} ago"
