"""The sync rules: the subscriber file (or an imported file) into the store, streamed.

Neither a sync nor an import ever makes an address active again once it unsubscribed,
bounced, complained or was erased: only the reader can, through a new double opt-in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from digest.exceptions import ConfigError
from digest.models import Subscriber, SubscriberState
from digest.store import Store
from digest.store.subscriber_batch import Batch, batch
from digest.store.subscribers import SubscriberStore, address_key
from digest.store.tables import stamp
from digest.subscribers.files import entries

S = SubscriberState
MODES = ("mirror", "add")
CHUNK = 1000
FILE = "file"
# Sign-ups not confirmed within this long are forgotten (their links have expired).
CONFIRM_DAYS = 7
T = TypeVar("T")


@dataclass
class SyncReport:
    """What one sync or import did (or, for a dry run, would do)."""

    file: str
    mode: str  # mirror, add, or import
    dry_run: bool = False
    file_unchanged: bool = False
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    reactivated: int = 0
    blocked: int = 0  # unsubscribed, bounced, complained or erased: left alone
    removed: int = 0  # mirror: no longer in the file
    opted_out: int = 0  # unsubscribes and bounces from the suppression list, applied

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would" if self.dry_run else "did"
        if self.file_unchanged:
            head = f"{self.file}: unchanged since the last sync"
        else:
            head = (
                f"{self.file}: {self.read} entries read; {self.added} added, {self.updated} "
                f"updated, {self.unchanged} unchanged, {self.reactivated} reactivated, "
                f"{self.blocked} left alone (unsubscribed, bounced, complained or erased)"
            )
        tail = f"; {self.removed} removed (not in the file)" if self.mode == "mirror" else ""
        opted = f"; {self.opted_out} opted out" if self.opted_out else ""
        dry = f" (dry run: nothing {verb} change)" if self.dry_run else ""
        return head + tail + opted + dry


def fingerprint(path: Path) -> str:
    h = hashlib.sha256(str(path.resolve()).encode() + b"\x00")
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def sync_file(
    store: Store,
    path: Path,
    *,
    mode: str,
    now: datetime,
    dry_run: bool = False,
    force: bool = False,
    missing_ok: bool = False,
) -> SyncReport:
    """Bring the store in line with the subscriber file at ``path``.

    ``mirror``: the file is the list (readers not in it stop getting mail); ``add``: file
    entries are added and updated, everyone else is kept. An entry unchanged since the last
    sync never overwrites what the reader chose on their preference page. An unchanged file
    is not read again unless ``force``. ``missing_ok``: no file means nothing to sync.
    """
    if mode not in MODES:
        raise ConfigError(f"subscribers_sync must be one of {', '.join(MODES)}, not {mode!r}")
    report = SyncReport(str(path), mode, dry_run=dry_run)
    if not path.exists():
        if missing_ok:
            report.file_unchanged = True
            return report
        raise ConfigError("file not found; check the 'subscribers' key", file=str(path))
    try:
        print_ = fingerprint(path)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    with batch(store, now=now, dry_run=dry_run) as b:
        last, gen = b.last_sync(FILE)
        if last == print_ and not force:
            report.file_unchanged = True
        else:
            gen += 1
            _apply(b, path, source=FILE, gen=gen, report=report, now=now)
            b.save_sync(FILE, fingerprint=print_, gen=gen)
        report.opted_out = b.reconcile()
        if mode == "mirror":
            report.removed = b.mirror(gen)
    if not dry_run:
        SubscriberStore(store).purge_pending(before=now - timedelta(days=CONFIRM_DAYS))
    return report


def import_file(store: Store, path: Path, *, now: datetime, dry_run: bool = False) -> SyncReport:
    """Add and update the subscribers of a YAML or CSV file (streamed, in one transaction:
    a bad row imports nothing); ``dry_run`` counts without keeping anything."""
    report = SyncReport(str(path), "import", dry_run=dry_run)
    if not path.is_file():
        raise ConfigError("file not found; give a YAML or CSV subscriber file", file=str(path))
    with batch(store, now=now, dry_run=dry_run) as b:
        _apply(b, path, source="import", gen=None, report=report, now=now)
    return report


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def entry_hash(sub: Subscriber) -> str:
    """What a file entry says, hashed: an unchanged entry is not applied again."""
    raw = json.dumps([sub.email, sub.name, sub.timezone, list(sub.topics)], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _apply(
    b: Batch, path: Path, *, source: str, gen: int | None, report: SyncReport, now: datetime
) -> None:
    note = (
        f"listed in the subscriber file {path.name}"
        if gen is not None
        else f"imported from {path.name} by the newsroom"
    )
    for chunk in _chunks(entries(path), CHUNK):
        keys = [address_key(sub.email) for _, sub in chunk]
        duplicates = b.duplicates([(k, line) for k, (line, _) in zip(keys, chunk, strict=True)])
        if duplicates:
            key, line, first = duplicates[0]
            raise ConfigError(
                f"duplicate subscriber {key} (first at line {first})", file=str(path), line=line
            )
        existing, suppressed, erased = b.existing(keys), b.suppressed(keys), b.erased(keys)
        at = stamp(now)  # once, not three times per row
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for key, (_, sub) in zip(keys, chunk, strict=True):
            report.read += 1
            row = existing.get(key)
            if key in erased or key in suppressed or (row is not None and S(row.state).opted_out):
                report.blocked += 1
                continue
            entry = entry_hash(sub) if gen is not None else ""
            if row is None:
                report.added += 1
                inserts.append(_new_row(sub, key, source=source, gen=gen or 0, entry=entry, now=at))
                continue
            change = _update(row, sub, gen=gen, entry=entry, now=at, report=report)
            if change is not None:
                updates.append(change)
        b.insert(inserts, consent=("subscribe", source, note))
        b.update(updates)


def _new_row(
    sub: Subscriber, key: str, *, source: str, gen: int, entry: str, now: str
) -> tuple[Any, ...]:
    """The store's NEW columns, in order."""
    topics = json.dumps(list(sub.topics), ensure_ascii=False)
    return (
        key,
        sub.email,
        sub.name,
        sub.timezone,
        topics,
        S.ACTIVE.value,
        "",
        source,
        now,
        gen,
        entry,
        now,
        now,
    )


def _update(
    row: Any,
    sub: Subscriber,
    *,
    gen: int | None,
    entry: str,
    now: str,
    report: SyncReport,
) -> tuple[Any, ...] | None:
    """The store's CHANGED columns of an existing row, then its id; None when an import
    changes nothing."""
    state = S(row.state)
    topics = json.dumps(list(sub.topics), ensure_ascii=False)
    if gen is not None:
        changed = entry != row.file_entry
    else:
        changed = (sub.email, sub.name, sub.timezone, topics) != (
            row.email,
            row.name,
            row.timezone,
            row.topics,
        )
    reactivate = state in (S.PENDING, S.REMOVED)
    if reactivate:
        report.reactivated += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1
        if gen is None:
            return None
    source = sub if changed else row
    return (
        source.email,
        source.name,
        source.timezone,
        topics if changed else row.topics,
        S.ACTIVE.value if reactivate else state.value,
        row.since if row.since and not reactivate else now,
        entry if gen is not None else row.file_entry,
        gen if gen is not None else row.file_gen,
        now,
        row.id,
    )
