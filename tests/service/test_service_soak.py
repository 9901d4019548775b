"""Soak of the web service: WebSocket clients of one fan-out through trading and upstream drops.

The service runs on uvicorn on a real port in front of the simulator, and ``CLIENTS`` WebSocket
clients of ``/ws/stream`` each follow MES (quotes, depth, trades) and every user channel of the
account; the fan-out holds these subscriptions once, on its single upstream stream. The test runs
``CYCLES`` cycles. In each, round trips are traded over REST for ``TRADE_SECONDS`` (and at least
``MIN_ROUND_TRIPS``): a market buy, a wait until every client has read that order Filled, a close
of the position, a wait until every client has read the closing order Filled too; trading thus
goes as fast as the slowest client reads, on any machine, and no backlog builds. Once every
client holds every fill REST knows of, the simulator drops both upstream hub connections
(``faults.drop_hub_after``) and the test waits until the fan-out's stream has reconnected and
resubscribed: on every client (lifecycle messages, ending with a RESUBSCRIBED per hub), on the
service (``/ready``) and in the simulator's hub sessions. The service is given a short
reconnect backoff (``create_app(stream_config=...)``, as ``test_soak`` gives its stream): the
default one doubles at each drop and only starts over after a minute connected.

Drops happen between trading bursts because the gateway does not replay: a user event sent while
the user hub is down is gone (a client reconciles with REST after RESUBSCRIBED). Dropping the user
hub needs a push on it, so a market order on the account's sibling triggers it: its balance change
reaches the upstream's all-accounts subscription, and no client, since they follow the other
account. The fault is switched off as soon as the simulator has closed both connections. A market
connection made before that drops again, which costs market data only; the user hub gets no push
while the fault is on (the sibling's position is closed after), so its new connection stays.
Rate limits are out of reach on both sides: the default budget allows only a handful of orders.

At the end, what a user of the service would notice: every order REST reports for the account was
seen Filled by every client and every fill REST reports was seen as a USER_TRADE by every client;
no client was closed or sent an ERROR; each got market data in every cycle and a RESUBSCRIBED of
all its subscriptions on each hub after every drop; and memory stayed flat from the end of the
first cycle (the warm-up: connections, caches and buffers in place) to the end, see
``MAX_GROWTH``. Nothing is timed: every wait is for a condition, under a generous hang guard.

The simulator, the service and the clients share one process and one event loop, and memory
tracing makes the simulator's market (every contract's, subscribed or not) several times dearer.
At ``RATE`` updates per second and contract, the market data and its path to the clients take
about a quarter of a core, so a third of a core (a machine loaded several times over) keeps up
with it; trading takes whatever is left.

About 20 s, on asyncio (the service's runtime).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
import pytest
from anyio.abc import TaskGroup
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.anyio.test_soak import STREAM, traced
from tests.anyio.test_soak import memory as soak_memory
from tradeforge_anyio.service import create_app
from tradeforge_anyio.service.fanout import Fanout
from tradeforge_proto.realtime.machine import StreamState
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .harness import served, simulator_client

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ACCOUNT = 20258288
SIBLING = 20258289  # the other account: its events reach only the all-accounts channel
RATE = 50  # market updates per second and contract (about 55 messages a second to each client)
CLIENTS = 5
CYCLES = 3
TRADE_SECONDS = 3.0
MIN_ROUND_TRIPS = 5  # per cycle, however slow the machine
WAIT = 30.0  # hang guard of every wait (never reached when things work)
HUBS = ("user", "market")
# Idle REST connections are let go before uvicorn's keep-alive timeout (5 s) can close one under
# a request.
LIMITS = httpx.Limits(keepalive_expiry=2.0)
TOKEN = "soak-s3rvice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MARKET_TYPES = frozenset({"QUOTE", "DEPTH", "TRADE"})
LIFECYCLE = frozenset({"CONNECTED", "DISCONNECTED", "RECONNECTING", "RESUBSCRIBED"})
# What the fan-out holds upstream for the clients, as the simulator's hub sessions record it.
USER_CHANNELS = frozenset(
    {("orders", ACCOUNT), ("positions", ACCOUNT), ("trades", ACCOUNT), ("accounts", None)}
)
MARKET_CHANNELS = frozenset({"quotes", "depth", "market_trades"})
# Memory growth allowed from the end of the first cycle to the end, leaving out the simulator
# (which keeps every order and fill it made) and this test (its id sets). Nothing else has a
# reason to grow: what moves is some tens of KiB of buffers and interpreter caches. Retaining
# each event the fan-out routes after the warm-up (about 2,000, some 400 B each once decoded)
# would exceed it three times over, and keeping each client's message texts more still.
MAX_GROWTH = 256 * 1024
# The whole process: the simulator keeps about 4 KiB per round trip, and there are a few hundred
# round trips at most after the warm-up.
MAX_TOTAL_GROWTH = 8 * 1024 * 1024


class Progress:
    """Wakes the test whenever a client reads a user or lifecycle message."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Return once ``condition()`` holds: checked at each such message, and at least every
        50 ms for the service's and the simulator's state, which change without one."""
        with anyio.move_on_after(WAIT):
            while not condition():
                self._event = anyio.Event()
                with anyio.move_on_after(0.05):
                    await self._event.wait()
            return
        pytest.fail(f"still waiting for {what} after {WAIT:g} s")


class Client:
    """One WebSocket client of the service and what it read, kept as ids and counts."""

    def __init__(self, ws: ClientConnection, progress: Progress) -> None:
        self.ws = ws
        self.progress = progress
        self.kinds: Counter[str] = Counter()
        self.market = 0
        self.filled: set[int] = set()  # orders of the account seen Filled
        self.fills: set[int] = set()
        self.last: dict[str, str] = {}  # the latest lifecycle message type of each hub
        self.disconnects: Counter[str] = Counter()
        self.resubscribed: Counter[str] = Counter()
        self.restored: dict[str, int] = {}  # subscriptions in each hub's latest RESUBSCRIBED
        self.errors: list[Any] = []
        self.closed: tuple[int | None, str | None] | None = None  # (code, reason) once closed

    async def read(self) -> None:
        try:
            async for text in self.ws:
                self.take(orjson.loads(text))
        except ConnectionClosed:
            pass
        finally:
            self.closed = (self.ws.close_code, self.ws.close_reason)
            self.progress.notify()

    def take(self, message: dict[str, Any]) -> None:
        kind, data = message["event_type"], message["data"]
        self.kinds[kind] += 1
        if kind in MARKET_TYPES:
            self.market += 1
            return
        if kind == "ORDER_UPDATE":
            if data["account_id"] == ACCOUNT and data["status"] == "FILLED":
                self.filled.add(data["id"])
        elif kind == "USER_TRADE":
            self.fills.add(data["id"])
        elif kind in LIFECYCLE:
            hub = data["hub"]
            self.last[hub] = kind
            if kind == "DISCONNECTED":
                self.disconnects[hub] += 1
            elif kind == "RESUBSCRIBED":
                self.resubscribed[hub] += 1
                self.restored[hub] = len(data["subscriptions"])
        elif kind == "ERROR":
            self.errors.append(data)
        self.progress.notify()


def subscription(contract: str) -> str:
    """A client's request: everything of ``contract`` and of the account."""
    market = {"provider_contract_ids": [contract], "data_types": sorted(MARKET_TYPES)}
    user_types = ["ORDER_UPDATE", "POSITION_UPDATE", "ACCOUNT_UPDATE", "USER_TRADE"]
    user = {"provider_account_ids": [ACCOUNT], "data_types": user_types}
    return json.dumps({"action": "subscribe", "market_data": market, "user_data": user})


