"""A deterministic in-memory world for a ``StreamSession``: a fake gateway, a network, a runtime.

- ``Gateway`` holds accounts, orders, fills and positions (a small model: a market order goes
  Pending -> Filled with a fill, a position change and a balance change), pushes them on every
  user-hub connection that subscribed, in the gateway's order and shape (``{"action", "data"}``
  envelopes, camelCase fields, nulls left out), and answers the REST reads a recovery hands out
  (explicit nulls, the ``success`` envelope).
- Each hub connection is one ``HubServer`` of ``stream_harness`` (only its public surface), routed
  by the path of the WebSocket upgrade the client writes (``/hubs/user``, ``/hubs/market``).
- ``World`` plays the runtime exactly as ``tradeforge_anyio.stream`` does for each started link
  (actions, writes, ``feed`` while it feeds, ``check_reading`` then one bounded read,
  ``handle_timer``), with an injected clock, and a reader whose pace the test sets (``read``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tradeforge_proto.core.events import (
    AccountUpdated,
    FillReceived,
    OrderUpdated,
    PositionUpdated,
    StreamEvent,
)
from tradeforge_proto.core.jsoncodec import dumps
from tradeforge_proto.core.models import Account, Fill, Order, Position
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_proto.providers.topstepx.wire import from_wire, parse_timestamp
from tradeforge_proto.realtime.machine import (
    CloseConnection,
    FetchToken,
    OpenConnection,
    StreamConfig,
)
from tradeforge_proto.realtime.session import HubLink, RunOperation, StreamSession

from .stream_harness import HubServer

T0 = 1_700_000_000.0
API = "http://sim.test"
READ_SIZE = 65_536  # what one read of the runtime takes at most, as tradeforge_anyio does
ACCOUNT = 7001
OTHER_ACCOUNT = 7002
ES = "CON.F.US.EP.Z25"
NQ = "CON.F.US.ENQ.Z25"
CONTRACTS = {
    ES: {"symbolId": "F.US.EP", "pointValue": Decimal(50)},
    NQ: {"symbolId": "F.US.ENQ", "pointValue": Decimal(20)},
}
FEE = Decimal("1.40")
BUY, SELL = 0, 1

# Order statuses and types on the wire.
OPEN, FILLED, CANCELLED, PENDING = 1, 2, 3, 6
LIMIT, MARKET = 1, 2

_USER_TARGETS = {
    "GatewayUserOrder": "Orders",
    "GatewayUserTrade": "Trades",
    "GatewayUserPosition": "Positions",
    "GatewayUserAccount": "Accounts",
}
_MARKET_TARGETS = {
    "GatewayQuote": "ContractQuotes",
    "GatewayTrade": "ContractTrades",
    "GatewayDepth": "ContractMarketDepth",
}


def iso(ts: float) -> str:
    """A UNIX time as the gateway writes it (ISO-8601, microseconds, UTC offset)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def stream_shape(entity: dict[str, Any]) -> dict[str, Any]:
    """The hub's shape of an entity: null fields left out."""
    return {k: v for k, v in entity.items() if v is not None}


def user_subscriptions(account_id: int = ACCOUNT) -> list[Subscription]:
    """Every user channel of one account."""
    return Subscription.user(account_id)


# --- the gateway's side of one hub connection ----------------------------------------------


