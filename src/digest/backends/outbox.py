"""A backend that files each message into a local Maildir or a folder of ``.eml`` files."""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError, TemporaryFailure

# Shared by every instance so two backends in one process never pick the same Maildir name.
_counter = itertools.count(1)
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")
_NUMBERED = re.compile(r"^(\d+)-")


class OutboxBackend(Backend):
    """Write messages byte-for-byte (CRLF kept) where another program can pick them up.

    ``format: maildir`` (default) writes into ``tmp/`` and renames into ``new/``, the Maildir
    delivery protocol, so a reader never sees half a file. ``format: folder`` writes
    ``000001-<recipient>.eml`` files, numbered on from the highest number already there,
    each through a hidden temporary file and ``os.replace``. Relative paths are the caller's
    to resolve. A failed write raises TemporaryFailure: the message was not filed, and
    nothing about it blames the recipient.
    """

    name: ClassVar[str] = "outbox"
    options: ClassVar[frozenset[str]] = frozenset({"path", "format"})

    def __init__(
        self, *, path: str | os.PathLike[str] | None = None, format: str = "maildir", **unknown: Any
    ) -> None:
        super().__init__(**unknown)
        if path is None or path == "":
            raise BackendError("backend 'outbox': option path is required (the folder to write)")
        if not isinstance(path, str | os.PathLike):
            raise BackendError(f"backend 'outbox': path must be a folder path, not {path!r}")
        if format not in ("maildir", "folder"):
            raise BackendError(
                f"backend 'outbox': format must be maildir or folder, not {format!r}"
            )
        self.path = Path(path)
        self.format = format
        self._next_number: int | None = None

    def open(self) -> None:
        folders = [self.path / d for d in ("tmp", "new", "cur")] if self.format == "maildir" else []
        try:
            for folder in [self.path, *folders]:
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"outbox {self.path}: cannot create the folder ({exc})") from exc

    def send(self, envelope: Envelope) -> None:
        try:
            if self.format == "maildir":
                self._deliver_maildir(envelope.data)
            else:
                self._deliver_folder(envelope)
        except OSError as exc:
            raise TemporaryFailure(
                f"outbox {self.path}: cannot write the message to {envelope.recipient} ({exc}); "
                "check the folder exists and is writable"
            ) from exc

    def _deliver_maildir(self, data: bytes) -> None:
        if not (self.path / "new").is_dir():
            self.open()
        host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        seconds, micro = divmod(time.time_ns() // 1000, 1_000_000)
        unique = f"{seconds}.M{micro}P{os.getpid()}Q{next(_counter)}.{host}"
        tmp = self.path / "tmp" / unique
        _write_synced(tmp, data, "xb")
        tmp.rename(self.path / "new" / unique)

    def _deliver_folder(self, envelope: Envelope) -> None:
        if self._next_number is None:
            self.open()
            taken = (_NUMBERED.match(p.name) for p in self.path.glob("*.eml"))
            self._next_number = max((int(m[1]) for m in taken if m), default=0) + 1
        safe = _UNSAFE.sub("_", envelope.recipient).lstrip(".")[:100] or "unknown"
        while (final := self.path / f"{self._next_number:06d}-{safe}.eml").exists():
            self._next_number += 1
        tmp = self.path / f".{final.name}.{os.getpid()}.tmp"
        _write_synced(tmp, envelope.data, "wb")
        tmp.replace(final)
        self._next_number += 1


def _write_synced(path: Path, data: bytes, mode: str) -> None:
    """Write ``data`` and fsync it before the caller's rename makes it visible."""
    fh = path.open(mode)
    try:
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
