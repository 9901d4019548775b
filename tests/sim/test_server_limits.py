"""The simulator under hostile or broken clients: failures answered 500, time and size limits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import anyio.abc
import pytest

from tradeforge_proto.core import BarUnit, ProviderError, RateLimited, ServerError
from tradeforge_proto.core.jsoncodec import loads
from tradeforge_proto.core.models import Bar
from tradeforge_proto.core.operations import HttpRequest, Operation
from tradeforge_proto.providers import topstepx
from tradeforge_proto.signalr import (
    CompletionReceived,
    HandshakeCompleted,
    HubConnection,
    HubEvent,
    HubRole,
)
from tradeforge_proto.websocket import Accepted, TextReceived, WebSocketClient, WsEvent
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.contracts import expiry_of
from tradeforge_sim.rest import INTERNAL_ERROR_CODE
from tradeforge_sim.server import SimServer

from .netclient import Rest

pytestmark = pytest.mark.anyio
LOGIN = b"POST /api/Auth/loginKey HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def read_to_eof(stream: anyio.abc.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = bytearray()
    with anyio.fail_after(20):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return bytes(received)


async def trickle(stream: anyio.abc.SocketStream, data: bytes) -> None:
    """Send ``data`` a byte at a time, a little apart, until it is sent or the server hangs up."""
    for byte in data:
        try:
            await stream.send(bytes([byte]))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        await anyio.sleep(0.02)


async def served(sim: SimServer) -> None:
    """A client on its own connection logs in and reads its accounts."""
    rest = Rest(sim.api_url)
    try:
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        accounts = await rest.run(topstepx.search_accounts())
        assert len(accounts) == 2
    finally:
        await rest.aclose()


# --- failures inside the simulator -----------------------------------------------------------


async def test_a_failing_handler_answers_500_with_the_envelope_is_logged_and_serving_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)

        def broken(only_active: bool = True) -> list[object]:
            raise RuntimeError("the accounts table is on fire")

        monkeypatch.setattr(sim.simulation.exchange, "accounts", broken)
        request = topstepx.search_accounts().request
        with caplog.at_level(logging.ERROR, logger="tradeforge.sim"):
            response = await rest.send(request)
        assert response.status == 500
        assert loads(response.body) == {
            "success": False,
            "errorCode": INTERNAL_ERROR_CODE,
            "errorMessage": "An unexpected error occurred.",
        }
        (record,) = [r for r in caplog.records if r.name == "tradeforge.sim"]
        assert record.exc_info is not None
        assert "on fire" in str(record.exc_info[1])
        with pytest.raises(ServerError) as failed:
            await rest.run(topstepx.search_accounts())
        assert failed.value.status == 500
        await rest.aclose()
        monkeypatch.undo()
        await served(sim)


def bars_between(
    contract_id: str, unit: BarUnit, start: datetime, end: datetime
) -> Operation[list[Bar]]:
    return topstepx.retrieve_bars(contract_id, unit, 1, start=start, end=end, limit=5000)


async def test_an_expired_contract_keeps_hourly_and_coarser_history_and_no_quotes():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        expired = [c for c in sim.simulation.exchange.contracts() if not c.active]
        assert expired
        for contract in expired:
            assert (await rest.run(topstepx.get_contract(contract.id))).active is False
            expiry = expiry_of(contract.id)
            assert expiry is not None
            now = datetime.now(UTC)
            start = expiry - timedelta(days=30)
            for unit in (BarUnit.HOUR, BarUnit.DAY):
                bars = await rest.run(bars_between(contract.id, unit, start, now))
                assert bars
                assert max(bar.time for bar in bars) < expiry  # none after it stopped trading
            for unit in (BarUnit.SECOND, BarUnit.MINUTE, BarUnit.TICK):
                with pytest.raises(ProviderError) as refused:
                    await rest.run(bars_between(contract.id, unit, start, now))
                assert refused.value.code_name == "UnitInvalid"
                assert "not kept for expired" in (refused.value.message or "")
        session = sim.simulation.open_hub("/hubs/market", rest.token, sim._clock())
        assert not isinstance(session, int)
        error = sim.simulation.invoke(
            session, "SubscribeContractQuotes", (expired[0].id,), sim._clock()
        )
        assert error is not None
        assert "not trading" in error
        assert await rest.run(topstepx.search_accounts())
        await rest.aclose()


async def test_bars_asked_for_from_year_one_start_at_the_epoch():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        mes = next(c for c in sim.simulation.exchange.contracts() if c.active and "MES" in c.id)
        early = datetime(1, 1, 1, tzinfo=UTC)
        for unit in (BarUnit.MONTH, BarUnit.WEEK, BarUnit.DAY):
            bars = await rest.run(
                topstepx.retrieve_bars(mes.id, unit, 1, start=early, end=datetime.now(UTC))
            )
            assert bars
            assert min(bar.time for bar in bars) >= datetime(1970, 1, 1, tzinfo=UTC)
        await rest.aclose()
        await served(sim)


# --- time limits -----------------------------------------------------------------------------


def quick() -> SimServer:
    """A simulator with time limits short enough to watch them act, long enough for an honest
    client on a busy machine to get its requests in."""
    return SimServer(header_timeout=1.0, body_timeout=1.0, idle_timeout=1.0)


async def test_a_header_block_sent_a_byte_at_a_time_is_cut_off_while_others_are_served():
    async with quick() as sim:
        slow = await anyio.connect_tcp("127.0.0.1", sim.port)
        async with slow, anyio.create_task_group() as tg:
            await slow.send(LOGIN[:10])
            tg.start_soon(trickle, slow, LOGIN[10:] + b"X-Padding: " + b"a" * 10_000)
            await served(sim)  # meanwhile, on another connection
            answer = await read_to_eof(slow)
            tg.cancel_scope.cancel()
        assert answer.startswith(b"HTTP/1.1 408 ")
        await served(sim)


async def test_a_body_sent_a_byte_at_a_time_is_cut_off_while_others_are_served():
    async with quick() as sim:
        slow = await anyio.connect_tcp("127.0.0.1", sim.port)
        body = b'{"userName":"trader","apiKey":"' + b"k" * 5_000 + b'"}'
        async with slow, anyio.create_task_group() as tg:
            await slow.send(LOGIN + b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
            tg.start_soon(trickle, slow, body[5:])
            await served(sim)
            answer = await read_to_eof(slow)
            tg.cancel_scope.cancel()
        assert answer.startswith(b"HTTP/1.1 408 ")
        await served(sim)


async def test_a_connection_that_sends_nothing_or_idles_after_an_answer_is_closed_quietly():
    async with quick() as sim:
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as silent:
            assert await read_to_eof(silent) == b""
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as idle:
            await idle.send(b"GET /api/Status/ping HTTP/1.1\r\nHost: sim\r\n\r\n")
            answer = await read_to_eof(idle)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"pong")  # one answer, then the idle connection closed
        await served(sim)


class RawHub:
    """A market-hub client over a loopback socket, made of the core's client roles."""

    def __init__(self, stream: anyio.abc.SocketStream, port: int, token: str) -> None:
        self.stream = stream
        self.ws = WebSocketClient(f"127.0.0.1:{port}", f"/hubs/market?access_token={token}")
        self.hub = HubConnection(HubRole.CLIENT)
        self.ws_events: list[WsEvent] = []
        self.hub_events: list[HubEvent] = []

    async def open(self) -> None:
        """Upgrade, then send the SignalR handshake."""
        await self.stream.send(self.ws.data_to_send())
        await self.read_until(lambda: any(isinstance(e, Accepted) for e in self.ws_events))
        await self.flush()

    async def flush(self) -> None:
        """Send what the hub connection queued (the handshake, invocations)."""
        self.ws.send_text(self.hub.data_to_send())
        await self.stream.send(self.ws.data_to_send())

    def feed(self, data: bytes) -> None:
        for event in self.ws.receive_data(data):
            self.ws_events.append(event)
            if isinstance(event, TextReceived):
                self.hub_events.extend(self.hub.receive(event.data))

    async def read_until(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(20):
            while not condition():
                self.feed(await self.stream.receive())

    def completions(self) -> list[CompletionReceived]:
        return [e for e in self.hub_events if isinstance(e, CompletionReceived)]


async def test_a_hub_client_that_goes_silent_after_its_handshake_is_dropped():
    async with SimServer(hub_client_timeout=1.0) as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        await rest.aclose()
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as stream:
            client = RawHub(stream, sim.port, token)
            await client.open()  # then nothing, not even a ping
            client.feed(await read_to_eof(stream))
        assert client.hub_events == [HandshakeCompleted()]  # then dropped without a Close
        await served(sim)


async def test_a_failing_hub_method_completes_with_an_error_and_the_hub_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        token = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        mes = next(c.id for c in await rest.run(topstepx.available_contracts()) if "MES" in c.id)
        await rest.aclose()
        invoke = sim.simulation.invoke

        def broken(*args: object) -> str | None:
            raise RuntimeError("no quotes today")

        async with await anyio.connect_tcp("127.0.0.1", sim.port) as stream:
            client = RawHub(stream, sim.port, token)
            await client.open()
            await client.read_until(lambda: HandshakeCompleted() in client.hub_events)
            monkeypatch.setattr(sim.simulation, "invoke", broken)
            client.hub.invoke("SubscribeContractQuotes", mes)
            with caplog.at_level(logging.ERROR, logger="tradeforge.sim"):
                await client.flush()
                await client.read_until(lambda: len(client.completions()) == 1)
            monkeypatch.setattr(sim.simulation, "invoke", invoke)
            client.hub.invoke("SubscribeContractQuotes", mes)
            await client.flush()
            await client.read_until(lambda: len(client.completions()) == 2)
        failed, worked = client.completions()
        assert failed.error == (
            "An unexpected error occurred invoking 'SubscribeContractQuotes' on the server."
        )
        assert worked.error is None
        (record,) = [r for r in caplog.records if r.name == "tradeforge.sim"]
        assert record.exc_info is not None


# --- size limits -----------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_answered_413_and_a_header_block_over_it_431():
    async with SimServer(max_body=1024, max_header=2048) as sim:
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as declared:
            await declared.send(LOGIN + b"Content-Length: 1025\r\n\r\n")
            assert (await read_to_eof(declared)).startswith(b"HTTP/1.1 413 ")
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as chunked:
            chunk = b"400\r\n" + b"x" * 0x400 + b"\r\n"
            await chunked.send(LOGIN + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2)
            assert (await read_to_eof(chunked)).startswith(b"HTTP/1.1 413 ")
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as padded:
            await padded.send(LOGIN + b"X-Padding: " + b"a" * 4096 + b"\r\n\r\n")
            assert (await read_to_eof(padded)).startswith(b"HTTP/1.1 431 ")
        await served(sim)


async def test_the_size_and_time_limits_must_be_positive():
    with pytest.raises(ValueError, match="header_timeout"):
        SimServer(header_timeout=0)
    with pytest.raises(ValueError, match="write_timeout"):
        SimServer(write_timeout=-1.0)
    with pytest.raises(ValueError, match="hub_client_timeout"):
        SimServer(hub_client_timeout=0.0)
    with pytest.raises(ValueError, match="max_body"):
        SimServer(max_body=0)


# --- logins and tokens -----------------------------------------------------------------------


async def test_wrong_logins_with_made_up_bearer_strings_share_their_address_budget():
    from tradeforge_proto.core.operations import RateBucket
    from tradeforge_proto.limits import RateBudget
    from tradeforge_sim.simulation import SimConfig

    config = SimConfig(
        budgets={RateBucket.GENERAL: RateBudget(20, 60), RateBucket.HISTORY: RateBudget(5, 30)}
    )
    async with SimServer(config) as sim:
        holder = Rest(sim.api_url)
        await holder.login(DEFAULT_USERNAME, DEFAULT_API_KEY)  # one of the address's 20
        statuses: list[int] = []
        for attempt in range(40):
            rest = Rest(sim.api_url)  # a new connection, a new port, a new bearer string
            wrong = topstepx.login_key(DEFAULT_USERNAME, "wrong").request
            response = await rest.send(
                wrong.with_header("Authorization", f"Bearer made-up-{attempt}-{'x' * attempt}")
            )
            statuses.append(response.status)
            await rest.aclose()
        assert statuses == [200] * 19 + [429] * 21
        assert len(sim.simulation.budgets) == 1  # one address, whatever the bearer strings
        # The right key from the same address waits too; a client holding a token does not.
        latecomer = Rest(sim.api_url)
        with pytest.raises(RateLimited):
            await latecomer.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        await latecomer.aclose()
        accounts = await holder.run(topstepx.search_accounts())
        assert len(accounts) == 2
        assert len(sim.simulation.budgets) == 2  # and the token, with its own budget
        await holder.aclose()


async def test_expired_tokens_are_dropped_as_new_ones_are_issued():
    async with SimServer() as sim:
        rest = Rest(sim.api_url)
        old = [await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY) for _ in range(5)]
        assert len(sim.simulation.tokens) == 5
        sim.expire_tokens()
        assert len(sim.simulation.tokens) == 5  # nothing issued yet, nothing pruned
        fresh = await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY)
        assert len(sim.simulation.tokens) == 1
        for token in old:
            response = await rest.send(
                topstepx.search_accounts().request.with_header("Authorization", f"Bearer {token}")
            )
            assert response.status == 401
        assert rest.token == fresh
        accounts = await rest.run(topstepx.search_accounts())
        assert len(accounts) == 2
        await rest.aclose()


