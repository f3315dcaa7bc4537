"""Operations endpoints of `digest serve`: Prometheus metrics, liveness and readiness.

``/metrics`` reads the state database at scrape time through a custom collector (not
in-process counters), so what every worker, tick and send wrote shows in one scrape.
``/healthz`` answers 200 while the process serves; ``/readyz`` 200 when the database
answers, else 503 with a short reason. With ``DIGEST_METRICS_TOKEN`` set, ``/metrics``
wants ``Authorization: Bearer <token>`` (the figures name sources and list sizes).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.app import App
from digest.exceptions import StoreError
from digest.store.metrics import RATE_WINDOW, ping, read_figures

TOKEN_ENV = "DIGEST_METRICS_TOKEN"  # noqa: S105 (the name of a variable)
# A readiness answer is read by probes and people: the first line of the cause, cut short.
REASON_CHARS = 200
UP_DOC = "1 if the state database answered this scrape, else 0."


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(name: str, doc: str, label: str, values: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class StateCollector(Collector):
    """The figures of the state database, read at each scrape."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        now = self.app.now()
        try:
            figures = read_figures(self.app.store, now)
        except StoreError:
            yield _gauge("digest_database_up", UP_DOC, 0)
            return
        yield _gauge("digest_database_up", UP_DOC, 1)
        yield _by(
            "digest_deliveries", "Delivery ledger rows by state.", "state", figures.deliveries
        )
        yield _gauge(
            "digest_queue_depth",
            "Ledger rows waiting to be sent (pending or deferred).",
            figures.queued,
        )
        yield _gauge("digest_queue_due", "Waiting ledger rows whose time has come.", figures.due)
        window = RATE_WINDOW.total_seconds()
        yield _gauge(
            "digest_send_rate_per_second",
            f"Deliveries sent per second over the last {int(window)} s.",
            figures.sent_recently / window,
        )
        yield _by(
            "digest_suppressions",
            "Suppressed addresses by reason (bounces, complaints, unsubscribes).",
            "reason",
            figures.suppressions,
        )
        yield _by("digest_editions", "Editions by state.", "state", figures.editions)
        yield _by(
            "digest_source_consecutive_failures",
            "Collect failures in a row per source (0: its last fetch worked).",
            "source",
            figures.source_failures,
        )
        if figures.last_tick is not None:
            yield _gauge(
                "digest_last_tick_age_seconds",
                "Seconds since the scheduler last ticked (digest tick or digest run).",
                max((now - figures.last_tick).total_seconds(), 0.0),
            )


class Operations:
    """The /metrics, /healthz and /readyz routes."""

    def __init__(self, app: App, environ: Mapping[str, str]) -> None:
        self.app = app
        self.token = environ.get(TOKEN_ENV, "")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(app))

    def routes(self) -> list[Route]:
        return [
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.headers.get("authorization", "")
        expected = f"Bearer {self.token}"
        return hmac.compare_digest(given.encode(), expected.encode())

    async def metrics(self, request: Request) -> Response:
        if not self._authorised(request):
            return PlainTextResponse(
                "metrics need the bearer token\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = generate_latest(self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def healthz(self, _request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(self, _request: Request) -> Response:
        try:
            ping(self.app.store)
        except StoreError as exc:
            reason = " ".join(str(exc).split())[:REASON_CHARS]
            return PlainTextResponse(f"database unreachable: {reason}\n", status_code=503)
        return PlainTextResponse("ready\n")
