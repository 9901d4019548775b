"""The blocking connection pool over real sockets, against the simulator and tiny servers."""

from __future__ import annotations

import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trustme

from tradeforge_proto.core.errors import (
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
)
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.http import HttpServerConnection
from tradeforge_proto.providers import topstepx
from tradeforge_sim.server import SimServer
from tradeforge_sync.net import (
    ConnectionPool,
    ConnectTimeout,
    Origin,
    ReadTimeout,
    SendProgress,
    TransportError,
    default_ssl_context,
)

from . import read_request, running_sim, scripted_server

PING = HttpRequest("GET", "/api/Status/ping")


def pool_for(sim: SimServer, **options: object) -> ConnectionPool:
    return ConnectionPool(Origin.from_url(sim.api_url), **options)  # type: ignore[arg-type]


class Interrupted(Exception):
    """Raised by a timer signal in the middle of a blocking call."""


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise Interrupted in this (main) thread after ``seconds``, as a signal handler would."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


needs_alarm = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")


# --- plain HTTP against the simulator ---


def test_ping_and_one_connection_for_sequential_requests() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        response = pool.send(PING)
        assert response.status == 200
        assert response.body == b"pong"
        for _ in range(50):
            assert pool.send(PING).status == 200
        assert pool.connections_opened == 1
        assert pool.requests_sent == 51
        assert pool.open_connections == 1
        assert sim.connections == 1


