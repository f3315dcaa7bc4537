"""Validation of the email, images and publication address settings (part of config loading).

Every address and URL a send depends on is checked when the config is read, so `digest
check` and `digest build` fail with file:line instead of the send failing at 07:00.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.addresses import valid_address
from digest.config.yamlsrc import Located
from digest.exceptions import ConfigError
from digest.render.frame import LAYOUTS
from digest.render.links import check_utm

IMAGE_MODES = ("own", "hotlink")


def _sendable(addr: str) -> bool:
    # Used verbatim in From and the SMTP envelope: valid, and already ASCII (an IDN domain
    # in its punycode form).
    return addr.isascii() and valid_address(addr)


_PRINTABLE = re.compile(r"[!-~]+")


def _url(doc: Located, path: tuple[str, str], value: str, *, https: bool = False) -> None:
    parts = urlsplit(value)
    schemes = ("https",) if https else ("http", "https")
    if parts.scheme.lower() not in schemes or not parts.netloc or not _PRINTABLE.fullmatch(value):
        want = "an https URL" if https else "an http(s) URL"
        raise doc.error(
            path, f"{'.'.join(path)} must be {want} with a host, without spaces, not {value!r}"
        )


def _address(doc: Located, path: tuple[str, str], value: str) -> None:
    addr = parseaddr(value)[1]
    if not _sendable(addr) or "\r" in value or "\n" in value:
        raise doc.error(
            path,
            f"{'.'.join(path)} {value!r} is not an e-mail address; "
            'write "The Name <address@your-domain>" or address@your-domain',
        )


def check_publication(doc: Located, pub: dict[str, Any]) -> None:
    """The sender and reply-to addresses and the base URL."""
    _address(doc, ("publication", "sender"), pub["sender"])
    if pub["reply_to"]:
        _address(doc, ("publication", "reply_to"), pub["reply_to"])
    _url(doc, ("publication", "base_url"), pub["base_url"])


def check_email(doc: Located, email: dict[str, Any], base: Path) -> None:
    """UTM, DKIM, budget, layout, logo files, the mailto and every link in the footer."""
    try:
        email["utm"] = check_utm(email["utm"])
    except ConfigError as exc:
        raise doc.error(("email", "utm"), str(exc)) from exc
    if email["dkim_key_path"]:
        if not email["dkim_selector"]:
            raise doc.error(("email", "dkim_key_path"), "DKIM needs email.dkim_selector too")
        email["dkim_key_path"] = base / email["dkim_key_path"]
    else:
        email["dkim_key_path"] = None
    if email["html_budget"] < 1:
        raise doc.error(("email", "html_budget"), "email.html_budget must be a positive number")
    if email["layout"] not in LAYOUTS:
        raise doc.error(("email", "layout"), f"email.layout must be one of {', '.join(LAYOUTS)}")
    mailto = email["unsubscribe_mailto"]
    if mailto and not (mailto.startswith("mailto:") and _sendable(mailto[7:].split("?", 1)[0])):
        raise doc.error(
            ("email", "unsubscribe_mailto"),
            f"email.unsubscribe_mailto must be 'mailto:' and an address, not {mailto!r}; "
            'write "mailto:unsubscribe@your-domain"',
        )
    for key in ("archive_url", "preferences_url", "signup_url"):
        if email[key]:
            _url(doc, ("email", key), email[key])
    for key in ("logo", "logo_dark"):
        if email[key]:
            path = base / email[key]
            if not path.is_file():
                raise doc.error(("email", key), f"email.{key}: no image file at {path}")
            email[key] = path
        else:
            email[key] = None
    if email["logo_dark"] is not None and email["logo"] is None:
        raise doc.error(("email", "logo_dark"), "email.logo_dark needs email.logo too")


def check_images(doc: Located, images: dict[str, Any], base: Path) -> None:
    if images["mode"] not in IMAGE_MODES:
        raise doc.error(("images", "mode"), f"images.mode must be one of {', '.join(IMAGE_MODES)}")
    if images["base_url"]:
        _url(doc, ("images", "base_url"), images["base_url"])
    for key in ("max_bytes", "max_pixels"):
        if images[key] < 1:
            raise doc.error(("images", key), f"images.{key} must be a positive number")
    images["dir"] = base / images["dir"] if images["dir"] else None
