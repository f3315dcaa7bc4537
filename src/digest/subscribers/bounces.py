"""`digest bounces import`: returned mail from files, Maildir folders and mbox files, read
and classified (digest.deliverability) and applied to the list (digest.store.bounces).

Inputs are read in the order given; a folder that is not a Maildir is read as a folder of
.eml files in name order. A file that cannot be read, or is not a mail, is reported with
its name and skipped; the others go on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from digest.deliverability import Report, parse
from digest.deliverability.model import Delivery
from digest.exceptions import BounceError
from digest.store.bounces import IGNORED, BounceStore, Event, Policy, apply_all
from digest.store.repository import Store
from digest.store.returns import Sent

# Finds the delivery a returned mail came from (its return path, or the Message-ID it quotes).
Finder = Callable[[Delivery], Sent | None]

_QUOTED_FROM = re.compile(rb"^>+From ")
BATCH = 500  # messages per transaction: few commits, and a crash loses at most one batch


@dataclass(frozen=True, slots=True)
class Item:
    """One input message: where it came from, and its bytes or why it has none."""

    name: str
    data: bytes | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one input message."""

    name: str
    report: Report | None
    actions: tuple[str, ...] = ()
    error: str = ""
    sent: Sent | None = None  # the delivery it came from, when found

    @property
    def action(self) -> str:
        """The message's action: suppressed if any recipient was, else counted or ignored."""
        for wanted in ("suppressed", "counted"):
            if wanted in self.actions:
                return wanted
        return IGNORED

    def to_dict(self) -> dict[str, Any]:
        assert self.report is not None
        report = self.report.to_dict()
        return {
            "file": self.name,
            "kind": report["kind"],
            "recipients": report["recipients"],
            "delivery": self._delivery(report["delivery"]),
            "action": self.action,
        }

    def _delivery(self, quoted: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.sent is None:
            return quoted
        found = {"edition": self.sent.edition_id, "email": self.sent.email}
        return {**(quoted or {}), **found, "message_id": self.sent.message_id}


def read_inputs(paths: Iterable[Path]) -> Iterator[Item]:
    """Every message of ``paths``, in order: files, Maildir folders (cur, new), mbox files
    (a file whose first line starts with "From "), and folders of .eml files."""
    for path in paths:
        if path.is_dir():
            yield from _folder(path)
        else:
            yield from _file(path)


def _folder(path: Path) -> Iterator[Item]:
    subfolders = [path / "cur", path / "new"]
    if any(p.is_dir() for p in subfolders):
        for sub in subfolders:
            if sub.is_dir():
                for child in sorted(sub.iterdir()):
                    if child.is_file() and not child.name.startswith("."):
                        yield _read(child)
        return
    for child in sorted(path.iterdir()):
        if child.is_file() and not child.name.startswith("."):
            yield from _file(child)


def _file(path: Path) -> Iterator[Item]:
    """One .eml file is one mail; any other file that starts with "From " is an mbox."""
    if path.suffix.lower() == ".eml":
        yield _read(path)
        return
    try:
        with path.open("rb") as handle:
            if handle.read(5) != b"From ":
                yield _read(path)
                return
            handle.seek(0)
            yield from _mbox(path, handle)
    except OSError as exc:
        yield Item(str(path), None, f"cannot read it ({exc.strerror or exc})")


def _mbox(path: Path, handle: BinaryIO) -> Iterator[Item]:
    """The mails of an mbox file, streamed: each starts at a "From " line after a blank
    line (mboxrd's ">From " quoting is undone)."""
    lines: list[bytes] = []
    n = 0
    previous_blank = True
    for line in handle:
        if line.startswith(b"From ") and previous_blank:
            if lines:
                n += 1
                yield Item(f"{path}#{n}", b"".join(lines))
            lines = []
        else:
            if _QUOTED_FROM.match(line):
                line = line[1:]
            lines.append(line)
        previous_blank = not line.strip()
    if lines:
        n += 1
        yield Item(f"{path}#{n}", b"".join(lines))


def _read(path: Path) -> Item:
    try:
        return Item(str(path), path.read_bytes())
    except OSError as exc:
        return Item(str(path), None, f"cannot read it ({exc.strerror or exc})")


def import_bounces(
    store: Store,
    items: Iterable[Item],
    *,
    now: datetime,
    soft_limit: int = 3,
    soft_window_days: int = 30,
    dry_run: bool = False,
    find: Finder | None = None,
) -> Iterator[Outcome]:
    """Classify each message and apply the bounce policy; one Outcome per input message.

    ``dry_run`` applies nothing: each batch is rolled back, so the actions shown are the
    ones a real run would take. ``find`` looks up the delivery a mail came from; when it
    is found, the address digest sent to is the one the policy applies to (a report may
    name a forward's final address, or mangle or withhold it).
    """
    bounces = BounceStore(store, Policy(soft_limit, timedelta(days=soft_window_days)))
    pending: list[tuple[Item, Report | None, str]] = []
    for item in items:
        pending.append(_classify(item))
        if len(pending) >= BATCH:
            yield from _apply(bounces, pending, now=now, dry_run=dry_run, find=find)
            pending = []
    if pending:
        yield from _apply(bounces, pending, now=now, dry_run=dry_run, find=find)


def _classify(item: Item) -> tuple[Item, Report | None, str]:
    if item.data is None:
        return item, None, item.error
    try:
        return item, parse(item.data), ""
    except BounceError as exc:
        return item, None, str(exc)


def _apply(
    bounces: BounceStore,
    pending: list[tuple[Item, Report | None, str]],
    *,
    now: datetime,
    dry_run: bool,
    find: Finder | None = None,
) -> Iterator[Outcome]:
    events: list[Event] = []
    owners: list[int] = []
    found: dict[int, Sent] = {}
    for i, (item, report, _) in enumerate(pending):
        if report is None:
            continue
        sent = find(report.delivery) if find is not None and report.delivery else None
        if sent is not None:
            found[i] = sent
        message_id = sent.message_id if sent else report.delivery.message_id or ""
        mail = hashlib.sha256(item.data or b"").hexdigest()
        for r in report.recipients:
            # digest mails one reader per message: the delivery names who it was.
            address = sent.email if sent is not None else r.address
            if address:
                events.append(
                    Event(address, r.kind, r.status, r.reason, item.name, message_id, mail)
                )
                owners.append(i)
    actions = apply_all(bounces, events, now=now, dry_run=dry_run) if events else []
    per_message: dict[int, list[str]] = {}
    for owner, action in zip(owners, actions, strict=True):
        per_message.setdefault(owner, []).append(action)
    for i, (item, report, error) in enumerate(pending):
        yield Outcome(item.name, report, tuple(per_message.get(i, ())), error, found.get(i))


def poll_maildir(
    store: Store,
    folder: Path,
    *,
    now: datetime,
    soft_limit: int = 3,
    soft_window_days: int = 30,
    find: Finder | None = None,
) -> list[Outcome]:
    """Import the mail a local MTA delivered into ``folder``/new, then file each message in
    ``folder``/cur as seen (Maildir's ":2,S"), once its batch is committed.

    Crash-safe: a message is moved only after what it said is in the store, so digest dying
    mid-way leaves it in new/ to be read again, and a mail read twice is recorded once.
    A message that is not a readable mail is filed too (the outcome says why), so it cannot
    hold up every later tick.
    """
    new, cur = folder / "new", folder / "cur"
    if not new.is_dir():
        raise BounceError(f"bounces.maildir: {folder} has no new/ folder (is it a Maildir?)")
    cur.mkdir(exist_ok=True)
    names = sorted(p for p in new.iterdir() if p.is_file() and not p.name.startswith("."))
    outcomes: list[Outcome] = []
    for outcome in import_bounces(
        store,
        (_read(p) for p in names),
        now=now,
        soft_limit=soft_limit,
        soft_window_days=soft_window_days,
        find=find,
    ):
        source = Path(outcome.name)
        try:
            source.rename(cur / f"{source.name.split(':', 1)[0]}:2,S")
        except FileNotFoundError:
            pass  # another tick filed it already
        except OSError as exc:
            raise BounceError(
                f"bounces.maildir: cannot file {source} in {cur} ({exc.strerror or exc}); "
                "give digest write access to the Maildir"
            ) from None
        outcomes.append(outcome)
    return outcomes