def test_threads_never_exceed_max_connections() -> None:
    with running_sim() as sim, pool_for(sim, max_connections=3) as pool:
        sim.faults.rest_delay = 0.02
        statuses: list[int] = []
        most_open = 0
        lock = threading.Lock()

        def one() -> None:
            nonlocal most_open
            for _ in range(3):
                response = pool.send(PING)
                with lock:
                    most_open = max(most_open, pool.open_connections)
                    statuses.append(response.status)

        threads = [threading.Thread(target=one) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert statuses == [200] * 30
        assert most_open <= 3
        assert pool.connections_opened <= 3
        assert sim.connections <= 3


def test_post_with_a_json_body() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        op = topstepx.login_key("trader", "tradeforge-sim-key")
        token = op.parse_response(pool.send(op.request))
        assert isinstance(token, Secret)
        assert token.reveal()


def test_an_invalid_request_leaves_the_connection_usable() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        pool.send(PING)
        progress = SendProgress()
        with pytest.raises(LocalProtocolError):
            pool.send(HttpRequest("GET", "/has a space"), progress=progress)
        assert progress.request_sent is False
        assert pool.send(PING).body == b"pong"
        assert pool.connections_opened == 1


# --- connection failures and timeouts ---


def test_connection_accepted_then_closed_counts_as_sent() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        sim.faults.refuse_connections = 1
        progress = SendProgress()
        with pytest.raises(TransportError) as failed:
            pool.send(PING, progress=progress)
        assert type(failed.value) is TransportError
        assert failed.value.request_sent is True
        assert progress.request_sent is True
        assert f"127.0.0.1:{sim.port}" in str(failed.value)
        assert pool.send(PING).status == 200
        assert pool.connections_opened == 2


def test_closed_port_means_nothing_was_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = int(listener.getsockname()[1])
    with ConnectionPool(Origin("http", "127.0.0.1", port)) as pool:
        progress = SendProgress()
        with pytest.raises(TransportError) as failed:
            pool.send(PING, progress=progress)
        assert not isinstance(failed.value, ConnectTimeout)
        assert failed.value.request_sent is False
        assert progress.request_sent is False
        assert f"could not connect to 127.0.0.1:{port}" in str(failed.value)
        assert pool.connections_opened == 0
        assert pool.requests_sent == 0


def test_a_slow_server_after_accept_is_a_read_timeout() -> None:
    with running_sim() as sim, pool_for(sim, read_timeout=0.2) as pool:
        sim.faults.connect_delay = 1.0
        with pytest.raises(ReadTimeout) as late:
            pool.send(PING)
        assert late.value.request_sent is True
        assert "0.2 s" in str(late.value)


def test_a_slow_answer_is_a_read_timeout_and_the_pool_recovers() -> None:
    with running_sim() as sim, pool_for(sim, read_timeout=0.2) as pool:
        sim.faults.rest_delay = 1.0
        with pytest.raises(ReadTimeout) as late:
            pool.send(PING)
        assert late.value.request_sent is True
        assert pool.open_connections == 0
        sim.faults.rest_delay = 0.0
        assert pool.send(PING).status == 200
        assert pool.connections_opened == 2


def test_a_silent_tls_handshake_is_a_connect_timeout() -> None:
    def silent(conn: socket.socket, stop: threading.Event) -> None:
        stop.wait(5)

    with scripted_server(silent) as port:
        pool = ConnectionPool(Origin("https", "127.0.0.1", port), connect_timeout=0.2)
        started = time.monotonic()
        with pytest.raises(ConnectTimeout) as slow:
            pool.send(PING)
        assert time.monotonic() - started < 2
        assert slow.value.request_sent is False
        assert "0.2 s" in str(slow.value)
        assert pool.connections_opened == 0


# --- keep-alive ---


def test_server_closing_a_reused_connection_is_never_resent() -> None:
    requests: list[int] = []  # connection number of every request the server received

    def drops_the_second(conn: socket.socket, stop: threading.Event) -> None:
        number = len(set(requests)) + 1
        http = HttpServerConnection()
        while read_request(conn, http):
            requests.append(number)
            if requests.count(1) == 2 and number == 1:
                return  # closes as the request arrives: the classic keep-alive race
            conn.sendall(http.send_response(200, (), b"ok"))

    with (
        scripted_server(drops_the_second) as port,
        ConnectionPool(Origin("http", "127.0.0.1", port)) as pool,
    ):
        assert pool.send(PING).body == b"ok"
        progress = SendProgress()
        with pytest.raises(TransportError) as raced:
            pool.send(PING, progress=progress)
        assert raced.value.request_sent is True
        assert progress.request_sent is True
        assert "keep-alive" in str(raced.value)
        assert requests == [1, 1]  # not sent again behind the caller's back
        assert pool.send(PING).body == b"ok"
        assert requests == [1, 1, 2]
        assert pool.connections_opened == 2


def test_an_idle_connection_the_server_closed_is_replaced_before_sending() -> None:
    closed = threading.Event()

    def answers_once(conn: socket.socket, stop: threading.Event) -> None:
        http = HttpServerConnection()
        if read_request(conn, http):
            conn.sendall(http.send_response(200, (), b"ok"))
        conn.close()
        closed.set()

    with (
        scripted_server(answers_once) as port,
        ConnectionPool(Origin("http", "127.0.0.1", port)) as pool,
    ):
        assert pool.send(PING).body == b"ok"
        assert closed.wait(5)
        time.sleep(0.05)  # let the server's FIN arrive
        assert pool.send(PING).body == b"ok"
        assert pool.connections_opened == 2


def test_idle_connections_expire() -> None:
    with running_sim() as sim, pool_for(sim, keepalive_expiry=0.05) as pool:
        pool.send(PING)
        pool.send(PING)
        assert pool.connections_opened == 1
        time.sleep(0.1)
        pool.send(PING)
        assert pool.connections_opened == 2
        assert pool.open_connections == 1


def test_a_malformed_response_propagates_and_drops_the_connection() -> None:
    def garbage(conn: socket.socket, stop: threading.Event) -> None:
        if read_request(conn, HttpServerConnection()):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
            stop.wait(1)

    with (
        scripted_server(garbage) as port,
        ConnectionPool(Origin("http", "127.0.0.1", port)) as pool,
    ):
        with pytest.raises(RemoteProtocolError):
            pool.send(PING)
        assert pool.open_connections == 0


# --- interruption (the blocking counterpart of cancellation) ---


@needs_alarm
def test_interrupted_after_sending_drops_the_connection_and_says_so() -> None:
    with running_sim() as sim, pool_for(sim) as pool:
        sim.faults.rest_delay = 1.0
        progress = SendProgress()
        with pytest.raises(Interrupted), interrupt_after(0.1):
            pool.send(PING, progress=progress)
        assert progress.request_sent is True
        assert pool.open_connections == 0
        sim.faults.rest_delay = 0.0
        assert pool.send(PING).status == 200
        assert pool.connections_opened == 2


def test_waiting_for_a_connection_blocks_and_sends_nothing_early() -> None:
    with running_sim() as sim, pool_for(sim, max_connections=1) as pool:
        sim.faults.rest_delay = 0.3
        first = threading.Thread(target=pool.send, args=(PING,))
        first.start()
        time.sleep(0.05)
        progress = SendProgress()
        assert pool.send(PING, progress=progress).status == 200  # waited for the only slot
        first.join(5)
        assert progress.request_sent is True
        assert pool.requests_sent == 2
        assert pool.connections_opened == 1


# --- TLS ---


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_tls_with_a_trusted_certificate(authority: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    with (
        running_sim(ssl_context=server_context(authority)) as sim,
        pool_for(sim, ssl_context=client_context) as pool,
    ):
        assert pool.origin.scheme == "https"
        assert pool.send(PING).body == b"pong"
        assert pool.send(PING).body == b"pong"
        assert pool.connections_opened == 1


def test_tls_with_the_system_store_rejects_an_unknown_authority(authority: trustme.CA) -> None:
    with (
        running_sim(ssl_context=server_context(authority)) as sim,
        pool_for(sim, ssl_context=default_ssl_context()) as pool,
    ):
        with pytest.raises(TransportError) as rejected:
            pool.send(PING)
        assert rejected.value.request_sent is False
        assert "certificate" in str(rejected.value)
        assert pool.connections_opened == 0


def test_default_ssl_context_verifies() -> None:
    context = default_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


# --- origins and lifecycle ---


def test_the_shared_classes_are_the_async_runtime_s() -> None:
    from tradeforge_anyio import net as async_net

    assert Origin is async_net.Origin
    assert TransportError is async_net.TransportError
    assert SendProgress is async_net.SendProgress


@pytest.mark.parametrize(
    ("url", "origin", "host_header"),
    [
        ("https://api.topstepx.com", Origin("https", "api.topstepx.com", 443), "api.topstepx.com"),
        ("http://127.0.0.1:5000/", Origin("http", "127.0.0.1", 5000), "127.0.0.1:5000"),
        ("http://[::1]:8080", Origin("http", "::1", 8080), "[::1]:8080"),
    ],
)
def test_origin_from_url(url: str, origin: Origin, host_header: str) -> None:
    parsed = Origin.from_url(url)
    assert parsed == origin
    assert parsed.host_header == host_header


@pytest.mark.parametrize(
    "options",
    [{"max_connections": 0}, {"read_timeout": 0}, {"connect_timeout": -1.0}],
)
def test_pool_settings_are_checked(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        ConnectionPool(Origin("http", "127.0.0.1", 80), **options)  # type: ignore[arg-type]


def test_send_after_close_is_refused() -> None:
    with running_sim() as sim:
        pool = pool_for(sim)
        pool.send(PING)
        pool.close()
        assert pool.open_connections == 0
        with pytest.raises(LocalProtocolError, match="closed"):
            pool.send(PING)
