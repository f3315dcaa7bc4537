"""What readers do themselves: sign up (double opt-in), confirm, change preferences, leave.

Answers never tell whether an address is known: sign_up returns an outcome for the logs and
tests, and the web page shows the same "check your inbox" for every one of them.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.addresses import normalise_address, valid_address
from digest.backends.base import Backend, Envelope
from digest.exceptions import BackendError, ConfigError, PermanentFailure, TokenError
from digest.models import Publication, SubscriberState
from digest.render.message import clean_name
from digest.store import Store
from digest.store.signups import Queued, SignupQueue
from digest.store.subscribers import Pending, Record, SubscriberStore
from digest.subscribers.links import address_check, confirm_url
from digest.subscribers.mail import confirmation_envelope
from digest.tokens import LinkSigner, Signer, read_nonce_token, read_preferences_token

log = logging.getLogger("digest.readers")
S = SubscriberState
PAUSES = (1, 2, 4)  # weeks a reader may pause for
PER_ADDRESS = 3  # confirmation mails to one address per day
# How long a drain holds the sign-ups it claimed; a crashed drain's rows return after it.
LEASE = timedelta(minutes=5)
# Readers has a ``list`` property: these spell the builtin outside the class.
Outcomes = list[str]
Mails = list[tuple[Queued, Envelope]]


def consent_text(publication: Publication) -> str:
    """The sentence next to the sign-up button; what a reader agrees to, stored as such."""
    return (
        f"Send me {publication.name} by e-mail. I can change my topics or unsubscribe at any "
        "time with the links in every edition."
    )


def choose(offered: Sequence[str], picked: Sequence[str]) -> tuple[str, ...]:
    """The picked topics that are on offer, in the offer's order and spelling."""
    wanted = {p.strip().casefold() for p in picked}
    return tuple(t for t in offered if t.casefold() in wanted)


def drain_line(outcomes: Sequence[str]) -> str:
    """One log line for a drain: "sign-ups: 2 mailed, 1 known" ("" for none)."""
    if not outcomes:
        return ""
    counts = Counter(outcomes)
    return "sign-ups: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


