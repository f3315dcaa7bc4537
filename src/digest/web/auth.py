"""Editor sign-in for the web pages: password hashes, signed session cookies, CSRF tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from digest.config import EditorSettings, Settings
from digest.exceptions import ConfigError, TokenError
from digest.tokens import SESSION_SALT, Signer

SESSION_COOKIE = "digest_session"
CSRF_COOKIE = "digest_csrf"
SESSION_MAX_AGE = 12 * 3600
# scrypt with n=2**14, r=8, p=1 costs ~16 MB and ~50 ms: slow for guessing, fine for sign-in.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An scrypt hash "scrypt$n$r$p$salt$hash" for approval.password_hash_env."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def check_password(password: str, encoded: str, *, env_name: str) -> bool:
    """Whether ``password`` matches ``encoded``; ConfigError if ``encoded`` is not our hash."""
    try:
        scheme, n, r, p, salt, want = encoded.strip().split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        raise ConfigError(
            f"{env_name} does not hold a digest password hash; make one with `digest hash-password`"
        ) from None
    return hmac.compare_digest(got, _unb64(want))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_in(
    settings: Settings, email: str, password: str, environ: Mapping[str, str]
) -> EditorSettings | None:
    """The editor whose address and password (or sign-in token) match, else None.

    ConfigError when sign-in is not set up, so the page can say what to configure.
    """
    approval = settings.approval
    hashed = environ.get(approval.password_hash_env, "")
    token = environ.get(approval.signin_token_env, "")
    if not approval.editors or not (hashed or token):
        raise ConfigError(
            "editor sign-in is not set up: list approval.editors in the config and set "
            f"{approval.password_hash_env} (from `digest hash-password`) or "
            f"{approval.signin_token_env} in the server's environment"
        )
    editor = next((e for e in approval.editors if e.email.lower() == email.strip().lower()), None)
    ok_token = bool(token) and hmac.compare_digest(password.encode(), token.encode())
    ok_hash = bool(hashed) and check_password(password, hashed, env_name=approval.password_hash_env)
    return editor if editor is not None and (ok_token or ok_hash) else None


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in editor."""

    name: str
    email: str


class Sessions:
    """Session cookies: the editor's address, signed with the secret keys, for 12 hours."""

    def __init__(
        self, settings: Settings, keys: list[str], *, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        self._signer = Signer(keys, salt=SESSION_SALT, clock=clock)

    def cookie(self, editor: EditorSettings) -> str:
        return self._signer.sign({"e": editor.email.lower()})

    def read(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``, or None if absent, expired, forged or no longer an editor."""
        if not cookie:
            return None
        try:
            payload = self._signer.verify(cookie, max_age=SESSION_MAX_AGE)
        except TokenError:
            return None
        email = payload.get("e") if isinstance(payload, dict) else None
        for editor in self._settings.approval.editors:
            if editor.email.lower() == email:
                return Session(editor.name, editor.email)
        return None


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, field: object) -> bool:
    """Double-submit check: the form's hidden field equals the SameSite=Strict cookie."""
    if not cookie or not isinstance(field, str) or not field:
        return False
    return hmac.compare_digest(cookie.encode(), field.encode())
