"""Editor sign-in: mailed sign-in links, optional per-editor passwords, server-side sessions.

Every editor signs in as themselves, so an approval always names one person. A sign-in link
is signed, names one editor, works once and for LINK_MINUTES; a session is a random cookie
whose hash is a row in the store, so signing out or `digest editors revoke` ends it at once.
Attempts are throttled per (address, client network) and per client network, never per
address alone, so nobody can lock an editor out from elsewhere (store.desk.Backoff); an
attempt is counted before its password is checked, in one transaction, so parallel guesses
cannot slip past the limit. Proof links are never throttled: they always work.

Forms carry a synchronizer token bound to the server-side session (or, before sign-in, to
a random pre-session cookie): an HMAC of that cookie under the signing key, so a token
from another session, or a cookie planted by a sibling subdomain, does not match. Cookie
names take the ``__Host-`` prefix when the site is https (Secure, Path=/, no Domain), so a
sibling subdomain cannot set them at all.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from digest.app import App
from digest.config import EditorSettings
from digest.exceptions import Throttled, TokenError
from digest.passwords import check_password, hash_password
from digest.store.desk import Backoff, DeskState
from digest.tokens import Signer, b64
from digest.workflow import find_editor

SESSION_COOKIE = "digest_session"
CSRF_COOKIE = "digest_csrf"  # the pre-session cookie that anonymous forms' tokens bind to
HOST_PREFIX = "__Host-"  # browsers only accept it Secure, Path=/ and without Domain
CSRF_SALT = b"digest.csrf.v2"
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
        self.csrf = CsrfTokens(keys)
        secure = app.settings.publication.base_url.lower().startswith("https://")
        prefix = HOST_PREFIX if secure else ""  # plain names for local use over http
        self.session_cookie = prefix + SESSION_COOKIE
        self.csrf_cookie = prefix + CSRF_COOKIE

    def editor(self, email: str) -> EditorSettings | None:
        """The editor (not revoked) with this address."""
        key = email.strip().lower()
        found = find_editor(self.app.editions.policy(), key)
        return found if found is not None and found.email.lower() == key else None

    def passwords(self) -> bool:
        """Whether any editor has a password set (the sign-in page then offers one)."""
        return any(
            e.password_hash_env and self.environ.get(e.password_hash_env)
            for e in self.app.settings.approval.editors
        )

    def _attempt(self, keys: list[str]) -> None:
        """Count this attempt first; Throttled (nothing counted, nothing checked) if blocked."""
        now = self.app.now()
        until = self.desk.attempt(keys, now=now, backoff=self.backoff)
        if until is not None:
            raise Throttled(max(1, int((until - now).total_seconds() + 0.999)))

    # sign-in links -----------------------------------------------------------------------

    def request_link(
        self, email: str, client: str, *, target: str = "/"
    ) -> tuple[EditorSettings, str] | None:
        """(editor, link URL) for a known address, else None; the same throttle either way.

        Every request counts against (address, client network) and the client network
        until a link is used, so no network can fill an editor's inbox or probe addresses
        faster than the backoff allows, and none can stop her asking from her own.
        """
        net = network(client)
        self._attempt([f"link:{email.strip().lower()}|{net}", f"client:{net}"])
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
        net = network(client)
        keys = [f"client:{net}"]
        self._attempt(keys)
        claim = self.read_link(token)
        keep = timedelta(minutes=LINK_MINUTES + 5)
        email = claim.editor.email
        if not self.desk.use_link(claim.nonce_hash, email, now=self.app.now(), keep=keep):
            raise TokenError("this sign-in link has been used already")
        self.desk.clear([f"link:{email.lower()}|{net}", *keys])
        return claim, self.open_session(claim.editor)

    # passwords ---------------------------------------------------------------------------

    def password(self, email: str, password: str, client: str) -> tuple[EditorSettings, str] | None:
        """(editor, session cookie) if the address and that editor's password match."""
        net = network(client)
        keys = [f"password:{email.strip().lower()}|{net}", f"client:{net}"]
        self._attempt(keys)
        editor = self.editor(email)
        variable = editor.password_hash_env if editor else ""
        encoded = self.environ.get(variable, "") if variable else ""
        ok = check_password(password, encoded or _decoy(), env_name=variable or "decoy")
        if editor is None or not encoded or not ok or len(password) < 1:
            return None  # already counted by _attempt
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


def network(client: str) -> str:
    """The network a client counts as: its IPv4 address, or its IPv6 /64 (one host's
    addresses usually share a /64, so counting single IPv6 addresses would count nothing)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client  # "unknown", or a name from a proxy: counted as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


class CsrfTokens:
    """Synchronizer tokens: HMAC-SHA256 of a binding (a session cookie, or before sign-in a
    pre-session cookie) under the signing keys; the first key signs, all verify (rotation).

    The browser never holds the token in a cookie, so planting a cookie cannot supply one.
    """

    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys]

    def _mac(self, key: bytes, binding: str) -> str:
        return b64(hmac.new(key, CSRF_SALT + b"\0" + binding.encode(), hashlib.sha256).digest())

    def token(self, binding: str) -> str:
        return self._mac(self._keys[0], binding)

    def check(self, binding: str, field: object) -> bool:
        """Whether ``field`` (the form's value) is the token of ``binding`` under any key."""
        if not binding or not isinstance(field, str) or len(field) < MIN_TOKEN:
            return False
        return any(hmac.compare_digest(self._mac(k, binding), field) for k in self._keys)
