"""Optional DKIM signing (dkimpy): one signature per personalised message, at send time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dkim

from digest.exceptions import ConfigError

# What the signature covers: the bulk-sender rules want both List-Unsubscribe headers signed,
# so a relay cannot swap the one-click URL. Names of absent headers (Reply-To without a
# reply_to) are still listed: that signs their absence, so none can be added in transit.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Reply-To",
    "Feedback-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
)
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_PROBE = b"From: a@example.org\r\nSubject: probe\r\n\r\nprobe\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSigner:
    """Signs messages as ``selector._domainkey.domain`` with an RSA key (PEM, PKCS#1 or #8)."""

    domain: str
    selector: str
    private_key: bytes = field(repr=False)
    headers: tuple[str, ...] = SIGNED_HEADERS

    @property
    def dns_name(self) -> str:
        """Where the public key must be published as a TXT record."""
        return f"{self.selector}._domainkey.{self.domain}"

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature`` header (folded, CRLF-terminated) for ``message``."""
        try:
            header: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.encode("ascii") for h in self.headers],
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise ConfigError(f"DKIM signing as {self.dns_name} failed: {exc}") from exc
        return header

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature header prepended."""
        return self.signature(message) + message


def load_dkim(*, key_path: Path, selector: str, domain: str) -> DkimSigner:
    """Read and try the key once, so a bad key fails `digest check`, not the 07:00 send."""
    if not _SELECTOR.fullmatch(selector):
        raise ConfigError(f"email.dkim_selector {selector!r} is not a valid DNS label; fix it")
    if not _DOMAIN.fullmatch(domain):
        raise ConfigError(f"email.dkim_domain {domain!r} is not a domain name; fix it")
    try:
        key = key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the DKIM key: {exc.strerror}; set email.dkim_key_path to a PEM file",
            file=str(key_path),
        ) from exc
    signer = DkimSigner(domain=domain.lower(), selector=selector, private_key=key)
    try:
        dkim.sign(_PROBE, selector.encode("ascii"), domain.encode("ascii"), key)
    except (dkim.DKIMException, ValueError) as exc:  # binascii.Error is a ValueError
        raise ConfigError(
            f"not a usable RSA private key for DKIM ({exc}); use a PEM key "
            "(openssl genrsa -out dkim.pem 2048)",
            file=str(key_path),
        ) from exc
    return signer