def ok(response: httpx.Response, expected: int = 200) -> Any:
    assert response.status_code == expected, (response.status_code, response.text)
    return response.json() if response.content else None


class Soak:
    """The service under test, its clients, and the steps of a cycle."""

    def __init__(
        self, sim: SimServer, fanout: Fanout, http: httpx.AsyncClient, contract: str
    ) -> None:
        self.sim = sim
        self.fanout = fanout
        self.http = http
        self.contract = contract
        self.start = datetime.now(UTC) - timedelta(seconds=1)
        self.progress = Progress()
        self.clients: list[Client] = []

    async def everyone(self, check: Callable[[Client], bool], what: str) -> None:
        """Return once ``check`` holds for every client; fail at once if one was closed."""
        clients = self.clients

        def condition() -> bool:
            closed = [c.closed for c in clients if c.closed is not None]
            if closed:
                pytest.fail(f"closed by the service (code, reason) waiting for {what}: {closed}")
            return all(check(c) for c in clients)

        await self.progress.until(condition, what)

    async def connect(self, url: str, sockets: AsyncExitStack, readers: TaskGroup) -> None:
        """Open the clients, each subscribed to everything of the contract and the account."""
        request = subscription(self.contract)
        for _ in range(CLIENTS):
            ws = await sockets.enter_async_context(connect(url, additional_headers=AUTH))
            client = Client(ws, self.progress)
            self.clients.append(client)
            readers.start_soon(client.read)
            await ws.send(request)
        await self.everyone(lambda c: c.kinds["SUBSCRIBED_ACK"] == 1, "every acknowledgement")
        await self.progress.until(self.upstream_ready, "the upstream subscriptions")
        assert self.fanout.stream is not None
        assert self.fanout.stream.config == STREAM  # the service's own setting reached it

    def upstream_ready(self) -> bool:
        """The fan-out's stream is connected on both hubs, each the simulator's only session of
        its hub, holding what the clients asked for."""
        stream = self.fanout.stream
        if stream is None or any(stream.state(hub) is not StreamState.CONNECTED for hub in HUBS):
            return False
        sessions = list(self.sim.simulation.sessions)
        user = [s.subscriptions for s in sessions if s.hub == "user"]
        market = [s.subscriptions for s in sessions if s.hub == "market"]
        wanted = {(channel, self.contract) for channel in MARKET_CHANNELS}
        return user == [USER_CHANNELS] and len(market) == 1 and wanted <= market[0]

    async def healthy(self) -> None:
        """``/ready`` shows the stream connected on both hubs, with every client."""
        with anyio.move_on_after(WAIT):
            while True:
                stream = ok(await self.http.get("/ready"))["stream"]
                if stream["user_hub"] == stream["market_hub"] == "connected":
                    assert stream["clients"] == CLIENTS, stream
                    return
                await anyio.sleep(0.05)
        pytest.fail(f"/ready not connected on both hubs after {WAIT:g} s")

    async def buy(self, account: int) -> int:
        order = {"account_id": account, "contract_id": self.contract, "size": 1}
        order |= {"side": "BUY", "type": "MARKET"}
        return int(ok(await self.http.post("/orders", json=order), 201)["order_id"])

    async def close(self, account: int) -> None:
        body = {"account_id": account, "contract_id": self.contract}
        ok(await self.http.post("/positions/close", json=body), 204)

    async def filled(self, order_id: int) -> None:
        await self.everyone(lambda c: order_id in c.filled, f"order {order_id} Filled")

    async def filled_count(self, count: int) -> None:
        await self.everyone(lambda c: len(c.filled) >= count, f"{count} orders Filled")

    async def trade(self) -> int:
        """Round trips for ``TRADE_SECONDS``, each seen through by every client; how many."""
        done = 0
        # A deadline checked between round trips: cancelling one mid-request would leave it
        # uncertain.
        deadline = anyio.current_time() + TRADE_SECONDS
        while anyio.current_time() < deadline or done < MIN_ROUND_TRIPS:
            await self.filled(await self.buy(ACCOUNT))
            # The closing order's id is not returned: it is the one Filled order more.
            orders = len(self.clients[0].filled) + 1
            await self.close(ACCOUNT)
            await self.filled_count(orders)
            done += 1
        return done

    async def history(self) -> tuple[list[Any], list[Any]]:
        """The account's orders and fills since the start, as REST reports them."""
        window: dict[str, str | int] = {"account_id": ACCOUNT, "start": self.start.isoformat()}
        orders = ok(await self.http.get("/orders", params=window))["orders"]
        fills = ok(await self.http.get("/trades", params=window))["trades"]
        return orders, fills

    async def settle(self, market_before: dict[int, int]) -> list[int]:
        """Wait until every client has every fill REST knows of, and market data since the
        counts ``market_before``; the market messages each client got since."""
        fill_ids = {fill["id"] for fill in (await self.history())[1]}
        await self.everyone(lambda c: c.fills >= fill_ids, "every fill")
        await self.everyone(lambda c: c.market > market_before[id(c)], "market data")
        return [c.market - market_before[id(c)] for c in self.clients]

    async def drop_both_hubs(self) -> None:
        """Have the simulator drop both upstream connections; return once they are back in use."""
        await self.progress.until(self.upstream_ready, "the upstream subscriptions")
        sim, before = self.sim, {id(c): c.disconnects.copy() for c in self.clients}
        dropping = {s.id for s in sim.simulation.sessions}
        sim.faults.drop_hub_after = 1  # every connection drops after its next push
        await self.buy(SIBLING)  # the push on the user hub
        await self.progress.until(
            lambda: not dropping & {s.id for s in sim.simulation.sessions}, "both hubs dropped"
        )
        sim.faults.drop_hub_after = None
        await self.close(SIBLING)
        await self.everyone(
            lambda c: all(
                c.disconnects[h] > before[id(c)][h] and c.last[h] == "RESUBSCRIBED" for h in HUBS
            ),
            "both hubs resubscribed",
        )
        await self.progress.until(self.upstream_ready, "the upstream subscriptions")
        await self.healthy()


