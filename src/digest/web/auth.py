"""Editor sign-in: mailed sign-in links, optional per-editor passwords, server-side sessions.

Every editor signs in as themselves, so an approval always names one person. A sign-in link
is signed, names one editor, works once and for LINK_MINUTES; a session is a random cookie
whose hash is a row in the store, so signing out or `digest editors revoke` ends it at once.
Failed attempts are throttled per address and per client (store.desk.Backoff).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from digest.app import App
from digest.config import EditorSettings
from digest.exceptions import Throttled, TokenError
from digest.passwords import check_password, hash_password
from digest.store.desk import Backoff, DeskState
from digest.tokens import Signer
from digest.workflow import find_editor

SESSION_COOKIE = "digest_session"
CSRF_COOKIE = "digest_csrf"
SESSION_HOURS = 12
LINK_MINUTES = 15
LINK_SALT = "digest.signin-link.v1"
MIN_TOKEN = 16  # no credential shorter than this is ever accepted


@functools.cache
def _decoy() -> str:
    # Checked when the address has no password, so a wrong address costs the same time.
    return hash_password(secrets.token_urlsafe(16))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """A valid, unused sign-in link: whose, its nonce's hash, and the page it leads to."""

    editor: EditorSettings
    nonce_hash: str
    target: str = "/"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in editor."""

    name: str
    email: str


class Accounts:
    """Sign-in links, passwords, sessions and the throttle for one App."""

    def __init__(
        self, app: App, keys: list[str], environ: Mapping[str, str], backoff: Backoff | None = None
    ) -> None:
        self.app = app
        self.desk = DeskState(app.store)
        self.environ = environ
        self.backoff = backoff or Backoff()
        self.links = Signer(keys, salt=LINK_SALT, clock=app.now)

    def editor(self, email: str) -> EditorSettings | None:
        """The editor (not revoked) with this address."""
        key = email.strip().lower()
        found = find_editor(self.app.policy(), key)
        return found if found is not None and found.email.lower() == key else None

    def passwords(self) -> bool:
        """Whether any editor has a password set (the sign-in page then offers one)."""
        return any(
            e.password_hash_env and self.environ.get(e.password_hash_env)
            for e in self.app.settings.approval.editors
        )

    def _check(self, keys: list[str]) -> None:
        until = self.desk.blocked_until(keys, now=self.app.now())
        if until is not None:
            wait = max(1, int((until - self.app.now()).total_seconds() + 0.999))
            raise Throttled(wait)

    def _fail(self, keys: list[str]) -> None:
        self.desk.fail(keys, now=self.app.now(), backoff=self.backoff)

    # sign-in links -----------------------------------------------------------------------

    def request_link(
        self, email: str, client: str, *, target: str = "/"
    ) -> tuple[EditorSettings, str] | None:
        """(editor, link URL) for a known address, else None; the same throttle either way.

        Every request counts against the address and the client until a link is used, so
        nobody can fill an editor's inbox or probe addresses faster than the backoff allows.
        """
        keys = [f"link:{email.strip().lower()}", f"client:{client}"]
        self._check(keys)
        self._fail(keys)
        editor = self.editor(email)
        if editor is None:
            return None
        nonce = secrets.token_urlsafe(16)
        token = self.links.sign({"e": editor.email.lower(), "n": nonce, "to": target})
        base = self.app.settings.publication.base_url.rstrip("/")
        return editor, f"{base}/s/{token}"

    def read_link(self, token: str) -> LinkClaim:
        """The claim of a valid, unused link; TokenError saying why not."""
        if len(token) < MIN_TOKEN:
            raise TokenError("this sign-in link is not valid")
        payload = self.links.verify(token, max_age=LINK_MINUTES * 60)
        if not (
            isinstance(payload, dict)
            and isinstance(payload.get("e"), str)
            and isinstance(payload.get("n"), str)
        ):
            raise TokenError("this link is not valid (it is not a sign-in link)")
        editor = self.editor(payload["e"])
        if editor is None:
            raise TokenError("this sign-in link's editor can no longer sign in")
        nonce = _hash(payload["n"])
        if self.desk.link_used(nonce):
            raise TokenError("this sign-in link has been used already")
        target = payload.get("to")
        return LinkClaim(editor, nonce, target if isinstance(target, str) else "/")

    def use_link(self, token: str, client: str) -> tuple[LinkClaim, str]:
        """Sign in with a link (once): (its claim, session cookie); TokenError if it cannot."""
        keys = [f"client:{client}"]
        self._check(keys)
        try:
            claim = self.read_link(token)
            keep = timedelta(minutes=LINK_MINUTES + 5)
            email = claim.editor.email
            if not self.desk.use_link(claim.nonce_hash, email, now=self.app.now(), keep=keep):
                raise TokenError("this sign-in link has been used already")
        except TokenError:
            self._fail(keys)
            raise
        self.desk.clear([f"link:{claim.editor.email.lower()}", *keys])
        return claim, self.open_session(claim.editor)

    # passwords ---------------------------------------------------------------------------

    def password(self, email: str, password: str, client: str) -> tuple[EditorSettings, str] | None:
        """(editor, session cookie) if the address and that editor's password match."""
        keys = [f"password:{email.strip().lower()}", f"client:{client}"]
        self._check(keys)
        editor = self.editor(email)
        variable = editor.password_hash_env if editor else ""
        encoded = self.environ.get(variable, "") if variable else ""
        ok = check_password(password, encoded or _decoy(), env_name=variable or "decoy")
        if editor is None or not encoded or not ok or len(password) < 1:
            self._fail(keys)
            return None
        self.desk.clear(keys)
        return editor, self.open_session(editor)

    # sessions ----------------------------------------------------------------------------

    def open_session(self, editor: EditorSettings) -> str:
        token = secrets.token_urlsafe(32)
        now = self.app.now()
        expires = now + timedelta(hours=SESSION_HOURS)
        self.desk.open_session(_hash(token), editor.email, now=now, expires=expires)
        return token

    def session(self, cookie: str | None) -> Session | None:
        """The editor of a live session cookie, else None."""
        if not cookie or len(cookie) < MIN_TOKEN:
            return None
        email = self.desk.session(_hash(cookie), now=self.app.now())
        editor = self.editor(email) if email else None
        return Session(editor.name, editor.email) if editor else None

    def end(self, cookie: str | None) -> None:
        if cookie:
            self.desk.end_session(_hash(cookie))


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, field: object) -> bool:
    """Double-submit check: the form's hidden field equals the SameSite cookie."""
    if not cookie or not isinstance(field, str) or len(field) < MIN_TOKEN:
        return False
    return hmac.compare_digest(cookie.encode(), field.encode())
