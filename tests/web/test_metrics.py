"""`digest serve`'s operations endpoints: Prometheus metrics read from the state database
at scrape time (so every process's work shows), an optional bearer token on /metrics,
/healthz for the process and /readyz for the database (200, or 503 with a short reason)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from digest.app import App
from digest.testing.postgres import PostgresCluster
from digest.web.app import create_app
from digest.web.server import BackgroundServer

from conftest import NOW, SECRET, Clock, Project, loopback_client

TOKEN = "metrics-token-0123456789"


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _serve(app: App, **environ: str) -> BackgroundServer:
    return BackgroundServer(create_app(app, environ={"DIGEST_SECRET": SECRET, **environ}))


def test_metrics_show_what_other_processes_wrote_to_the_database(
    project: Project, state_url: str
) -> None:
    project.state_url = state_url
    project.write_config()
    for args in (("build",), ("approve", "1", "--by", "Rosa"), ("send", "1"), ("tick",)):
        result = project.cli(*args)
        assert result.exit_code == 0, (args, result.output)
    store = project.open_store()
    store.suppress("gone@example.org", reason="hard-bounce", now=datetime.fromisoformat(NOW))
    store.close()
    # The server's process never sent anything itself: every figure is read at scrape time.
    app = App(project.config, clock=Clock())
    with _serve(app) as server, loopback_client(server.url) as http:
        first = http.get("/metrics")
        project.cli("subscribers", "add", "late@example.org")
        store = project.open_store()
        store.suppress("spam@example.org", reason="complaint", now=datetime.fromisoformat(NOW))
        store.close()
        second = http.get("/metrics")
    app.close()
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain; version=")
    got = _samples(first.text)
    assert got[("digest_database_up", ())] == 1
    assert got[("digest_deliveries", (("state", "sent"),))] == 3
    assert got[("digest_queue_depth", ())] == 0
    assert got[("digest_editions", (("state", "sent"),))] == 1
    assert got[("digest_suppressions", (("reason", "hard-bounce"),))] == 1
    assert got[("digest_send_rate_per_second", ())] == 3 / 300  # sent "now", frozen clock
    assert got[("digest_source_consecutive_failures", (("source", "World Desk"),))] == 0
    assert got[("digest_last_tick_age_seconds", ())] == 0
    again = _samples(second.text)
    assert again[("digest_suppressions", (("reason", "complaint"),))] == 1


def test_metrics_need_the_bearer_token_when_one_is_set(project: Project) -> None:
    app = App(project.config, clock=Clock())
    with _serve(app, DIGEST_METRICS_TOKEN=TOKEN) as server, loopback_client(server.url) as http:
        missing = http.get("/metrics")
        wrong = http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        bare = http.get("/metrics", headers={"Authorization": TOKEN})
        right = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        health = http.get("/healthz")  # probes carry no token
    app.close()
    for refused in (missing, wrong, bare):
        assert refused.status_code == 401
        assert "digest_" not in refused.text
        assert refused.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert _samples(right.text)[("digest_database_up", ())] == 1
    assert health.status_code == 200


def _probe(http: Any) -> tuple[int, str, int, float]:
    health, ready, metrics = http.get("/healthz"), http.get("/readyz"), http.get("/metrics")
    up = _samples(metrics.text)[("digest_database_up", ())]
    return health.status_code, ready.text, ready.status_code, up


def test_readyz_follows_postgresql_going_down_and_healthz_does_not(project: Project) -> None:
    with PostgresCluster() as cluster:  # its own cluster: this test stops it
        project.state_url = cluster.create_database()
        project.write_config()
        app = App(project.config, clock=Clock())
        with _serve(app) as server, loopback_client(server.url) as http:
            up = _probe(http)
            cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
            down = _probe(http)
        app.close()
    assert up == (200, "ready\n", 200, 1)
    assert down[0] == 200
    assert down[2] == 503
    assert down[1].startswith("database unreachable: ")
    assert "cannot reach the database server" in down[1]
    assert len(down[1]) < 300
    assert down[3] == 0