class Endpoint:
    """One hub connection as the gateway sees it: a ``HubServer`` and what it subscribed to."""

    def __init__(self, gateway: Gateway, hub: str, server: HubServer, token: str | None) -> None:
        self.gateway = gateway
        self.hub = hub
        self.server = server
        self.token = token
        self.subscribed: set[tuple[str, Any]] = set()  # ("Orders", 7001), ("Accounts", None)
        self.hold_acks = False  # leave invocations unanswered until ``release_acks``
        self.unacked: list[Any] = []
        self.refused: list[tuple[str, tuple[Any, ...]]] = []
        self.closed = False
        self.last_ping = gateway.clock()
        self._seen = 0
        server.auto_ack = False  # the gateway decides, invocation by invocation

    def receive(self, data: bytes) -> None:
        self.server.receive(data)
        self.process()

    def process(self) -> None:
        """Answer the client's new invocations: acknowledge, refuse, or hold them."""
        invocations = self.server.invocations
        while self._seen < len(invocations):
            invocation = invocations[self._seen]
            self._seen += 1
            if invocation.invocation_id is None:
                continue
            if self.hold_acks:
                self.unacked.append(invocation)
            else:
                self._answer(invocation)

    def release_acks(self, count: int | None = None) -> None:
        """Answer the held invocations (the first ``count`` of them, holding the next ones)."""
        if count is None:
            self.hold_acks = False
            count = len(self.unacked)
        waiting, self.unacked = self.unacked[:count], self.unacked[count:]
        for invocation in waiting:
            self._answer(invocation)

    def _answer(self, invocation: Any) -> None:
        target, args = invocation.target, tuple(invocation.arguments)
        reason = self.gateway.refuse.get((target, args)) or self.gateway.refuse.get((target, None))
        if reason is not None:
            self.server.refuse[target] = reason
            self.refused.append((target, args))
        else:
            self.server.refuse.pop(target, None)
        if self.open:
            self.server.ack(invocation)
        if reason is not None:
            return
        if target.startswith("Subscribe"):
            self.subscribed.add((target[len("Subscribe") :], args[0] if args else None))
        elif target.startswith("Unsubscribe"):
            self.subscribed.discard((target[len("Unsubscribe") :], args[0] if args else None))

    @property
    def open(self) -> bool:
        return not self.closed and self.server.open

    def push(self, target: str, *arguments: Any) -> None:
        if self.open:
            self.server.send(target, *arguments)

    def ping(self) -> None:
        self.last_ping = self.gateway.clock()
        if self.open:
            self.server.ping()

    def invocation_targets(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(i.target, tuple(i.arguments)) for i in self.server.invocations]


# --- the fake gateway ----------------------------------------------------------------------


