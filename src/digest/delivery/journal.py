"""The send journal: what each connection did with each row, written as it happens.

The ledger marks rows in flight a batch at a time and records their answers a batch at a
time (a commit per message would cost most of a message's CPU). A SIGKILL between two
commits would then leave the whole batch in doubt, the accepted and the never-sent alike.
So each worker appends one short line per event to a file of its own, with a plain
``write`` (no fsync: the kernel keeps what a killed process wrote; only a crash of the
machine loses it, and then the ledger's batch is in doubt, as without a journal):

    h EMAIL   handed to a connection (from here on the server may get it)
    s EMAIL   the server accepted it
    n EMAIL   the server answered and did not accept it (it was not delivered)

A worker that finds a dead worker's rows in flight first *settles* them with that worker's
journal: accepted rows are recorded as sent, rows never handed over (or refused) go back to
pending untouched; only rows handed over and not answered stay in doubt, at most the
messages on the dead worker's connections (two per connection with SMTP pipelining). The
journal lives on this host, next to the state file: a worker on another host finds no
journal and treats the dead worker's whole batch as in doubt.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import datetime
from pathlib import Path

from digest.exceptions import DigestError
from digest.store.ledger import Ledger
from digest.store.settle import dead_claims, live_tokens, settle_rows

SENT, HANDED, REFUSED = "s", "h", "n"


def _path(folder: Path, token: str, edition_id: int) -> Path:
    # Tokens are host:pid:hex; a host name may hold characters a file name should not.
    return folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', token)}.e{edition_id}.journal"


class Journal:
    """One worker's journal for one edition; ``write`` is safe from any thread (one
    ``O_APPEND`` write per line)."""

    def __init__(self, folder: Path, token: str, edition_id: int) -> None:
        self.path = _path(folder, token, edition_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise DigestError(
                f"cannot write the send journal {self.path}: {exc.strerror}; "
                "make the folder of state_path writable"
            ) from exc

    def write(self, kind: str, email: str) -> None:
        os.write(self._fd, f"{kind} {email}\n".encode())

    def close(self, *, remove: bool) -> None:
        """Close; ``remove`` once the ledger holds every answer (the journal is spent)."""
        os.close(self._fd)
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def read(path: Path) -> dict[str, str]:
    """Each address's last event (a line cut short by the kill is ignored)."""
    last: dict[str, str] = {}
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return last
    for line in text.split("\n")[:-1]:
        kind, _, email = line.partition(" ")
        if email and kind in (SENT, HANDED, REFUSED) and last.get(email) != SENT:
            last[email] = kind
    return last


def settle(ledger: Ledger, folder: Path, edition_id: int, *, now: datetime, live: str) -> int:
    """Settle the rows dead workers left in flight with their journals; returns how many
    rows were settled (recorded as sent, or given back to the queue)."""
    settled = 0
    for token in dead_claims(ledger.raw, edition_id, live=live):
        path = _path(folder, token, edition_id)
        if not path.exists():
            continue  # another host's worker, or settled meanwhile: in doubt as a batch
        settled += settle_rows(ledger.raw, edition_id, token, read(path), now=now)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # only now: the ledger holds what it said
    # A journal with nothing left in flight (its worker died between its last commit and
    # removing it, or while it waited) is spent: removed, so the folder does not grow.
    alive = {_path(folder, t, edition_id) for t in live_tokens(ledger.raw, live=live)}
    for path in folder.glob(f"*.e{edition_id}.journal"):
        if path not in alive:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return settled
