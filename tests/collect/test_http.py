"""The hardened HTTP client against a real local server: schemes, addresses, sizes, redirects."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from digest.exceptions import DeadlineExceeded, FetchError
from digest.http import Fetcher, FetchSettings
from digest.netpin import is_public_address
from digest.testing.http import FixtureServer

PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fetcher(sleeps: list[float]) -> Iterator[Fetcher]:
    with Fetcher(settings=FetchSettings(timeout=2.0, max_bytes=100_000), sleep=sleeps.append) as f:
        yield f


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_fetch_returns_body_headers_and_sends_user_agent(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    server.route(
        "/feed", b"<rss/>", headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'}
    )
    resp = fetcher.fetch(server.url("/feed"), allow_private=True)
    assert (resp.status, resp.body, resp.url) == (200, b"<rss/>", server.url("/feed"))
    assert resp.headers["content-type"] == "application/rss+xml"
    assert resp.headers["etag"] == '"v1"'
    method, path, headers = server.requests[0]
    assert (method, path) == ("GET", "/feed")
    assert headers["user-agent"].startswith("digest/")
    assert "if-none-match" not in headers


def test_conditional_get_sends_validators_and_accepts_304(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    server.route("/feed", b"", status=304, headers={"ETag": '"v1"'})
    resp = fetcher.fetch(
        server.url("/feed"),
        allow_private=True,
        etag='"v1"',
        last_modified="Tue, 24 Nov 2026 06:00:00 GMT",
    )
    assert (resp.status, resp.body) == (304, b"")
    sent = server.requests[0][2]
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Tue, 24 Nov 2026 06:00:00 GMT"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://files.example.com/feed.xml",
        "data:text/xml,<rss/>",
        "gopher://example.com/",
    ],
)
def test_non_http_schemes_are_refused(fetcher: Fetcher, url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(FetchError, match=rf"^{url.split(',')[0][:12]}.*scheme '{scheme}'"):
        fetcher.fetch(url, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


def test_public_address_is_public() -> None:
    assert is_public_address(PUBLIC_IP)
    assert is_public_address("2606:4700:4700::1111")


def test_loopback_refused_without_allow_private(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/feed", b"<rss/>")
    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1.*allow_private"):
        fetcher.fetch(server.url("/feed"))
    assert server.requests == []


def test_metadata_address_refused_before_connecting(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match=r"169\.254\.169\.254"):
        fetcher.fetch("http://169.254.169.254/latest/meta-data/")


def test_public_name_resolving_to_private_ip_refused(sleeps: list[float]) -> None:
    # Refused at the check, so nothing connects to the (fake) answer.
    with (
        Fetcher(resolver=lambda host: ["10.0.0.5"], sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"news\.example\.com.*10\.0\.0\.5"),
    ):
        f.fetch("https://news.example.com/feed")


def test_unresolvable_host_is_a_fetch_error(sleeps: list[float]) -> None:
    def fail(host: str) -> list[str]:
        raise socket.gaierror(f"no such host {host}")

    with (
        Fetcher(resolver=fail, sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"^https://nowhere\.invalid/: cannot resolve host"),
    ):
        f.fetch("https://nowhere.invalid/")


def test_redirect_to_loopback_checked_after_public_first_hop(sleeps: list[float]) -> None:
    # 127.0.0.2 stands for a public site (the address rule is injected, the server real);
    # its redirect to 127.0.0.1 must be refused before anything is sent there.
    with FixtureServer(host="127.0.0.2") as public, FixtureServer() as private:
        public.redirect("/hop", private.url("/secret"))
        private.route("/secret", b"internal")
        with (
            Fetcher(is_public=lambda a: a == "127.0.0.2", sleep=sleeps.append) as f,
            pytest.raises(
                FetchError,
                match=rf"^{public.url('/hop')}: redirect to .*/secret: host '127\.0\.0\.1'"
                " resolves to non-public",
            ),
        ):
            f.fetch(public.url("/hop"))
        assert [path for _, path, _ in public.requests] == ["/hop"]
        assert private.requests == []


METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.10.20/",  # anywhere in the link-local range
    "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/",
]


@pytest.mark.parametrize("url", METADATA_URLS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_addresses_refused_allow_private_or_not(
    fetcher: Fetcher, url: str, allow_private: bool
) -> None:
    with pytest.raises(FetchError, match=r"metadata|link-local"):
        fetcher.fetch(url, allow_private=allow_private)


def test_name_resolving_to_metadata_refused_even_with_allow_private(sleeps: list[float]) -> None:
    with (
        Fetcher(resolver=lambda host: ["169.254.169.254"], sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"'feeds\.example' resolves to 169\.254\.169\.254"),
    ):
        f.fetch("http://feeds.example/rss", allow_private=True)


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://instance.example/",  # a name the resolver maps to a metadata address
    ],
)
def test_redirect_to_metadata_refused_with_allow_private(
    server: FixtureServer, sleeps: list[float], target: str
) -> None:
    def resolve(host: str) -> list[str]:
        return ["169.254.169.254"] if host == "instance.example" else ["127.0.0.1"]

    server.redirect("/feed", target)
    first = f"http://feeds.example:{server.port}/feed"
    with (
        Fetcher(resolver=resolve, sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=rf"^{first}: redirect to .*(metadata|link-local)"),
    ):
        f.fetch(first, allow_private=True)
    assert [path for _, path, _ in server.requests] == ["/feed"]


def test_connects_to_the_checked_address_keeping_the_host_name(
    server: FixtureServer, sleeps: list[float]
) -> None:
    # DNS rebinding: the second answer would be a private address. The fetch asks once and
    # connects to that first answer, while the Host header keeps the name.
    answers = [["127.0.0.1"], ["10.0.0.5"]]
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return answers.pop(0)

    server.route("/feed", b"<rss/>")
    with Fetcher(resolver=resolve, sleep=sleeps.append) as f:
        resp = f.fetch(f"http://feeds.example:{server.port}/feed", allow_private=True)
    assert resp.body == b"<rss/>"
    assert asked == ["feeds.example"]
    assert server.requests[0][2]["host"] == f"feeds.example:{server.port}"


def test_a_hung_resolver_meets_the_deadline(sleeps: list[float]) -> None:
    release = threading.Event()

    def hang(host: str) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    settings = FetchSettings(deadline=0.5)
    started = time.monotonic()
    try:
        with (
            Fetcher(settings=settings, resolver=hang, sleep=sleeps.append) as f,
            pytest.raises(
                DeadlineExceeded, match=r"^no answer within 0\.5 s \(resolving slow\.dns\)"
            ),
        ):
            f.fetch("http://slow.dns/feed", allow_private=True)
    finally:
        release.set()
    assert time.monotonic() - started < 10  # far below the 30 s the resolver would take


def test_headers_trickled_byte_by_byte_stop_at_the_deadline(
    server: FixtureServer, sleeps: list[float]
) -> None:
    # One byte every 0.05 s: each read succeeds, so the 2 s read timeout never fires; the
    # head alone would take about 25 s.
    server.route("/slowloris", b"<rss/>", headers={"Content-Length": "6"}, trickle=0.05)
    settings = FetchSettings(timeout=2.0, deadline=1.0, retries=2)
    started = time.monotonic()
    with (
        Fetcher(settings=settings, sleep=sleeps.append) as f,
        pytest.raises(DeadlineExceeded, match=r"/slowloris: no answer within 1 s$"),
    ):
        f.fetch(server.url("/slowloris"), allow_private=True)
    assert time.monotonic() - started < 8
    assert sleeps == []  # a deadline is not retried


def test_retries_stop_when_the_deadline_leaves_no_time(
    server: FixtureServer, sleeps: list[float]
) -> None:
    server.route("/busy", b"busy", status=503, headers={"Retry-After": "5"})
    settings = FetchSettings(deadline=2.0, retries=3)
    with (
        Fetcher(settings=settings, sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"HTTP 503 .*no time left to retry within 2 s"),
    ):
        f.fetch(server.url("/busy"), allow_private=True)
    assert sleeps == []


def test_redirects_followed_and_final_url_reported(server: FixtureServer, fetcher: Fetcher) -> None:
    server.redirect("/old", "/middle", status=301)
    server.redirect("/middle", server.url("/new"), status=308)
    server.route("/new", b"<feed/>")
    resp = fetcher.fetch(server.url("/old"), allow_private=True)
    assert (resp.url, resp.body) == (server.url("/new"), b"<feed/>")


def test_redirect_loop_is_detected(server: FixtureServer, fetcher: Fetcher) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    with pytest.raises(FetchError, match=r"/a: redirect loop"):
        fetcher.fetch(server.url("/a"), allow_private=True)


def test_too_many_redirects(server: FixtureServer, sleeps: list[float]) -> None:
    for i in range(4):
        server.redirect(f"/r{i}", f"/r{i + 1}")
    server.route("/r4", b"ok")
    with (
        Fetcher(settings=FetchSettings(max_redirects=3), sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"),
    ):
        f.fetch(server.url("/r0"), allow_private=True)
    with Fetcher(settings=FetchSettings(max_redirects=4), sleep=sleeps.append) as f:
        assert f.fetch(server.url("/r0"), allow_private=True).body == b"ok"


def test_redirect_to_file_scheme_refused(server: FixtureServer, fetcher: Fetcher) -> None:
    server.redirect("/feed", "file:///etc/passwd")
    with pytest.raises(FetchError, match=r"/feed: redirect to file:.*passwd: scheme 'file'"):
        fetcher.fetch(server.url("/feed"), allow_private=True)


def test_gzip_bomb_stopped_at_decoded_cap(server: FixtureServer, fetcher: Fetcher) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000, compresslevel=9)
    assert len(bomb) < 100_000  # small on the wire: only the decoded size gives it away
    server.route("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match=r"/bomb: body is over the 100000 byte limit"):
        fetcher.fetch(server.url("/bomb"), allow_private=True)


def test_gzip_and_deflate_bodies_are_decoded(server: FixtureServer, fetcher: Fetcher) -> None:
    text = b"<rss>" + b"news " * 1000 + b"</rss>"
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    server.route("/gz", gzip.compress(text), headers={"Content-Encoding": "gzip"})
    server.route("/zl", zlib.compress(text), headers={"Content-Encoding": "deflate"})
    server.route(
        "/raw",
        raw_deflate.compress(text) + raw_deflate.flush(),
        headers={"Content-Encoding": "deflate"},
    )
    for path in ("/gz", "/zl", "/raw"):
        resp = fetcher.fetch(server.url(path), allow_private=True)
        assert resp.body == text
        assert "content-encoding" not in resp.headers


def test_oversize_body_refused(server: FixtureServer, fetcher: Fetcher) -> None:
    server.route("/big", b"x" * 100_001)
    server.route("/exact", b"x" * 100_000)
    with pytest.raises(FetchError, match=r"/big: body of 100001 bytes is over the 100000 byte"):
        fetcher.fetch(server.url("/big"), allow_private=True)
    assert len(fetcher.fetch(server.url("/exact"), allow_private=True).body) == 100_000


def test_oversize_body_without_length_header_refused(
    server: FixtureServer, fetcher: Fetcher
) -> None:
    # No Content-Length at all: HTTP/1.0 reads to the end, so only the stream count stops it.
    server.route("/big", b"x" * 300_000, headers={"Content-Length": ""})
    with pytest.raises(FetchError, match=r"over the 100000 byte limit"):
        fetcher.fetch(server.url("/big"), allow_private=True)


def test_slow_server_times_out(server: FixtureServer, sleeps: list[float]) -> None:
    server.route("/slow", b"late", delay=1.0)
    settings = FetchSettings(timeout=0.2, retries=0)
    with (
        Fetcher(settings=settings, sleep=sleeps.append) as f,
        pytest.raises(FetchError, match=r"/slow: timed out after 0\.2s"),
    ):
        f.fetch(server.url("/slow"), allow_private=True)


def test_5xx_is_retried_then_succeeds(
    server: FixtureServer, fetcher: Fetcher, sleeps: list[float]
) -> None:
    server.route_sequence(
        "/flaky", [(503, b"busy", {}), (502, b"bad gateway", {}), (200, b"<rss/>", {})]
    )
    assert fetcher.fetch(server.url("/flaky"), allow_private=True).body == b"<rss/>"
    assert len(server.requests) == 3
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]  # exponential backoff


def test_429_retry_after_is_honoured_but_capped(
    server: FixtureServer, fetcher: Fetcher, sleeps: list[float]
) -> None:
    server.route("/limited", b"slow down", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(FetchError, match=r"/limited: HTTP 429"):
        fetcher.fetch(server.url("/limited"), allow_private=True)
    assert sleeps == [5.0, 5.0]
    assert len(server.requests) == 3


def test_404_is_not_retried(server: FixtureServer, fetcher: Fetcher, sleeps: list[float]) -> None:
    with pytest.raises(FetchError, match=r"/missing: HTTP 404 Not Found"):
        fetcher.fetch(server.url("/missing"), allow_private=True)
    assert (len(server.requests), sleeps) == (1, [])


def test_connection_refused_is_retried_then_fails(fetcher: Fetcher, sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{free_port()}/feed"
    with pytest.raises(FetchError, match=rf"^{url}: connection failed"):
        fetcher.fetch(url, allow_private=True)
    assert len(sleeps) == 2


def test_fetcher_is_shared_between_threads(server: FixtureServer, fetcher: Fetcher) -> None:
    for i in range(16):
        server.route(f"/f{i}", f"feed {i}".encode())
    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(
            pool.map(
                lambda i: fetcher.fetch(server.url(f"/f{i}"), allow_private=True).body, range(16)
            )
        )
    assert bodies == [f"feed {i}".encode() for i in range(16)]
