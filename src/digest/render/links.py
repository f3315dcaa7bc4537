"""Story links: optional UTM campaign parameters, added once per rendered edition."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.exceptions import ConfigError

_UTM_KEY = re.compile(r"utm_[a-z0-9_]+")


def check_utm(params: Mapping[str, object]) -> dict[str, str]:
    """Validate an ``email.utm`` mapping: ``utm_*`` keys and one-line text values."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not _UTM_KEY.fullmatch(key):
            raise ConfigError(
                f"email.utm key {key!r} is not a UTM parameter; use utm_source, utm_medium, "
                "utm_campaign, utm_term or utm_content"
            )
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ConfigError(f"email.utm.{key} must be text, not {value!r}")
        text = str(value)
        if any(c in text for c in "\r\n"):
            raise ConfigError(f"email.utm.{key} must be one line of text")
        out[key] = text
    return out


def expand_utm(params: Mapping[str, str], edition_date: date) -> dict[str, str]:
    """Fill ``{date}`` in the values with the edition's ISO date (e.g. per-day campaigns)."""
    return {k: v.replace("{date}", edition_date.isoformat()) for k, v in params.items()}


def add_utm(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` appended to its query; keys the publisher already set win.

    Only http(s) URLs are touched: anything else is left for the link checks to refuse.
    """
    if not params:
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"}:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    added = [(k, v) for k, v in params.items() if k not in present]
    if not added:
        return url
    tail = urlencode(added)
    new_query = f"{parts.query}&{tail}" if parts.query else tail
    return urlunsplit(parts._replace(query=new_query))


def strip_utm(url: str) -> str:
    """``url`` without ``utm_*`` parameters, to compare links with and without tracking."""
    parts = urlsplit(url)
    if "utm_" not in parts.query:
        return url
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(kept)))
