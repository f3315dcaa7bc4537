"""Editor password hashes (scrypt): made by `digest hash-password`, checked at sign-in.

A pure leaf below everything that uses it (web sign-in, `digest check`, the CLI), so none
of them has to import another to reach it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from digest.exceptions import ConfigError
from digest.tokens import b64, unb64

# scrypt with n=2**14, r=8, p=1 costs ~16 MB and ~50 ms: slow for guessing, fine for sign-in.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An scrypt hash "scrypt$n$r$p$salt$hash" for an editor's password_hash_env."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), b64(salt), b64(digest)])


def check_password(password: str, encoded: str, *, env_name: str) -> bool:
    """Whether ``password`` matches ``encoded``; ConfigError if ``encoded`` is not our hash."""
    try:
        scheme, n, r, p, salt, want = encoded.strip().split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        got = hashlib.scrypt(
            password.encode(), salt=unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        raise ConfigError(
            f"{env_name} does not hold a digest password hash; make one with `digest hash-password`"
        ) from None
    return hmac.compare_digest(got, unb64(want))
