"""A backend that prints each message to stdout or stderr, for trying ``digest send`` out."""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TextIO

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError

SEPARATOR = "-" * 79


class ConsoleBackend(Backend):
    """Write a separator line naming the envelope, then the message decoded as UTF-8.

    The stream is looked up on ``sys`` at every send, not at construction, so that output
    redirected later (pytest's capture, click's CliRunner) is where the messages go.
    """

    name: ClassVar[str] = "console"
    options: ClassVar[frozenset[str]] = frozenset({"stream"})

    def __init__(self, *, stream: str = "stdout", **unknown: Any) -> None:
        super().__init__(**unknown)
        if stream not in ("stdout", "stderr"):
            raise BackendError(
                f"backend 'console': stream must be stdout or stderr, not {stream!r}"
            )
        self.stream = stream

    def send(self, envelope: Envelope) -> None:
        out: TextIO = getattr(sys, self.stream)
        text = envelope.data.decode("utf-8", "replace")
        if not text.endswith("\n"):
            text += "\r\n"
        try:
            out.write(f"{SEPARATOR}\nfrom {envelope.sender} to {envelope.recipient}\n{text}")
            out.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            raise BackendError(f"console: cannot write to {self.stream} ({exc})") from exc