def memory(fanout: Fanout) -> tuple[int, int]:
    """Traced bytes now: in all, and allocated neither by the simulator nor by this test.

    The service's message texts of the last few thousand events (a bounded cache) are emptied
    first, as ``soak_memory`` empties the decoding caches. An allocation counts as the test's when
    one of its innermost frames is in this file (the clients decode with orjson, whose allocations
    have the caller's frame).
    """
    fanout._texts._texts.clear()
    return soak_memory(__file__)


async def test_service_soak_trading_market_data_and_reconnects() -> None:
    await traced(soak)


async def soak() -> None:
    async with SimServer(SimConfig(rate=RATE, budgets={})) as sim:
        factory = simulator_client(sim, budgets={})
        app = create_app(factory, token=TOKEN, stream_config=STREAM)
        async with (
            served(app) as base,
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=WAIT, limits=LIMITS) as http,
        ):
            mes = str(ok(await http.get("/contracts/by-symbol/MES"))["id"])
            run = Soak(sim, app.state.fanout, http, mes)
            clients = run.clients
            url = base.replace("http://", "ws://", 1) + "/ws/stream"
            async with AsyncExitStack() as sockets, anyio.create_task_group() as readers:
                await run.connect(url, sockets, readers)
                round_trips = 0
                market: list[list[int]] = []  # per cycle, the market messages of each client
                resubscribed: list[list[int]] = []  # after each cycle, per client, both hubs
                baseline = (0, 0)
                for cycle in range(CYCLES):
                    market_before = {id(c): c.market for c in clients}
                    round_trips += await run.trade()
                    # Nothing of this burst in flight when the user hub drops.
                    market.append(await run.settle(market_before))
                    await run.drop_both_hubs()
                    resubscribed.append([min(c.resubscribed[h] for h in HUBS) for c in clients])
                    if cycle == 0:  # the warm-up: connections, caches and buffers in place
                        baseline = memory(run.fanout)
                end = memory(run.fanout)
                orders, fills = await run.history()
                closed = [c.closed for c in clients]
                readers.cancel_scope.cancel()

    assert round_trips >= CYCLES * MIN_ROUND_TRIPS
    # Every order of the account: the buys and the closing orders, each seen Filled by everyone.
    assert len(orders) == 2 * round_trips
    assert all(order["status"] == "FILLED" for order in orders)
    assert len(fills) >= len(orders)
    for client in clients:
        assert {order["id"] for order in orders} <= client.filled
        assert {fill["id"] for fill in fills} <= client.fills
    # Nobody was cut off (1013 for a slow reader), sent an error, or told the stream stopped or
    # lost an event.
    assert closed == [None] * CLIENTS, closed
    for client in clients:
        assert client.errors == []
        assert client.kinds["STREAM_STOPPED"] == client.kinds["EVENT_DROPPED"] == 0
    # Market data in every cycle; all subscriptions of both hubs restored after every drop.
    assert all(count > 0 for counts in market for count in counts), market
    for cycle, counts in enumerate(resubscribed, start=1):
        assert all(count >= cycle for count in counts), resubscribed
    for client in clients:
        assert client.restored == {"user": len(USER_CHANNELS), "market": len(MARKET_CHANNELS)}
    # Memory: flat after the warm-up cycle.
    assert end[0] - baseline[0] < MAX_TOTAL_GROWTH, (baseline, end)
    assert end[1] - baseline[1] < MAX_GROWTH, (baseline, end)
