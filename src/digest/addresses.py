"""E-mail addresses: the one check every way an address gets in goes through (pure leaf).

Syntax is checked by the maintained ``email-validator`` library (RFC 5321/5322 plus what
real mail systems accept): no "a..b@x", ".a@x", IP addresses or reserved names after the
"@". The stored form is ASCII: an internationalised domain becomes its IDNA (punycode) form
(NFC first, lower-cased), so every SMTP server takes it without SMTPUTF8 and
"anna@Bücher.example" and "anna@xn--bcher-kva.example" are one reader; an ASCII address is
kept as written. A non-ASCII part before the "@" is refused: it
would need SMTPUTF8 from every server on the way, which digest cannot promise.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from digest.exceptions import AddressError


def normalise_address(address: str, *, check_deliverability: bool = False) -> str:
    """``address`` (stripped) in the form digest stores and sends to, or AddressError.

    ``check_deliverability`` also asks DNS whether the domain takes mail (off by default:
    a sign-up must not wait on, or leak to, a resolver unless configured to).
    """
    try:
        found = validate_email(
            address.strip(),
            allow_smtputf8=False,
            allow_domain_literal=False,
            allow_display_name=False,
            check_deliverability=check_deliverability,
        )
    except EmailNotValidError as exc:
        raise AddressError(
            f"{address.strip()!r} is not an e-mail address digest can send to: {exc}"
        ) from None
    if address.strip().isascii():
        return address.strip()  # as written: mailbox and domain case are the reader's own
    return str(found.ascii_email)


def valid_address(address: str) -> bool:
    """True for an address digest accepts (any spelling normalise_address takes)."""
    try:
        normalise_address(address)
    except AddressError:
        return False
    return True
