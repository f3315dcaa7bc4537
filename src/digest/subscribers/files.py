"""Subscriber files (YAML or CSV): read and validated entry by entry, errors name file:line."""

from __future__ import annotations

import csv
import functools
import re
from array import array
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.addresses import normalise_address
from digest.config.yamlsrc import load_yaml
from digest.exceptions import AddressError, ConfigError
from digest.models import Subscriber

_KEYS = frozenset({"email", "name", "timezone", "topics"})
_CONTROL = re.compile(r"[\x00-\x1f]")


def _address(value: str) -> str | None:
    """The stored form of a file's address (digest.addresses), None if it is not one."""
    try:
        return normalise_address(value)
    except AddressError:
        return None


def load_subscribers(path: Path) -> list[Subscriber]:
    """Read and fully validate ``path``, duplicates (case-insensitive) included."""
    seen: dict[str, int] = {}
    out: list[Subscriber] = []
    for i, (line, sub) in enumerate(entries(path)):
        _unique(seen, sub, line, i, path)
        out.append(sub)
    return out


def count_subscribers(path: Path) -> int:
    """Validate the whole file, duplicates included, and count it, in flat memory: a CSV is
    streamed (twice if two addresses share a hash), keeping 8 bytes per address."""
    if path.suffix.lower() != ".csv":
        return len(load_subscribers(path))
    buckets = [array("q") for _ in range(256)]
    count = 0
    for _line, sub in entries(path):
        key = hash(sub.email.lower())
        buckets[key & 255].append(key)
        count += 1
    clash: set[int] = set()
    for bucket in buckets:
        ordered = sorted(bucket)  # a few thousand at a time
        clash.update(a for a, b in pairwise(ordered) if a == b)
    if clash:
        # Equal hashes: look at the real addresses of just those rows, with line numbers.
        seen: dict[str, int] = {}
        for i, (line, sub) in enumerate(entries(path)):
            if hash(sub.email.lower()) in clash:
                _unique(seen, sub, line, i, path)
    return count


def _unique(seen: dict[str, int], sub: Subscriber, line: int, i: int, path: Path) -> None:
    first = seen.setdefault(sub.email.lower(), line)
    if first != line:
        raise ConfigError(
            f"entry {i + 1}: duplicate subscriber {sub.email} (first at line {first})",
            file=str(path),
            line=line,
        )


def entries(path: Path) -> Iterator[tuple[int, Subscriber]]:
    """(line, subscriber) for each entry of a YAML or CSV file, each one validated.

    YAML: a list, or a mapping with a ``subscribers`` list, of entries with ``email`` and
    optionally ``name``, ``timezone`` and ``topics``. CSV: a header row naming ``email`` and
    optionally the same columns (topics separated by ``;``); it is streamed, so memory stays
    flat for millions of rows. Duplicates are for the caller to find.
    """
    if path.suffix.lower() == ".csv":
        return _csv(path)
    return _yaml(path)


def _yaml(path: Path) -> Iterator[tuple[int, Subscriber]]:
    doc = load_yaml(path, interpolate=False, hint="; check the 'subscribers' key of the config")
    entries = doc.value
    prefix: tuple[str | int, ...] = ()
    if isinstance(entries, dict) and set(entries) == {"subscribers"}:
        entries, prefix = entries["subscribers"], ("subscribers",)
    if entries is None:
        return
    if not isinstance(entries, list):
        raise doc.error(prefix, "expected a list of subscribers (- email: ...)")
    for i, entry in enumerate(entries):
        where = (*prefix, i)
        line = doc.line(where) or 0
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
        raw = entry.get("email")
        email = _address(raw) if isinstance(raw, str) else None
        if email is None:
            raise doc.error(
                (*where, "email"),
                f"entry {i + 1}: invalid email address {raw!r}; fix or remove it",
            )
        name = entry.get("name") or ""
        if not isinstance(name, str) or _CONTROL.search(name):
            raise doc.error((*where, "name"), f"entry {i + 1}: name must be one line of text")
        tz = entry.get("timezone") or ""
        if tz and not _zone_ok(str(tz)):
            raise doc.error((*where, "timezone"), f"entry {i + 1}: unknown time zone {tz!r}")
        topics = entry.get("topics") or []
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise doc.error((*where, "topics"), f"entry {i + 1}: topics must be a list of names")
        yield (
            line,
            Subscriber(email=email, name=name.strip(), timezone=str(tz), topics=tuple(topics)),
        )


def _csv(path: Path) -> Iterator[tuple[int, Subscriber]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc}; check the 'subscribers' key", file=str(path)
        ) from exc
    with handle:
        reader = csv.DictReader(handle)
        try:
            fields = set(reader.fieldnames or ())
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"not a readable CSV file: {exc}", file=str(path), line=1) from exc
        if "email" not in fields or fields - _KEYS:
            bad = ", ".join(sorted(fields - _KEYS)) or "no email column"
            raise ConfigError(
                f"CSV header must name email and optionally name, timezone, topics ({bad})",
                file=str(path),
                line=1,
            )
        i = 0
        while True:
            try:
                row = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"entry {i + 1}: not valid CSV: {exc}", file=str(path), line=reader.line_num
                ) from exc
            if row is None:
                return
            i += 1
            yield _csv_row(path, row, reader.line_num, i)


def _csv_row(path: Path, row: dict[str, str | None], line: int, i: int) -> tuple[int, Subscriber]:
    raw = (row.get("email") or "").strip()
    email = _address(raw)
    if email is None:
        raise ConfigError(f"entry {i}: invalid email address {raw!r}", file=str(path), line=line)
    name = (row.get("name") or "").strip()
    if _CONTROL.search(name):
        raise ConfigError(f"entry {i}: name must be one line of text", file=str(path), line=line)
    tz = (row.get("timezone") or "").strip()
    if tz and not _zone_ok(tz):
        raise ConfigError(f"entry {i}: unknown time zone {tz!r}", file=str(path), line=line)
    topics = tuple(t.strip() for t in (row.get("topics") or "").split(";") if t.strip())
    return line, Subscriber(email=email, name=name, timezone=tz, topics=topics)


@functools.lru_cache(maxsize=1024)
def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
