"""A backend that DKIM-signs each message on its way to another backend.

For the one-off messages (confirmations, proofs, notices, sign-in links). Editions are
signed as each reader's copy is made (render.message) and go to the plain backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError
from digest.render.dkim import DkimSigner


class SignedBackend(Backend):
    """Signs with ``signer``, then hands the message to ``inner`` (which does the rest)."""

    name = "signed"

    def __init__(self, *, inner: Backend, signer: DkimSigner, **options: Any) -> None:
        super().__init__(**options)
        self.inner, self.signer = inner, signer

    def _signed(self, envelope: Envelope) -> Envelope:
        if envelope.data.startswith(b"DKIM-Signature:"):
            return envelope  # signed already (a test send built like an edition)
        # The signature header starts the message; no line of it begins with ".", so the
        # envelope's dot_safe promise still holds.
        return replace(envelope, data=self.signer.sign(envelope.data))

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send(self, envelope: Envelope) -> None:
        self.inner.send(self._signed(envelope))

    def send_each(self, envelopes: Iterable[Envelope]) -> Iterator[BackendError | None]:
        return self.inner.send_each(self._signed(e) for e in envelopes)