class Gateway:
    """Accounts, orders, fills and positions; pushes on the user hub; answers REST reads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.accounts: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: dict[int, dict[str, Any]] = {}
        self.positions: dict[tuple[int, str], dict[str, Any]] = {}
        self.endpoints: list[Endpoint] = []
        self.refuse: dict[tuple[str, Any], str] = {}  # (target, args or None) -> error
        self.pushed: list[tuple[str, dict[str, Any]]] = []  # every user push, in order
        self._next_order = 9_000
        self._next_trade = 50_000
        self._next_position = 600
        self._last_stamp = 0.0
        self.add_account(ACCOUNT, "50KTC-V2-1", Decimal(50_000))

    # --- time ---

    def _stamp(self) -> str:
        # Strictly increasing within one moment, as the gateway's clock is.
        ts = max(self.clock(), self._last_stamp + 1e-5)
        self._last_stamp = ts
        return iso(ts)

    # --- model ---

    def add_account(self, account_id: int, name: str, balance: Decimal) -> None:
        self.accounts[account_id] = {
            "id": account_id,
            "name": name,
            "balance": balance,
            "canTrade": True,
            "isVisible": True,
            "simulated": True,
        }

    def _new_order(
        self,
        account_id: int,
        contract_id: str,
        side: int,
        size: int,
        *,
        kind: int,
        status: int,
        limit_price: Decimal | None = None,
    ) -> dict[str, Any]:
        self._next_order += 1
        stamp = self._stamp()
        order = {
            "id": self._next_order,
            "accountId": account_id,
            "contractId": contract_id,
            "symbolId": CONTRACTS[contract_id]["symbolId"],
            "creationTimestamp": stamp,
            "updateTimestamp": stamp,
            "status": status,
            "type": kind,
            "side": side,
            "size": size,
            "limitPrice": limit_price,
            "stopPrice": None,
            "fillVolume": 0,
            "filledPrice": None,
            "customTag": None,
        }
        self.orders[order["id"]] = order
        return order

    def place_market(
        self, account_id: int, contract_id: str, side: int, size: int, price: Decimal
    ) -> int:
        """A market order, filled at once: Order (pending), Trade, Order (filled), Position,
        Account, as the gateway pushes them."""
        order = self._new_order(account_id, contract_id, side, size, kind=MARKET, status=PENDING)
        self.push_order(order)
        self._fill(order, price)
        return int(order["id"])

    def place_limit(
        self, account_id: int, contract_id: str, side: int, size: int, price: Decimal
    ) -> int:
        """A limit order left working (Open)."""
        order = self._new_order(
            account_id, contract_id, side, size, kind=LIMIT, status=OPEN, limit_price=price
        )
        self.push_order(order)
        return int(order["id"])

    def fill(self, order_id: int, price: Decimal | None = None) -> None:
        """A working order fills (at its limit price unless told)."""
        order = self.orders[order_id]
        assert order["status"] == OPEN
        self._fill(order, price if price is not None else order["limitPrice"])

    def cancel(self, order_id: int) -> None:
        order = self.orders[order_id]
        assert order["status"] == OPEN
        order.update(status=CANCELLED, updateTimestamp=self._stamp())
        self.push_order(order)

    def modify(self, order_id: int, price: Decimal) -> None:
        order = self.orders[order_id]
        assert order["status"] == OPEN
        order.update(limitPrice=price, updateTimestamp=self._stamp())
        self.push_order(order)

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        account_id, contract_id = order["accountId"], order["contractId"]
        side, size = order["side"], order["size"]
        pnl = self._move_position(account_id, contract_id, side, size, price)
        self._next_trade += 1
        fees = FEE * size
        trade = {
            "id": self._next_trade,
            "accountId": account_id,
            "contractId": contract_id,
            "creationTimestamp": self._stamp(),
            "price": price,
            "profitAndLoss": pnl,
            "fees": fees,
            "side": side,
            "size": size,
            "voided": False,
            "orderId": order["id"],
        }
        self.trades[trade["id"]] = trade
        self.push_user("GatewayUserTrade", trade, action=0)
        order.update(
            status=FILLED, fillVolume=size, filledPrice=price, updateTimestamp=self._stamp()
        )
        self.push_order(order)
        self.push_user("GatewayUserPosition", self.positions[(account_id, contract_id)])
        account = self.accounts[account_id]
        account["balance"] = account["balance"] - fees + (pnl or 0)
        self.push_user("GatewayUserAccount", account)

    def _move_position(
        self, account_id: int, contract_id: str, side: int, size: int, price: Decimal
    ) -> Decimal | None:
        """Apply a fill to the net position; the realized P&L when it reduces one."""
        key = (account_id, contract_id)
        position = self.positions.get(key)
        signed = size if side == BUY else -size
        net = 0 if position is None else position["size"] * (1 if position["type"] == 1 else -1)
        average = Decimal(0) if position is None else position["averagePrice"]
        pnl: Decimal | None = None
        if net == 0 or (net > 0) == (signed > 0):
            total = abs(net) + size
            average = ((average * abs(net) + price * size) / total).quantize(Decimal("0.01"))
            new_net = net + signed
        else:
            closed = min(abs(net), size)
            direction = 1 if net > 0 else -1
            pnl = (price - average) * closed * direction * CONTRACTS[contract_id]["pointValue"]
            new_net = net + signed
            if new_net == 0:
                average = Decimal(0)
            elif (new_net > 0) != (net > 0):
                average = price  # flipped: the rest opens at this price
        if position is None:
            self._next_position += 1
            position = {
                "id": self._next_position,
                "accountId": account_id,
                "contractId": contract_id,
                "creationTimestamp": self._stamp(),
            }
            self.positions[key] = position
        elif net == 0:
            position["creationTimestamp"] = self._stamp()
        position.update(
            type=1 if new_net > 0 else 2 if new_net < 0 else 0,
            size=abs(new_net),
            averagePrice=average,
        )
        return pnl

    # --- hub pushes ---

    def push_order(self, order: dict[str, Any]) -> None:
        self.push_user("GatewayUserOrder", order)

    def push_user(self, target: str, entity: dict[str, Any], *, action: int = 1) -> None:
        """A user event on every connection that subscribed to its channel."""
        data = stream_shape(entity)
        if target == "GatewayUserPosition" and data.get("size") == 0:
            data = {k: v for k, v in data.items() if k not in ("type", "averagePrice")}
        self.pushed.append((target, data))
        method = _USER_TARGETS[target]
        key = None if method == "Accounts" else data["accountId"]
        for endpoint in self.endpoints:
            if endpoint.hub == "user" and (method, key) in endpoint.subscribed:
                endpoint.push(target, {"action": action, "data": data})

    def push_market(self, target: str, contract_id: str, data: Any) -> None:
        method = _MARKET_TARGETS[target]
        for endpoint in self.endpoints:
            if endpoint.hub == "market" and (method, contract_id) in endpoint.subscribed:
                endpoint.push(target, contract_id, data)

    def market_trade(
        self, contract_id: str, price: Decimal, volume: int = 1, aggressor: int = 0
    ) -> None:
        print_ = {
            "symbolId": CONTRACTS[contract_id]["symbolId"],
            "price": price,
            "timestamp": self._stamp(),
            "type": aggressor,
            "volume": volume,
        }
        self.push_market("GatewayTrade", contract_id, [print_])

    def depth(self, contract_id: str, entries: Iterable[tuple[int, Decimal, int]]) -> None:
        stamp = self._stamp()
        data = [
            {"timestamp": stamp, "type": kind, "price": price, "volume": volume}
            for kind, price, volume in entries
        ]
        self.push_market("GatewayDepth", contract_id, data)

    def quote(self, contract_id: str, **fields: Any) -> None:
        data = {"symbol": CONTRACTS[contract_id]["symbolId"], "timestamp": self._stamp(), **fields}
        self.push_market("GatewayQuote", contract_id, data)

    # --- REST ---

    def answer(self, path: str, body: bytes) -> bytes:
        """The JSON answer of a read; raises KeyError for an endpoint it does not serve."""
        request = json.loads(body) if body else {}
        account_id = request.get("accountId")
        start = request.get("startTimestamp")
        since = None if start is None else parse_timestamp(start)

        def created_after(entity: dict[str, Any]) -> bool:
            return since is None or parse_timestamp(entity["creationTimestamp"]) >= since

        if path == "/api/Account/search":
            only_active = request["onlyActiveAccounts"]
            found = [a for a in self.accounts.values() if a["canTrade"] or not only_active]
            payload: dict[str, Any] = {"accounts": found}
        elif path == "/api/Order/search":
            payload = {
                "orders": [
                    o
                    for o in self.orders.values()
                    if o["accountId"] == account_id and created_after(o)
                ]
            }
        elif path == "/api/Order/searchOpen":
            payload = {
                "orders": [
                    o
                    for o in self.orders.values()
                    if o["accountId"] == account_id and o["status"] == OPEN
                ]
            }
        elif path == "/api/Trade/search":
            payload = {
                "trades": [
                    t
                    for t in self.trades.values()
                    if t["accountId"] == account_id and created_after(t)
                ]
            }
        elif path == "/api/Position/searchOpen":
            payload = {
                "positions": [
                    p
                    for p in self.positions.values()
                    if p["accountId"] == account_id and p["size"] > 0
                ]
            }
        else:
            raise KeyError(path)
        return dumps({**payload, "success": True, "errorCode": 0, "errorMessage": None})

    # --- expectations, as generic models ---

    def expected_orders(self) -> dict[int, Order]:
        return {i: from_wire(Order, o) for i, o in self.orders.items()}

    def expected_fills(self) -> dict[int, Fill]:
        return {i: from_wire(Fill, t) for i, t in self.trades.items()}

    def expected_positions(self) -> dict[tuple[int, str], Position | None]:
        """Open positions as models; flat ones as None."""
        return {
            key: from_wire(Position, p) if p["size"] else None for key, p in self.positions.items()
        }

    def expected_accounts(self) -> dict[int, Account]:
        return {i: from_wire(Account, a) for i, a in self.accounts.items()}


# --- the network and the runtime -----------------------------------------------------------


class Socket:
    """One TCP connection of the in-memory network; routed on the upgrade's path."""

    def __init__(self, world: World, link: HubLink) -> None:
        self.world = world
        self.link_name = link.name
        self.endpoint: Endpoint | None = None
        self.incoming = b""  # bytes the server sent that the client has not read yet
        self.open = True
        self.writes: list[tuple[float, int]] = []  # (when, bytes) the client wrote
        self.path: str | None = None

    def write(self, data: bytes) -> None:
        assert self.open, "wrote to a closed socket"
        self.writes.append((self.world.now, len(data)))
        if self.endpoint is None:
            self._route(data)
        assert self.endpoint is not None
        self.endpoint.receive(data)

    def _route(self, data: bytes) -> None:
        """The first bytes are the WebSocket upgrade: its path says which hub serves it."""
        line = data.split(b"\r\n", 1)[0].decode("ascii")
        method, target, _ = line.split(" ")
        assert method == "GET", line
        path, _, query = target.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        self.path = path
        hub = {"/hubs/user": "user", "/hubs/market": "market"}[path]
        world = self.world
        rejections = world.reject_upgrades.get(hub)
        status = rejections.pop(0) if rejections else None
        server = HubServer(reject_status=status) if status is not None else HubServer()
        endpoint = Endpoint(world.gateway, hub, server, params.get("access_token"))
        endpoint.hold_acks = world.hold_acks.get(hub, False)
        world.gateway.endpoints.append(endpoint)
        world.endpoints[hub].append(endpoint)
        self.endpoint = endpoint

    def pull(self) -> None:
        """What the server wrote travels to the client's side."""
        if self.endpoint is not None:
            self.incoming += self.endpoint.server.ws.data_to_send()

    def close(self) -> None:
        """Our side closes (after the last writes)."""
        self.open = False
        if self.endpoint is not None:
            self.endpoint.closed = True


