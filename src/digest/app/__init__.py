"""Wiring: one config file's collaborators, composed by name.

``App`` holds a shared :class:`Context` (settings, store, backend, signers, renderer, notices)
and four collaborators the CLI and the web call by name:

- ``app.readers``   the readers' list, the subscriber file, each reader's message
- ``app.schedule``  slots, waves, lateness, deadlines
- ``app.editions``  build, proofs, approve / reject / revise, test sends, deadlines
- ``app.sending``   send and resume an edition, one worker pass
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from digest.app.context import Context, Progress, make_clock
from digest.app.editions import Editions
from digest.app.readers import Readers
from digest.app.schedule import Schedule
from digest.app.sending import Sending
from digest.config import Settings
from digest.store import Store

__all__ = ["App", "Context", "Progress", "make_clock"]


class App:
    """One config file's collaborators, each created once and sharing one Context."""

    def __init__(
        self,
        config_path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        state_path: Path | None = None,
        state_url: str | None = None,
    ) -> None:
        self.context = Context(
            config_path, clock or make_clock(), state_path=state_path, state_url=state_url
        )
        self.readers = Readers(self.context)
        self.schedule = Schedule(self.context, self.readers)
        self.editions = Editions(self.context, self.readers, self.schedule)
        self.sending = Sending(self.context, self.readers)

    # The shared context's most used parts, by their plain names.

    @property
    def config_path(self) -> Path:
        return self.context.config_path

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def notes(self) -> list[str]:
        """Problems that did not stop the work (a notice that could not be mailed)."""
        return self.context.notes

    @property
    def state_url(self) -> str | None:
        return self.context.state_url

    def now(self) -> datetime:
        return self.context.now()

    def close(self) -> None:
        self.context.close()
