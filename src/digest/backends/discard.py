"""A backend that accepts and discards every message: for benchmarks and rehearsals."""

from __future__ import annotations

from typing import ClassVar

from digest.backends.base import Backend, Envelope


class DiscardBackend(Backend):
    """Accepts everything and keeps nothing; counts what it was given."""

    name: ClassVar[str] = "discard"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.bytes = 0

    def send(self, envelope: Envelope) -> None:
        self.count += 1
        self.bytes += len(envelope.data)