async def test_the_token_table_is_capped_and_the_oldest_token_makes_room():
    from tradeforge_sim.simulation import SimConfig

    async with SimServer(SimConfig(max_tokens=3)) as sim:
        rest = Rest(sim.api_url)
        issued = [await rest.login(DEFAULT_USERNAME, DEFAULT_API_KEY) for _ in range(5)]
        assert len(sim.simulation.tokens) == 3
        for token, status in zip(issued, (401, 401, 200, 200, 200), strict=True):
            request = HttpRequest(
                "POST",
                "/api/Account/search",
                (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
                b'{"onlyActiveAccounts":true}',
            )
            assert (await rest.send(request)).status == status
        await rest.aclose()


async def test_a_malformed_request_behind_a_good_one_gets_its_400_after_the_first_answer():
    async with SimServer() as sim:
        async with await anyio.connect_tcp("127.0.0.1", sim.port) as pipelined:
            ping = b"GET /api/Status/ping HTTP/1.1\r\nHost: sim\r\n\r\n"
            await pipelined.send(ping + b"NOT HTTP AT ALL\r\n\r\n")
            answer = await read_to_eof(pipelined)
        first, _, second = answer.partition(b"pong")
        assert first.startswith(b"HTTP/1.1 200 ")
        assert second.startswith(b"HTTP/1.1 400 ")
        await served(sim)
