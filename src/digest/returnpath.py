"""Per-message return paths (VERP): ``bounces+TOKEN@return-path-domain``.

A delivery status notification goes to the envelope sender, so a return path that names
the message finds its delivery even when the bounce quotes nothing of the original (many
do not, or mangle it). TOKEN is the Message-ID's local part (the ledger keeps it with the
delivery, indexed) and a short HMAC, so nobody can make digest suppress an address by
mailing a forged bounce to a guessed return path. Lower-case hex only: some mail systems
lower-case local parts. The local part stays under the 64 octets RFC 5321 allows.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "bounces"
SALT = b"digest.return-path.v1"
_MAC_CHARS = 12  # 48 bits: enough against guessing, short enough for any local part
_TOKEN = re.compile(r"(?P<id>[0-9a-z][0-9a-z.\-]{0,40})\.(?P<mac>[0-9a-f]{12})")
_ADDRESS = re.compile(PREFIX + r"\+(?P<token>[0-9a-z.\-]+)@(?P<domain>[^\s@<>]+)", re.IGNORECASE)


class ReturnPaths:
    """Makes and reads return paths for one domain; the first key signs, all verify."""

    def __init__(self, domain: str, keys: list[str]) -> None:
        if not keys:
            raise ValueError("a return path needs a signing key")
        self.domain = domain.strip().lower()
        self._keys = [hmac.new(k.encode(), SALT, hashlib.sha256).digest() for k in keys]

    def _mac(self, key: bytes, local: str) -> str:
        return hmac.new(key, local.encode(), hashlib.sha256).hexdigest()[:_MAC_CHARS]

    def address(self, message_id: str) -> str:
        """The return path of the message whose Message-ID is ``message_id``."""
        local = message_id.strip("<>").partition("@")[0]
        if not _TOKEN.fullmatch(f"{local}.{'0' * _MAC_CHARS}"):
            raise ValueError(f"Message-ID {message_id!r} cannot make a return path")
        return f"{PREFIX}+{local}.{self._mac(self._keys[0], local)}@{self.domain}"

    def message_id(self, address: str, *, domain: str) -> str | None:
        """The Message-ID a return path stands for (``domain``: the Message-IDs' own),
        or None when the address is not one of ours or its MAC is wrong."""
        found = _ADDRESS.search(address)
        if found is None or found["domain"].lower() != self.domain:
            return None
        token = _TOKEN.fullmatch(found["token"].lower())
        if token is None:
            return None
        local = token["id"]
        if not any(hmac.compare_digest(token["mac"], self._mac(k, local)) for k in self._keys):
            return None
        return f"<{local}@{domain}>"
