"""The connection pools of both runtimes, written once: each case runs on asyncio, trio and
blocking (the blocking pool driven from worker threads) against the simulator and tiny scripted
servers on the test's event loop."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio
import anyio.abc
import anyio.to_thread
import pytest
import trustme

from tradeforge_anyio import net as async_net
from tradeforge_proto.core.errors import (
    ConfigurationError,
    LocalProtocolError,
    RemoteProtocolError,
)
from tradeforge_proto.core.operations import HttpRequest, HttpResponse
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.http import HttpServerConnection
from tradeforge_proto.providers import topstepx
from tradeforge_proto.transport import (
    ConnectTimeout,
    Origin,
    ReadTimeout,
    SendProgress,
    TransportError,
)
from tradeforge_sim.server import SimServer
from tradeforge_sync import net as sync_net

pytestmark = pytest.mark.anyio

PING = HttpRequest("GET", "/api/Status/ping")
Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


class PoolFace:
    """A pool of one runtime, every call awaitable; counters read straight through."""

    def __init__(self, runtime: str, origin: Origin, **options: Any) -> None:
        self.blocking = runtime == "blocking"
        module: Any = sync_net if self.blocking else async_net
        self.pool = module.ConnectionPool(origin, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    async def send(
        self, request: HttpRequest, progress: SendProgress | None = None
    ) -> HttpResponse:
        if self.blocking:
            call = functools.partial(self.pool.send, request, progress=progress)
            response: HttpResponse = await anyio.to_thread.run_sync(call)
            return response
        return await self.pool.send(request, progress=progress)  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.blocking:
            await anyio.to_thread.run_sync(self.pool.close)
        else:
            await self.pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def pool_at(runtime: str, origin: Origin, **options: Any) -> PoolFace:
    return PoolFace(runtime, origin, **options)


def pool_of(runtime: str, sim: SimServer, **options: Any) -> PoolFace:
    return PoolFace(runtime, Origin.from_url(sim.api_url), **options)


@asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 running ``handler`` per connection; yields its port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield port
        tg.cancel_scope.cancel()


async def read_request(stream: anyio.abc.ByteStream, http: HttpServerConnection) -> bool:
    """Read until one whole request arrived (True) or the client closed (False)."""
    while True:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            data = b""
        if http.receive_data(data) is not None:
            return True
        if not data:
            return False


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


def default_ssl_context(runtime: str) -> ssl.SSLContext:
    module: Any = sync_net if runtime == "blocking" else async_net
    context: ssl.SSLContext = module.default_ssl_context()
    return context


@pytest.mark.parametrize("module", [async_net, sync_net])
def test_default_ssl_context_verifies(module: Any) -> None:
    context = module.default_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize("module", [async_net, sync_net])
@pytest.mark.parametrize(
    "options",
    [{"max_connections": 0}, {"read_timeout": 0}, {"connect_timeout": -1.0}],
)
def test_pool_settings_are_checked(module: Any, options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        module.ConnectionPool(Origin("http", "127.0.0.1", 80), **options)


async def test_ping_and_one_connection_for_sequential_requests(runtime: str) -> None:
    async with SimServer() as sim, pool_of(runtime, sim) as pool:
        response = await pool.send(PING)
        assert response.status == 200
        assert response.body == b"pong"
        for _ in range(100):
            assert (await pool.send(PING)).status == 200
        assert pool.connections_opened == 1
        assert pool.requests_sent == 101
        assert pool.open_connections == 1
        assert sim.connections == 1


async def test_post_with_a_json_body(runtime: str) -> None:
    async with SimServer() as sim, pool_of(runtime, sim) as pool:
        op = topstepx.login_key("trader", "tradeforge-sim-key")
        token = op.parse_response(await pool.send(op.request))
        assert isinstance(token, Secret)
        assert token.reveal()


async def test_an_invalid_request_leaves_the_connection_usable(runtime: str) -> None:
    async with SimServer() as sim, pool_of(runtime, sim) as pool:
        await pool.send(PING)
        progress = SendProgress()
        with pytest.raises(LocalProtocolError):
            await pool.send(HttpRequest("GET", "/has a space"), progress=progress)
        assert progress.request_sent is False
        assert (await pool.send(PING)).body == b"pong"
        assert pool.connections_opened == 1


async def test_connection_accepted_then_closed_counts_as_sent(runtime: str) -> None:
    # The server closes a fresh connection before answering; the request was already written, so
    # its fate is unknown and request_sent is True.
    async with SimServer() as sim, pool_of(runtime, sim) as pool:
        sim.faults.refuse_connections = 1
        progress = SendProgress()
        with pytest.raises(TransportError) as failed:
            await pool.send(PING, progress=progress)
        assert type(failed.value) is TransportError
        assert failed.value.request_sent is True
        assert progress.request_sent is True
        assert f"127.0.0.1:{sim.port}" in str(failed.value)
        assert (await pool.send(PING)).status == 200
        assert pool.connections_opened == 2


async def test_closed_port_means_nothing_was_sent(runtime: str) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.aclose()
    async with pool_at(runtime, Origin("http", "127.0.0.1", port)) as pool:
        progress = SendProgress()
        with pytest.raises(TransportError) as failed:
            await pool.send(PING, progress=progress)
        assert not isinstance(failed.value, ConnectTimeout)
        assert failed.value.request_sent is False
        assert progress.request_sent is False
        assert f"could not connect to 127.0.0.1:{port}" in str(failed.value)
        assert pool.connections_opened == 0
        assert pool.requests_sent == 0


async def test_a_slow_server_after_accept_is_a_read_timeout(runtime: str) -> None:
    # connect_delay applies after the TCP accept, so the connection opens and the answer is late.
    async with SimServer() as sim, pool_of(runtime, sim, read_timeout=0.2) as pool:
        sim.faults.connect_delay = 1.0
        with pytest.raises(ReadTimeout) as late:
            await pool.send(PING)
        assert late.value.request_sent is True
        assert "0.2 s" in str(late.value)


async def test_a_slow_answer_is_a_read_timeout_and_the_pool_recovers(runtime: str) -> None:
    async with SimServer() as sim, pool_of(runtime, sim, read_timeout=0.2) as pool:
        sim.faults.rest_delay = 1.0
        with pytest.raises(ReadTimeout) as late:
            await pool.send(PING)
        assert late.value.request_sent is True
        assert pool.open_connections == 0
        sim.faults.rest_delay = 0.0
        # Each new connection recovers; a loaded machine may still answer a read later than
        # 0.2 s, so the next one is tried until one answers (each a new connection).
        tries = 0
        while True:
            tries += 1
            try:
                answer = await pool.send(PING)
            except ReadTimeout:
                assert pool.open_connections == 0
                assert tries < 50, "no answer in time on 50 new connections"
            else:
                break
        assert answer.status == 200
        assert pool.connections_opened == tries + 1


async def test_a_silent_tls_handshake_is_a_connect_timeout(runtime: str) -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep(5)

    async with scripted_server(silent) as port:
        pool = pool_at(runtime, Origin("https", "127.0.0.1", port), connect_timeout=0.2)
        with pytest.raises(ConnectTimeout) as slow:
            await pool.send(PING)
        assert slow.value.request_sent is False
        assert pool.connections_opened == 0


async def test_server_closing_a_reused_connection_is_never_resent(runtime: str) -> None:
    requests: list[int] = []  # connection number of every request the server received

    async def drops_the_second(stream: anyio.abc.SocketStream) -> None:
        number = len(set(requests)) + 1
        async with stream:
            http = HttpServerConnection()
            while await read_request(stream, http):
                requests.append(number)
                if requests.count(1) == 2 and number == 1:
                    return  # closes as the request arrives: the classic keep-alive race
                await stream.send(http.send_response(200, (), b"ok"))

    async with (
        scripted_server(drops_the_second) as port,
        pool_at(runtime, Origin("http", "127.0.0.1", port)) as pool,
    ):
        assert (await pool.send(PING)).body == b"ok"
        progress = SendProgress()
        with pytest.raises(TransportError) as raced:
            await pool.send(PING, progress=progress)
        assert raced.value.request_sent is True
        assert progress.request_sent is True
        assert "keep-alive" in str(raced.value)
        assert requests == [1, 1]  # not sent again behind the caller's back
        assert (await pool.send(PING)).body == b"ok"
        assert requests == [1, 1, 2]
        assert pool.connections_opened == 2


async def test_an_idle_connection_the_server_closed_is_replaced_before_sending(
    runtime: str,
) -> None:
    closed = anyio.Event()

    async def answers_once(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            http = HttpServerConnection()
            if await read_request(stream, http):
                await stream.send(http.send_response(200, (), b"ok"))
        closed.set()

    async with (
        scripted_server(answers_once) as port,
        pool_at(runtime, Origin("http", "127.0.0.1", port)) as pool,
    ):
        assert (await pool.send(PING)).body == b"ok"
        await closed.wait()
        await anyio.sleep(0.05)  # let the server's FIN arrive
        assert (await pool.send(PING)).body == b"ok"
        assert pool.connections_opened == 2


async def test_idle_connections_expire(runtime: str) -> None:
    async with SimServer() as sim, pool_of(runtime, sim, keepalive_expiry=0.05) as pool:
        await pool.send(PING)
        await pool.send(PING)
        assert pool.connections_opened == 1
        await anyio.sleep(0.1)
        await pool.send(PING)
        assert pool.connections_opened == 2
        assert pool.open_connections == 1


async def test_a_malformed_response_propagates_and_drops_the_connection(runtime: str) -> None:
    async def garbage(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            if await read_request(stream, HttpServerConnection()):
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
                await anyio.sleep(1)

    async with (
        scripted_server(garbage) as port,
        pool_at(runtime, Origin("http", "127.0.0.1", port)) as pool,
    ):
        with pytest.raises(RemoteProtocolError):
            await pool.send(PING)
        assert pool.open_connections == 0


async def test_tls_with_a_trusted_certificate(runtime: str, authority: trustme.CA) -> None:
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with (
        SimServer(ssl_context=server_context(authority)) as sim,
        pool_of(runtime, sim, ssl_context=client_context) as pool,
    ):
        assert pool.origin.scheme == "https"
        assert (await pool.send(PING)).body == b"pong"
        assert (await pool.send(PING)).body == b"pong"
        assert pool.connections_opened == 1


async def test_tls_with_the_system_store_rejects_an_unknown_authority(
    runtime: str,
    authority: trustme.CA,
) -> None:
    async with (
        SimServer(ssl_context=server_context(authority)) as sim,
        pool_of(runtime, sim, ssl_context=default_ssl_context(runtime)) as pool,
    ):
        with pytest.raises(TransportError) as rejected:
            await pool.send(PING)
        assert rejected.value.request_sent is False
        assert "certificate" in str(rejected.value)
        assert pool.connections_opened == 0


async def test_send_after_aclose_is_refused(runtime: str) -> None:
    async with SimServer() as sim:
        pool = pool_of(runtime, sim)
        await pool.send(PING)
        await pool.close()
        assert pool.open_connections == 0
        with pytest.raises(LocalProtocolError, match="closed"):
            await pool.send(PING)


def test_the_runtimes_share_the_core_s_transport_types() -> None:
    for module in (async_net, sync_net):
        assert module.Origin is Origin
        assert module.TransportError is TransportError
        assert module.SendProgress is SendProgress