class World:
    """A session, its runtime and the fake gateway behind it, on one injected clock."""

    def __init__(
        self,
        *,
        config: StreamConfig | None = None,
        max_events: int = 10_000,
        books: bool = False,
        seed: int = 0,
        server_keepalive: float | None = 15.0,
        token_lifetime: float = 86_400.0,
    ) -> None:
        self.now = T0
        self.provider = TopStepX.for_simulator(API, "u", "k")
        self.config = config or StreamConfig()
        self.session = StreamSession(
            self.provider,
            config=self.config,
            max_events=max_events,
            books=books,
            rng=random.Random(seed),
        )
        self.gateway = Gateway(lambda: self.now)
        self.sockets: dict[str, Socket | None] = dict.fromkeys(self.session.links)
        self.endpoints: dict[str, list[Endpoint]] = {name: [] for name in self.session.links}
        self.delivered: list[StreamEvent] = []  # what the reader took, in order
        self.server_keepalive = server_keepalive
        self.token_lifetime = token_lifetime
        self.tokens = 0
        self.fail_tokens = 0
        self.refuse_connections: dict[str, int] = {}  # hub -> connects refused (socket level)
        self.reject_upgrades: dict[str, list[int]] = {}  # hub -> upgrade statuses
        self.hold_acks: dict[str, bool] = {}
        self.actions_seen: list[tuple[str, Any]] = []
        # REST reads: answered at once ("auto") or kept until ``answer_reads`` ("manual");
        # ``rest_failures`` next reads fail; ``snapshot`` answers with the state when the read
        # was started (the answer travels late) instead of when it is delivered.
        self.rest_mode = "auto"
        self.rest_failures = 0
        self.rest_failure_status = 503
        self.snapshot = False
        self.reads: list[tuple[str, RunOperation, bytes | None]] = []  # waiting reads
        self.reads_run: list[RunOperation] = []
        self.latency = 0.0
        self._latent: list[tuple[float, tuple[str, RunOperation, bytes | None]]] = []
        self._server_eof: set[str] = set()  # hubs whose server ended the TCP connection
        self.deaf: set[str] = set()  # hubs whose server's bytes never reach the client
        self.read_size = READ_SIZE  # the most one read of the runtime takes
        self.max_queued = 0

    # --- what tests do ---

    @property
    def links(self) -> dict[str, HubLink]:
        return self.session.links

    def link(self, name: str) -> HubLink:
        return self.session.links[name]

    def subscribe(self, *subscriptions: Subscription, settle: bool = True) -> None:
        for sub in subscriptions:
            link = self.session.subscribe(sub, self.now)
            link.start(self.now)
        if settle:
            self.settle()

    def unsubscribe(self, *subscriptions: Subscription) -> None:
        for sub in subscriptions:
            self.session.unsubscribe(sub, self.now)
        self.settle()

    def server(self, hub: str) -> Endpoint | None:
        """The gateway's side of the hub's current connection."""
        socket = self.sockets[hub]
        return None if socket is None else socket.endpoint

    def read(self, count: int | None = None) -> list[StreamEvent]:
        """The reader takes up to ``count`` events (all that wait when None)."""
        taken: list[StreamEvent] = []
        while count is None or len(taken) < count:
            event = self.session.get()
            if event is None:
                break
            taken.append(event)
            self.delivered.append(event)
            self.settle()  # the runtime wakes the paused hubs after a get
        return taken

    def drain(self, rounds: int = 1_000) -> list[StreamEvent]:
        """Read until nothing is left (the hubs refill the queue as room is made)."""
        taken: list[StreamEvent] = []
        for _ in range(rounds):
            got = self.read()
            taken += got
            if not got:
                return taken
        raise AssertionError("the queue never emptied")

    def drop(self, hub: str) -> None:
        """The network drops the hub's connection."""
        socket = self.sockets[hub]
        if socket is None:
            return
        socket.close()
        self.sockets[hub] = None
        self.link(hub).connection_lost(self.now, OSError("connection reset by peer"))
        self.settle()

    def server_closes(self, hub: str) -> None:
        """The server ends the TCP connection (the client reads end of file)."""
        socket = self.sockets[hub]
        if socket is not None and socket.endpoint is not None:
            socket.endpoint.closed = True
            self._server_eof.add(hub)
            self.settle()

    def advance(self, seconds: float) -> None:
        """Let time pass, firing every deadline (and the servers' keep-alive pings) on the way."""
        end = self.now + seconds
        for _ in range(100_000):
            due = self._next_due()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            self._fire()
        else:
            raise AssertionError("deadlines never stopped firing")
        self.now = end
        self._fire()

    def _next_due(self) -> float | None:
        times = [d for link in self._timed() if (d := link.next_deadline()) is not None]
        if self.server_keepalive is not None:
            for hub, socket in self.sockets.items():
                endpoint = None if socket is None else socket.endpoint
                if endpoint is not None and endpoint.open and hub not in self._server_eof:
                    times.append(endpoint.last_ping + self.server_keepalive)
        if self.rest_mode == "latency":
            times += [due for due, _ in self._latent]
        return min(times) if times else None

    def _fire(self) -> None:
        now = self.now
        if self.server_keepalive is not None:
            for socket in self.sockets.values():
                endpoint = None if socket is None else socket.endpoint
                if (
                    endpoint is not None
                    and endpoint.open
                    and endpoint.last_ping + self.server_keepalive <= now
                ):
                    endpoint.ping()
        if self.rest_mode == "latency":
            due = [item for item in self._latent if item[0] <= now]
            self._latent = [item for item in self._latent if item[0] > now]
            for _, read in due:
                self._deliver_read(*read)
        for link in self._timed():
            link.handle_timer(now)
        self.settle()

    # --- REST reads ---

    def set_latency(self, seconds: float) -> None:
        """REST answers arrive ``seconds`` after the read started."""
        self.rest_mode = "latency"
        self.latency = seconds

    def answer_reads(self, count: int | None = None, *, fail: bool = False) -> int:
        """Answer (or fail) waiting reads in the order they were started."""
        answered = 0
        while self.reads and (count is None or answered < count):
            name, action, snapshot = self.reads.pop(0)
            if fail:
                self._fail_read(name, action)
            else:
                self._deliver_read(name, action, snapshot)
            answered += 1
        self.settle()
        return answered

    def _start_read(self, name: str, action: RunOperation) -> None:
        self.reads_run.append(action)
        request = action.operation.request
        assert request.method == "POST", request
        assert request.path.startswith("/api/"), request
        if self.rest_failures:
            self.rest_failures -= 1
            self._fail_read(name, action)
            return
        snapshot = self._body_for(action) if self.snapshot else None
        if self.rest_mode == "auto":
            self._deliver_read(name, action, snapshot)
        elif self.rest_mode == "latency":
            self._latent.append((self.now + self.latency, (name, action, snapshot)))
        else:
            self.reads.append((name, action, snapshot))

    def _body_for(self, action: RunOperation) -> bytes:
        request = action.operation.request
        return self.gateway.answer(request.path, request.body)

    def _deliver_read(self, name: str, action: RunOperation, snapshot: bytes | None) -> None:
        body = snapshot if snapshot is not None else self._body_for(action)
        link = self.link(name)
        try:
            value = action.operation.parse(200, {"content-type": "application/json"}, body)
        except Exception as exc:  # pragma: no cover - the gateway's answers parse
            link.operation_failed(action.key, exc, self.now)
        else:
            link.operation_done(action.key, value, self.now)

    def _fail_read(self, name: str, action: RunOperation) -> None:
        """A read that failed as the client reports it: the typed error of the answer."""
        status = self.rest_failure_status
        body = dumps({"success": False, "errorCode": 1, "errorMessage": "account not found"})
        try:
            action.operation.parse(status, {"content-type": "application/json"}, body)
        except Exception as exc:
            self.link(name).operation_failed(action.key, exc, self.now)
        else:  # pragma: no cover - a failure status always raises
            raise AssertionError("a failed read parsed")

    # --- the runtime ---

    def _running(self) -> list[HubLink]:
        return [link for link in self.session.links.values() if link.started]

    def _timed(self) -> list[HubLink]:
        """The hubs whose runtime task still runs its loop (a finished one has ended)."""
        return [link for link in self._running() if not link.finished]

    def settle(self, rounds: int = 10_000) -> None:
        """Step every started hub as its runtime task would, until none makes progress."""
        for _ in range(rounds):
            progressed = False
            for link in self._running():
                progressed |= self._step(link)
            self.max_queued = max(self.max_queued, len(self.session.queue))
            if not progressed:
                return
        raise AssertionError("the runtime never settled")

    def _step(self, link: HubLink) -> bool:
        """One turn of a hub's runtime loop; True when something happened."""
        progressed = False
        for action in link.actions():
            progressed = True
            self._act(link, action)
        progressed |= self._flush(link)
        if link.finished:
            return progressed
        if link.feed(self.now):
            return True
        # The runtime's wait: read when the session allows it, else sleep until a deadline.
        socket = self.sockets[link.name]
        if not link.check_reading(self.now) or socket is None:
            return progressed
        if link.name not in self.deaf:
            socket.pull()
        if socket.incoming:
            size = self.read_size
            chunk, socket.incoming = socket.incoming[:size], socket.incoming[size:]
            link.receive_data(chunk, self.now)
            return True
        if link.name in self._server_eof:
            self._server_eof.discard(link.name)
            self._close(link)
            link.receive_data(b"", self.now)  # end of file
            return True
        return progressed

    def _flush(self, link: HubLink) -> bool:
        data = link.data_to_send()
        socket = self.sockets[link.name]
        if not data or socket is None:
            return bool(data)
        socket.write(data)
        return True

    def _close(self, link: HubLink) -> None:
        socket = self.sockets[link.name]
        if socket is not None:
            socket.close()
            self.sockets[link.name] = None

    def _act(self, link: HubLink, action: Any) -> None:
        self.actions_seen.append((link.name, action))
        now = self.now
        if isinstance(action, OpenConnection):
            assert (action.host, action.port, action.tls) == ("sim.test", 80, False), action
            if self.refuse_connections.get(link.name):
                self.refuse_connections[link.name] -= 1
                link.connection_failed(ConnectionRefusedError("connection refused"), now)
                return
            socket = Socket(self, link)
            if link.connection_made(now):
                self._close(link)  # a runtime has one socket per hub
                self.sockets[link.name] = socket
        elif isinstance(action, CloseConnection):
            self._flush(link)
            self._close(link)
        elif isinstance(action, FetchToken):
            if self.fail_tokens:
                self.fail_tokens -= 1
                link.token_failed(OSError("login service unreachable"), now)
                return
            self.tokens += 1
            link.token_received(
                Secret(f"tok-{self.tokens}"), now, expires_at=now + self.token_lifetime
            )
        elif isinstance(action, RunOperation):
            self._start_read(link.name, action)
        else:  # pragma: no cover - every action is one of those
            raise AssertionError(f"unknown action {action!r}")

    # --- what the reader got ---

    def user_events(self) -> list[StreamEvent]:
        kinds = (OrderUpdated, FillReceived, PositionUpdated, AccountUpdated)
        return [e for e in self.delivered if isinstance(e, kinds)]

    def of(self, kind: type | tuple[type, ...]) -> list[Any]:
        return [e for e in self.delivered if isinstance(e, kind)]


