"""Wiring: outgoing webhooks (``webhooks`` in the config), sent from the state database's
queue by `digest tick` (and so `digest run`), at least once, retried with backoff.

A receiver that is down never holds up a send: events are queued with their change and
posted here, each POST under the hardened client's address rules and deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from digest.app.context import Context
from digest.deliverability.outgoing import headers, secret_key
from digest.exceptions import ConfigError, FetchError
from digest.http import Fetcher
from digest.store.outbox import DEAD, WebhookQueue

# Standard Webhooks' suggested schedule: a send is dead after its 8th failed attempt.
RETRIES = tuple(
    timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
DEADLINE = 10.0  # seconds per POST: a slow receiver waits for the next tick


@dataclass
class Round:
    """What one delivery round did."""

    sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the tick's output ("" when nothing was due)."""
        if not (self.sent or self.retrying or self.dead):
            return ""
        return f"webhooks: {self.sent} sent, {self.retrying} to retry, {self.dead} dead"


class Webhooks:
    """Sends the queued events (``app.webhooks``)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def queue(self) -> WebhookQueue:
        return WebhookQueue(self.context.store)

    def deliver(
        self, *, fetcher: Fetcher | None = None, environ: Mapping[str, str] | None = None
    ) -> Round:
        """Fan new events out to the receivers, then POST every send that is due."""
        settings = self.context.settings
        env = os.environ if environ is None else environ
        queue = self.queue()
        now = self.context.now()
        receivers = [(w.url, frozenset(w.events)) for w in settings.webhooks]
        queue.fan_out(receivers, now=now)
        by_url = {w.url: w for w in settings.webhooks}
        done = Round()
        due = queue.due(now=now)
        if not due:
            return done
        client = fetcher or Fetcher(settings=settings.fetch)
        try:
            for send in due:
                hook = by_url.get(send.url)
                error = ""
                try:
                    if hook is None:
                        raise ConfigError(f"{send.url} is no longer in webhooks")
                    key = secret_key(env.get(hook.secret_env, ""), where=hook.secret_env)
                    # The receiver compares it with its own clock: the wall clock's time.
                    stamp = int(time.time())
                    body = send.payload.encode()
                    answer = client.post(
                        send.url,
                        content=body,
                        headers=headers(key, send.msg_id, stamp, body),
                        allow_private=hook.allow_private,
                        deadline=time.monotonic() + DEADLINE,
                    )
                    if not 200 <= answer.status < 300:
                        error = f"{send.url} answered {answer.status}"
                except (ConfigError, FetchError) as exc:
                    error = str(exc)
                if not error:
                    queue.sent(send)
                    done.sent += 1
                elif queue.failed(send, error, now=now, retries=RETRIES) == DEAD:
                    done.dead += 1
                    done.errors.append(f"{send.msg_id} ({send.event}) is dead: {error}")
                else:
                    done.retrying += 1
        finally:
            if fetcher is None:
                client.close()
        return done
