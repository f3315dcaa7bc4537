"""The one exception tree of digest: every exception class of the package is defined here.

Every error a user can see derives from DigestError (the CLI prints it as one line). The
web app's answers derive from Exception alone: its handlers turn them into pages, so no
`except DigestError` elsewhere catches them by accident.

DigestError
├── ConfigError            config, subscribers or templates are invalid (names file:line)
├── AddressError           an e-mail address digest will not store or send to (says why)
├── SourceError            a source could not be fetched or parsed (names the source)
│   └── FetchError         the HTTP layer refused or failed (scheme, address, size, timeout)
│       └── DeadlineExceeded   the whole exchange outran its deadline
├── RankError              the editor's instructions for one edition cannot be followed
├── ThinDay                too few stories and ranking.thin_day_policy is skip: no edition
├── RenderError            a template failed to render or compile
│   └── ImageError         an image we will not use (the story stays, without it)
├── TokenError             a signed link is tampered with, expired or signed with another key
├── BounceError            a returned mail or the bounce mailbox cannot be read
├── WebhookError           a provider webhook failed its check (signature, host, age, size)
├── StoreError             the state database failed
│   └── SchemaError        the database's schema is older or newer than this digest's
├── StateError             an edition is not in a state that allows the requested action
│   ├── LockedError        another process holds the edition's send lock
│   └── PreflightFailed    an approval refused: the edition fails preflight (says why)
├── SendLimitReached       an editor's test sends are over approval.test_sends_per_hour
└── BackendError           a delivery backend failed as a whole (cannot connect, bad options)
    ├── TemporaryFailure   one message was refused for now (4xx, dropped connection)
    ├── PermanentFailure   one message was refused for good (5xx)
    └── InDoubtFailure     the connection dropped after the data: the server may have it

Exception
├── Refused                a web page answers with a status and a clear message instead
│   └── TooMany            a sign-up limit was hit: 429 with Retry-After
├── NeedSignIn             a desk page needs a session or a proof link: go to sign-in
└── Throttled              too many failed sign-in attempts: 429 with Retry-After
"""

from __future__ import annotations

from collections.abc import Sequence

from digest.models import Candidate


class DigestError(Exception):
    """Root of every error digest raises on purpose; the CLI prints it as one line."""


class ConfigError(DigestError):
    """Configuration, subscriber list or template is invalid."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")


class SourceError(DigestError):
    """A source failed; the message names the source."""


class FetchError(SourceError):
    """The hardened HTTP client refused a URL or the transfer failed."""


class DeadlineExceeded(FetchError):
    """The exchange did not finish within its deadline (connect, headers, body, retries)."""


class BounceError(DigestError):
    """A file given as a returned mail cannot be read as one (the caller names the file), or
    the bounce mailbox (bounces.imap) cannot be reached, secured or logged in to."""


class WebhookError(DigestError):
    """A provider's webhook request is refused: ``status`` is the HTTP answer it gets
    (400 unreadable, 401 bad credentials, 403 bad signature or host, 413 too large)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        self.status = status
        super().__init__(message)


class RankError(DigestError):
    """The editor's instructions for this edition cannot be followed (e.g. --order)."""


class ThinDay(DigestError):
    """Fewer stories than ``ranking.min_stories`` and the policy is skip: no edition."""

    def __init__(self, message: str, *, candidates: Sequence[Candidate] = ()) -> None:
        self.candidates = list(candidates)
        super().__init__(message)


class TokenError(DigestError):
    """A token is tampered with, expired or signed with an unknown key."""


class AddressError(DigestError, ValueError):
    """An e-mail address digest will not store or send to; the message says why."""


class RenderError(DigestError):
    """A template could not be rendered, or MJML could not be compiled."""


class ImageError(RenderError):
    """An image we will not use (wrong type, too big, too small, corrupt); the story stays."""


class StoreError(DigestError):
    """The state database could not be read or written."""


class SchemaError(StoreError):
    """The state database's schema version is not the one this digest uses."""


class StateError(DigestError):
    """The edition's state does not allow the requested action."""


class LockedError(StateError):
    """Another live process holds the lock for this edition."""


class PreflightFailed(StateError):
    """An approval was refused: what would go out is broken (the message lists why)."""


class SendLimitReached(DigestError):
    """Too many test sends by one editor within the hour (approval.test_sends_per_hour)."""


class BackendError(DigestError):
    """A delivery backend failed as a whole or was configured wrongly."""


class TemporaryFailure(BackendError):
    """A single message was deferred (4xx reply, dropped connection); retry later.

    ``retry_after`` (seconds) is the server's own wish (an API's 429 Retry-After): the
    retry is not due before it."""

    def __init__(
        self, message: str, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        self.code = code
        self.retry_after = retry_after
        super().__init__(message)


class PermanentFailure(BackendError):
    """A single message was rejected for good (5xx reply); do not retry."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class InDoubtFailure(BackendError):
    """The connection dropped after the message data was sent: the server may have it."""


# The web app's answers: not DigestError, so only its page handlers catch them.


class Refused(Exception):
    """Render a clear page with ``status`` instead of doing what was asked."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class TooMany(Refused):
    """A sign-up limit was hit: 429 with Retry-After."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(429, "Too many sign-ups", message)
        self.retry_after = retry_after


class NeedSignIn(Exception):
    """No session and no proof link: send the browser to the sign-in page."""


class Throttled(Exception):
    """Too many failed attempts from this address or client: answer 429, Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many sign-in attempts. Nothing was checked; wait {retry_after} seconds and "
            "try again (each further failure doubles the wait)."
        )
        self.retry_after = retry_after