@dataclass
class Readers:
    """The readers' side of the list, for the web pages."""

    store: Store
    publication: Publication
    topics: tuple[str, ...]
    confirms: Signer
    preferences: LinkSigner
    backend: Callable[[], Backend]
    clock: Callable[[], datetime]
    check_deliverability: bool = False  # signup.check_deliverability: ask DNS at sign-up

    @property
    def list(self) -> SubscriberStore:
        return SubscriberStore(self.store)

    @property
    def queue(self) -> SignupQueue:
        return SignupQueue(self.store)

    def enqueue(self, *, email: str, name: str, topics: Sequence[str], ip: str) -> None:
        """Take a sign-up from the form: one queued row, whatever the address (no lookup).

        ValueError for an address we would never send to (the form says so: that tells
        nothing about who is subscribed).
        """
        # AddressError is a ValueError: the form says the address is not one we send to.
        email = normalise_address(email, check_deliverability=self.check_deliverability)
        self.queue.add(email=email, name=name, topics=topics, ip=ip, now=self.clock())

    def sign_up(self, *, email: str, name: str, topics: Sequence[str], ip: str) -> str:
        """Queue a sign-up and drain the queue at once; this one's outcome (the Python API;
        the web form only queues, so its answer does not wait for the mail)."""
        self.enqueue(email=email, name=name, topics=topics, ip=ip)
        outcomes = self.drain()
        return outcomes[-1] if outcomes else "queued"

    def drain(self, *, limit: int = 50, rounds: int = 20) -> Outcomes:
        """Handle queued sign-ups: each one's outcome, "mailed" or why not ("known",
        "blocked", "throttled", "failed"), in order.

        At least once and crash-safe: rows are claimed under a lease, mailed, then deleted;
        a drain that dies between the mail and the delete leaves its rows to be claimed
        again when the lease runs out (one more confirmation mail, never a lost sign-up).
        A failed mail leaves its row for the next drain.
        """
        outcomes: Outcomes = []
        queue = self.queue
        for _ in range(rounds):
            batch = queue.claim(now=self.clock(), lease=LEASE, limit=limit)
            if not batch:
                break
            mails: Mails = []
            for item in batch:
                outcome, envelope = self._decide(item)
                if envelope is None:
                    queue.done(item)
                    outcomes.append(outcome)
                else:
                    mails.append((item, envelope))
            outcomes += self._mail(mails)
            if len(batch) < limit:
                break
        return outcomes

    def _decide(self, item: Queued) -> tuple[str, Envelope | None]:
        """What one queued sign-up gets: a confirmation mail, or nothing and why."""
        if not valid_address(item.email):
            # Not from the form (which checks): a hand-made row, or an older version's. It
            # is dropped, not retried, so it cannot hold up the queue behind it.
            log.warning("queued sign-up for %r dropped: not an address we send to", item.email)
            return "unusable", None
        now = self.clock()
        record = self.list.get(item.email)
        if record is not None and record.state in (S.ACTIVE, S.PAUSED):
            return "known", None
        if record is not None and record.state in (S.BOUNCED, S.COMPLAINED):
            return "blocked", None
        if record is not None:
            recent = self.list.recent_requests(record.id, since=now - timedelta(days=1))
            if recent >= PER_ADDRESS:
                return "throttled", None
        nonce = secrets.token_urlsafe(24)
        self.list.request(
            item.email,
            nonce=nonce,
            name=clean_name(item.name),  # used once confirmed, never in a mail before
            topics=choose(self.topics, item.topics),
            ip=item.ip,
            text=consent_text(self.publication),
            now=now,
        )
        link = confirm_url(self.publication.base_url, self.confirms, nonce)
        envelope = confirmation_envelope(self.publication, email=item.email, link=link, now=now)
        return "mailed", envelope

    def _mail(self, mails: Mails) -> Outcomes:
        """Send the confirmations over one connection; each row is deleted after its mail."""
        if not mails:
            return []
        outcomes: Outcomes = []
        try:
            with self.backend() as connection:
                for item, envelope in mails:
                    try:
                        connection.send(envelope)
                    except PermanentFailure as exc:  # 5xx: it never will be accepted
                        log.warning("confirmation mail refused: %s", exc)
                        self.queue.done(item)
                        outcomes.append("refused")
                        continue
                    except BackendError as exc:
                        # The page looked the same whatever happened; the log says what did.
                        # The row stays claimed: the next drain after the lease tries again.
                        log.warning("confirmation mail not sent: %s", exc)
                        outcomes.append("failed")
                        continue
                    self.queue.done(item)
                    outcomes.append("mailed")
        except (BackendError, ConfigError) as exc:
            log.warning("confirmation mails not sent: %s", exc)
            outcomes += ["failed"] * (len(mails) - len(outcomes))
        return outcomes

    def pending(self, token: str) -> tuple[Pending, Record] | None:
        """The sign-up a confirmation link stands for; None once used or forgotten."""
        found = self.list.pending(read_nonce_token(self.confirms, token))
        record = self.list.get_id(found.subscriber_id) if found else None
        return (found, record) if found and record else None

    def confirm(self, token: str, *, ip: str) -> Record | None:
        return self.list.confirm(read_nonce_token(self.confirms, token), ip=ip, now=self.clock())

    def reader(self, token: str) -> Record:
        """The subscriber a preference link is for; TokenError if none is (any more)."""
        subscriber_id, check = read_preferences_token(self.preferences, token)
        record = self.list.get_id(subscriber_id)
        if record is None or address_check(record.email) != check:
            raise TokenError("this link is for an address that is no longer on the list")
        return record

    def choices(self, record: Record) -> tuple[str, ...]:
        """The topics on the page: those on offer, then any others the reader has."""
        offered = {t.casefold() for t in self.topics}
        return (*self.topics, *(t for t in record.topics if t.casefold() not in offered))

    def save(self, token: str, *, topics: Sequence[str], name: str, pause: str, ip: str) -> Record:
        """Apply the preference form: topics (none = everything), name, a pause or resume."""
        record = self.reader(token)
        if record.state not in (S.ACTIVE, S.PAUSED):
            raise TokenError(f"this address is {record.state}; sign up again to get editions")
        now = self.clock()
        chosen = choose(self.choices(record), topics)
        values: dict[str, object] = {"topics": chosen, "name": clean_name(name)}
        note = f"topics: {', '.join(chosen) or 'everything'}"
        if pause in ("0", "resume"):
            values.update(state=S.ACTIVE, paused_until="")
        elif pause.isdigit() and int(pause) in PAUSES:
            values.update(state=S.PAUSED, paused_until=now + timedelta(weeks=int(pause)))
            note += f"; paused for {pause} week(s)"
        self.list.change(record.id, now=now, consent=("preferences", "web", ip, note), **values)
        return self.reader(token)
