"""A backend that accepts and discards every message: for benchmarks and rehearsals."""

from __future__ import annotations

from typing import Any, ClassVar

from digest.backends.base import Backend, Envelope


class DiscardBackend(Backend):
    """Accepts everything and keeps nothing; counts what it was given."""

    name: ClassVar[str] = "discard"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # it takes none: a misspelt option is refused by name
        self.count = 0
        self.bytes = 0

    def send(self, envelope: Envelope) -> None:
        self.count += 1
        self.bytes += len(envelope.data)
