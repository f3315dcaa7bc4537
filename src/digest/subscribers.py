"""Load and validate the subscriber list; errors name file, line and entry."""

from __future__ import annotations

import csv
import re
from array import array
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config.yamlsrc import load_yaml
from digest.exceptions import ConfigError
from digest.models import Subscriber

_KEYS = frozenset({"email", "name", "timezone", "topics"})
# Deliberately strict: an address we cannot hand to an SMTP server as-is is a typo.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def valid_address(address: str) -> bool:
    """True for a plain addr-spec we are willing to send to."""
    local = address.rpartition("@")[0]
    return bool(_ADDRESS.match(address)) and len(address) <= 254 and len(local) <= 64


def load_subscribers(path: Path) -> list[Subscriber]:
    """Read and fully validate ``path``: YAML (a list, or a mapping with a ``subscribers``
    list) or CSV (see iter_subscribers)."""
    if path.suffix.lower() == ".csv":
        return list(_csv(path, seen={}))
    doc = load_yaml(path, interpolate=False, hint="; check the 'subscribers' key of the config")
    entries = doc.value
    prefix: tuple[str | int, ...] = ()
    if isinstance(entries, dict) and set(entries) == {"subscribers"}:
        entries, prefix = entries["subscribers"], ("subscribers",)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise doc.error(prefix, "expected a list of subscribers (- email: ...)")
    seen: dict[str, int] = {}
    out: list[Subscriber] = []
    for i, entry in enumerate(entries):
        where = (*prefix, i)
        line = doc.line(where)
        if isinstance(entry, str):
            entry = {"email": entry}
        if not isinstance(entry, dict):
            raise doc.error(where, f"entry {i + 1}: expected a mapping with an email key")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise doc.error(
                (*where, unknown[0]),
                f"entry {i + 1}: unknown key {unknown[0]!r} (valid: {', '.join(sorted(_KEYS))})",
            )
        email = entry.get("email")
        if not isinstance(email, str) or not valid_address(email.strip()):
            raise doc.error(
                (*where, "email"),
                f"entry {i + 1}: invalid email address {email!r}; fix or remove it",
            )
        email = email.strip()
        key = email.lower()
        if key in seen:
            raise doc.error(
                (*where, "email"),
                f"entry {i + 1}: duplicate subscriber {email} (first at line {seen[key]})",
            )
        seen[key] = line or 0
        name = entry.get("name") or ""
        if not isinstance(name, str) or any(ord(c) < 32 for c in name):
            raise doc.error((*where, "name"), f"entry {i + 1}: name must be one line of text")
        tz = entry.get("timezone") or ""
        if tz:
            try:
                ZoneInfo(str(tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise doc.error(
                    (*where, "timezone"), f"entry {i + 1}: unknown time zone {tz!r}"
                ) from None
        topics = entry.get("topics") or []
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise doc.error((*where, "topics"), f"entry {i + 1}: topics must be a list of names")
        out.append(
            Subscriber(email=email, name=name.strip(), timezone=str(tz), topics=tuple(topics))
        )
    return out


def iter_subscribers(path: Path) -> Iterator[Subscriber]:
    """Subscribers one at a time: a CSV file is streamed (memory stays flat for millions).

    CSV files have a header row with ``email`` and optionally ``name``, ``timezone`` and
    ``topics`` (topics separated by ``;``). Duplicates in a CSV are checked by `digest
    check` (which loads the whole file); a send keeps the first row per address.
    """
    if path.suffix.lower() != ".csv":
        yield from load_subscribers(path)
        return
    yield from _csv(path, seen=None)


def count_subscribers(path: Path) -> int:
    """Validate the whole list, duplicates included, and count it, in flat memory: a CSV is
    streamed (twice if two addresses share a hash), keeping 8 bytes per address."""
    if path.suffix.lower() != ".csv":
        return len(load_subscribers(path))
    buckets = [array("q") for _ in range(256)]
    count = 0
    for sub in _csv(path, seen=None):
        key = hash(sub.email.lower())
        buckets[key & 255].append(key)
        count += 1
    clash: set[int] = set()
    for bucket in buckets:
        ordered = sorted(bucket)  # a few thousand at a time
        clash.update(a for a, b in pairwise(ordered) if a == b)
    if clash:
        # Equal hashes: look at the real addresses of just those rows, with line numbers.
        for _ in _csv(path, seen={}, only=clash):
            pass
    return count


def _csv(
    path: Path, *, seen: dict[str, int] | None, only: set[int] | None = None
) -> Iterator[Subscriber]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc}; check the 'subscribers' key", file=str(path)
        ) from exc
    with handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if "email" not in fields or fields - _KEYS:
            bad = ", ".join(sorted(fields - _KEYS)) or "no email column"
            raise ConfigError(
                f"CSV header must name email and optionally name, timezone, topics ({bad})",
                file=str(path), line=1,
            )  # fmt: skip
        for i, row in enumerate(reader):
            line = reader.line_num
            email = (row.get("email") or "").strip()
            if not valid_address(email):
                raise ConfigError(
                    f"entry {i + 1}: invalid email address {email!r}", file=str(path), line=line
                )
            if seen is not None and (only is None or hash(email.lower()) in only):
                first = seen.setdefault(email.lower(), line)
                if first != line:
                    raise ConfigError(
                        f"entry {i + 1}: duplicate subscriber {email} (first at line {first})",
                        file=str(path), line=line,
                    )  # fmt: skip
            name = (row.get("name") or "").strip()
            if any(ord(c) < 32 for c in name):
                raise ConfigError(
                    f"entry {i + 1}: name must be one line of text", file=str(path), line=line
                )
            tz = (row.get("timezone") or "").strip()
            if tz:
                _zone(tz, path, line, i)
            topics = tuple(t.strip() for t in (row.get("topics") or "").split(";") if t.strip())
            yield Subscriber(email=email, name=name, timezone=tz, topics=topics)


def _zone(name: str, path: Path, line: int, i: int) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"entry {i + 1}: unknown time zone {name!r}", file=str(path), line=line
        ) from None
