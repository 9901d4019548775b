"""An in-memory gateway hub for driving the stream machine: the core's hub server, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradeforge_proto.core.secret import Secret
from tradeforge_proto.realtime.hubserver import (
    HubClosed,
    HubServerConnection,
    HubServerState,
)
from tradeforge_proto.realtime.machine import (
    CloseConnection,
    FetchToken,
    OpenConnection,
    StreamMachine,
)
from tradeforge_proto.signalr import (
    CompletionReceived,
    Invocation,
    InvocationReceived,
    PingReceived,
    encode,
)
from tradeforge_proto.websocket import UpgradeRequested

T0 = 1_700_000_000.0


class _Records:
    """Records encoded ahead of sending (``hub`` of a ``HubServer``), to go out as one message."""

    def __init__(self) -> None:
        self._records: list[str] = []
        self._next_id = 0

    def send(self, target: str, *arguments: Any) -> None:
        self._records.append(encode(Invocation(target, arguments)))

    def invoke(self, target: str, *arguments: Any) -> str:
        """A server-to-client invocation that asks for a completion; returns its id."""
        invocation_id = f"s{self._next_id}"
        self._next_id += 1
        self._records.append(encode(Invocation(target, arguments, invocation_id)))
        return invocation_id

    def data_to_send(self) -> str:
        text = "".join(self._records)
        self._records.clear()
        return text


class _WebSocketSide:
    """The WebSocket level of a ``HubServer`` (``ws``), reached through its hub-server machine."""

    def __init__(self, conn: HubServerConnection) -> None:
        self._conn = conn

    def data_to_send(self) -> bytes:
        return self._conn.data_to_send()

    def send_text(self, text: str) -> None:
        """One message of records as they are."""
        self._conn.send_records(text)

    def ping(self, payload: bytes = b"") -> None:
        self._conn.ping_websocket(payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """A WebSocket Close alone, with no SignalR Close before it."""
        self._conn.close_websocket(code, reason)


class HubServer:
    """The server side of one connection, on the core's hub-server machine: WebSocket upgrade,
    SignalR handshake, invocations; ``clock`` dates what it sends."""

    def __init__(
        self,
        *,
        reject_status: int | None = None,
        auto_ack: bool = True,
        handshake_error: str | None = None,
        keepalive: float | None = 15.0,
        clock: Callable[[], float] = lambda: T0,
    ) -> None:
        self.handshake_error = handshake_error
        self.conn = HubServerConnection(keepalive_interval=keepalive)
        self.ws = _WebSocketSide(self.conn)
        self.hub = _Records()
        self.reject_status = reject_status
        self.auto_ack = auto_ack
        self._clock = clock
        self.request: UpgradeRequested | None = None
        self.invocations: list[InvocationReceived] = []
        self.pings = 0
        self.completions: list[CompletionReceived] = []
        self.acked: set[str] = set()  # invocation ids this server has completed
        self.closed = False
        self.refuse: dict[str, str] = {}  # target -> error for its completion

    def receive(self, data: bytes) -> None:
        """Bytes from the client."""
        self._handle(self.conn.receive_data(data, self._clock()))

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, UpgradeRequested):
                self.request = event
                if self.reject_status is not None:
                    self.conn.reject(self.reject_status, body=b"unauthorized")
                else:
                    self._handle(self.conn.accept(handshake_error=self.handshake_error))
            elif isinstance(event, InvocationReceived):
                self.invocations.append(event)
                if self.auto_ack and event.invocation_id is not None:
                    self.ack(event)
            elif isinstance(event, PingReceived):
                self.pings += 1
            elif isinstance(event, CompletionReceived):
                self.completions.append(event)
            elif isinstance(event, HubClosed):
                self.closed = True

    def tick(self) -> None:
        """Tell the machine the time: it dates what is sent next, and pings when one is due."""
        self._handle(self.conn.handle_timer(self._clock()))

    def ack(self, event: InvocationReceived) -> None:
        """Complete a client invocation (with the configured refusal, if any)."""
        assert event.invocation_id is not None
        self.acked.add(event.invocation_id)
        self.tick()
        self.conn.complete(event.invocation_id, self.refuse.get(event.target))

    def send(self, target: str, *arguments: Any) -> None:
        """Push a hub event to the client."""
        self.tick()
        self.conn.send(target, *arguments)

    def ping(self) -> None:
        """A SignalR keep-alive ping from the server."""
        self.tick()
        self.conn.ping()

    def close_hub(self, error: str | None, allow_reconnect: bool) -> None:
        """A SignalR Close message (then the WebSocket Close)."""
        self.conn.close(error, allow_reconnect)

    def raw(self, text: str) -> None:
        """Send raw text as one WebSocket message (for malformed frames)."""
        self.conn.send_records(text)

    def _flush(self) -> None:
        """Send what ``hub`` holds as one message."""
        text = self.hub.data_to_send()
        if text:
            self.tick()
            self.conn.send_records(text)

    @property
    def open(self) -> bool:
        return self.conn.state is HubServerState.OPEN and not self.closed

    def subscribe_targets(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(i.target, i.arguments) for i in self.invocations]


class Driver:
    """Plays the runtime's part for a stream machine, against in-memory servers."""

    def __init__(self, machine: StreamMachine, *, now: float = T0) -> None:
        self.machine = machine
        self.now = now
        self.server: HubServer | None = None
        self.servers: list[HubServer] = []
        self.events: list[Any] = []
        self.tokens_issued = 0
        self.fetches: list[FetchToken] = []
        self.opens: list[OpenConnection] = []
        self.closes: list[CloseConnection] = []
        self.reject_next: list[int] = []  # statuses for the next upgrades
        self.refuse_handshake_next: list[str] = []  # SignalR handshake errors for the next ones
        self.token_lifetime = 86_400.0
        self.fail_token_with: BaseException | None = None
        self.connect_fails = 0
        self.silent_server = False  # accept the socket but never answer
        self.auto_ack = True  # new servers acknowledge invocations at once
        self.server_keepalive: float | None = 15.0  # the hub's own pings, as ASP.NET sends them

    def pump(self) -> None:
        """Move actions and bytes until nothing changes."""
        for _ in range(1000):
            progressed = False
            for action in self.machine.actions():
                progressed = True
                self._act(action)
            data = self.machine.data_to_send()
            if data and self.server is not None:
                progressed = True
                if not self.silent_server:
                    self.server.receive(data)
            if self.server is not None and not self.silent_server:
                reply = self.server.ws.data_to_send()
                if reply:
                    progressed = True
                    self.machine.receive_data(reply, self.now)
            self.events.extend(self.machine.events())
            if not progressed:
                return
        raise AssertionError("the machine never settled")

    def _act(self, action: object) -> None:
        if isinstance(action, FetchToken):
            self.fetches.append(action)
            if self.fail_token_with is not None:
                self.machine.token_failed(self.fail_token_with, self.now)
                return
            self.tokens_issued += 1
            self.machine.token_received(
                Secret(f"tok-{self.tokens_issued}"),
                self.now,
                expires_at=self.now + self.token_lifetime,
            )
        elif isinstance(action, OpenConnection):
            self.opens.append(action)
            if self.connect_fails:
                self.connect_fails -= 1
                self.machine.connection_failed(OSError("refused"), self.now)
                return
            status = self.reject_next.pop(0) if self.reject_next else None
            error = self.refuse_handshake_next.pop(0) if self.refuse_handshake_next else None
            self.server = HubServer(
                reject_status=status,
                handshake_error=error,
                auto_ack=self.auto_ack,
                keepalive=self.server_keepalive,
                clock=lambda: self.now,
            )
            self.servers.append(self.server)
            self.machine.connection_made(self.now)
        elif isinstance(action, CloseConnection):
            self.closes.append(action)
            data = self.machine.data_to_send()
            if data and self.server is not None and not self.silent_server:
                self.server.receive(data)
            self.server = None

    def drop(self) -> None:
        """The network drops the connection."""
        self.server = None
        self.machine.connection_lost(self.now, OSError("reset by peer"))
        self.pump()

    def advance(self, seconds: float) -> None:
        """Let time pass, firing every deadline (and the server's keep-alive) on the way."""
        end = self.now + seconds
        for _ in range(10_000):
            deadline = self.machine.next_deadline()
            ping_at = self._next_server_ping()
            if ping_at is not None and (deadline is None or ping_at < deadline) and ping_at <= end:
                self.now = max(self.now, ping_at)
                assert self.server is not None
                self.server.tick()
                self.pump()
                continue
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.machine.handle_timer(self.now)
            self.pump()
        else:
            raise AssertionError("deadlines never stopped firing")
        self.now = end
        self.pump()

    def _next_server_ping(self) -> float | None:
        """When the server's machine has a timer due (its keep-alive ping), unless it is silent."""
        server = self.server
        if server is None or self.silent_server:
            return None
        return server.conn.next_deadline()

    def take(self, kind: type) -> list[Any]:
        """The collected events of one class (removed from the log)."""
        found = [e for e in self.events if isinstance(e, kind)]
        self.events = [e for e in self.events if not isinstance(e, kind)]
        return found