def check_delivered_matches(world: World) -> None:
    """The user events the reader got equal the gateway's: each fill once, last states equal."""
    gateway = world.gateway
    fills = [e.fill for e in world.of(FillReceived)]
    ids = [f.id for f in fills]
    assert sorted(ids) == sorted(gateway.trades), (sorted(ids), sorted(gateway.trades))
    assert len(ids) == len(set(ids)), f"a fill delivered twice: {ids}"
    expected_fills = gateway.expected_fills()
    for fill in fills:
        assert fill == expected_fills[fill.id]
    last_orders: dict[int, Order] = {}
    seen_states: set[tuple[Any, ...]] = set()
    for event in world.of(OrderUpdated):
        order = event.order
        state = (order.id, order.status, order.fill_volume, order.limit_price, order.filled_price)
        assert state not in seen_states, f"an order state delivered twice: {state}"
        seen_states.add(state)
        last_orders[order.id] = order
    assert last_orders == gateway.expected_orders()
    last_positions: dict[tuple[int, str], Position] = {}
    for event in world.of(PositionUpdated):
        key = (event.position.account_id, event.position.contract_id)
        previous = last_positions.get(key)
        assert previous is None or _position_state(previous) != _position_state(event.position), (
            f"a position state delivered twice in a row: {event}"
        )
        last_positions[key] = event.position
    for key, position in gateway.expected_positions().items():
        delivered = last_positions.get(key)
        if position is None:
            assert delivered is None or delivered.size == 0, (key, delivered)
        else:
            assert delivered is not None, (key, position)
            assert _position_state(delivered) == _position_state(position), (key, delivered)
    last_accounts: dict[int, Account] = {}
    for event in world.of(AccountUpdated):
        previous = last_accounts.get(event.account.id)
        assert previous != event.account, f"an account state delivered twice in a row: {event}"
        last_accounts[event.account.id] = event.account
    assert last_accounts == gateway.expected_accounts()


def _position_state(position: Position) -> tuple[Any, ...]:
    if position.size == 0:
        return (0,)
    return (position.side, position.size, position.average_price)


__all__ = [
    "ACCOUNT",
    "API",
    "BUY",
    "ES",
    "NQ",
    "OTHER_ACCOUNT",
    "READ_SIZE",
    "SELL",
    "T0",
    "Endpoint",
    "Gateway",
    "World",
    "check_delivered_matches",
    "iso",
    "user_subscriptions",
]
