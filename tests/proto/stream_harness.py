"""An in-memory gateway hub for driving the stream machine: our own server roles, no sockets."""

from __future__ import annotations

from typing import Any

from tradeforge_proto.core.secret import Secret
from tradeforge_proto.realtime.machine import (
    CloseConnection,
    FetchToken,
    OpenConnection,
    StreamMachine,
)
from tradeforge_proto.signalr import (
    CompletionReceived,
    HandshakeReceived,
    HubConnection,
    HubRole,
    HubState,
    InvocationReceived,
    PingReceived,
)
from tradeforge_proto.websocket import (
    ConnectionClosed,
    TextReceived,
    UpgradeRequested,
    WebSocketServer,
    WebSocketState,
)

T0 = 1_700_000_000.0


class HubServer:
    """The server side of one connection: WebSocket upgrade, SignalR handshake, invocations."""

    def __init__(
        self,
        *,
        reject_status: int | None = None,
        auto_ack: bool = True,
        handshake_error: str | None = None,
    ) -> None:
        self.handshake_error = handshake_error
        self.ws = WebSocketServer()
        self.hub = HubConnection(HubRole.SERVER)
        self.reject_status = reject_status
        self.auto_ack = auto_ack
        self.request: UpgradeRequested | None = None
        self.invocations: list[InvocationReceived] = []
        self.pings = 0
        self.completions: list[CompletionReceived] = []
        self.acked: set[str] = set()  # invocation ids this server has completed
        self.closed = False
        self.refuse: dict[str, str] = {}  # target -> error for its completion

    def receive(self, data: bytes) -> None:
        """Bytes from the client."""
        events = self.ws.receive_data(data)
        index = 0
        while index < len(events):
            event = events[index]
            index += 1
            if isinstance(event, UpgradeRequested):
                self.request = event
                if self.reject_status is not None:
                    self.ws.reject(self.reject_status, body=b"unauthorized")
                else:
                    events.extend(self.ws.accept())
            elif isinstance(event, TextReceived):
                self._hub_text(event.data)
            elif isinstance(event, ConnectionClosed):
                self.closed = True

    def _hub_text(self, text: str) -> None:
        for event in self.hub.receive(text):
            if isinstance(event, HandshakeReceived):
                if self.handshake_error is not None:
                    self.hub.reject_handshake(self.handshake_error)
                else:
                    self.hub.accept_handshake()
            elif isinstance(event, InvocationReceived):
                self.invocations.append(event)
                if self.auto_ack and event.invocation_id is not None:
                    self.ack(event)
            elif isinstance(event, PingReceived):
                self.pings += 1
            elif isinstance(event, CompletionReceived):
                self.completions.append(event)
        self._flush()

    def ack(self, event: InvocationReceived) -> None:
        """Complete a client invocation (with the configured refusal, if any)."""
        assert event.invocation_id is not None
        self.acked.add(event.invocation_id)
        error = self.refuse.get(event.target)
        if error is None:
            self.hub.complete(event.invocation_id, has_result=False)
        else:
            self.hub.complete(event.invocation_id, error=error, has_result=False)
        self._flush()

    def send(self, target: str, *arguments: Any) -> None:
        """Push a hub event to the client."""
        self.hub.send(target, *arguments)
        self._flush()

    def ping(self) -> None:
        """A SignalR keep-alive ping from the server."""
        self.hub.ping()
        self._flush()

    def close_hub(self, error: str | None, allow_reconnect: bool) -> None:
        """A SignalR Close message."""
        self.hub.close(error, allow_reconnect)
        self._flush()

    def raw(self, text: str) -> None:
        """Send raw text as one WebSocket message (for malformed frames)."""
        self.ws.send_text(text)

    def _flush(self) -> None:
        text = self.hub.data_to_send()
        if text and self.ws.state is WebSocketState.OPEN:
            self.ws.send_text(text)

    @property
    def open(self) -> bool:
        return self.hub.state is HubState.OPEN and not self.closed

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
        self._server_pinged = now

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
                reject_status=status, handshake_error=error, auto_ack=self.auto_ack
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
                self._server_pinged = self.now
                assert self.server is not None
                self.server.ping()
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
        server = self.server
        if self.server_keepalive is None or server is None or self.silent_server:
            return None
        if not server.open:
            return None
        return max(self._server_pinged, self.now - self.server_keepalive) + self.server_keepalive

    def take(self, kind: type) -> list[Any]:
        """The collected events of one class (removed from the log)."""
        found = [e for e in self.events if isinstance(e, kind)]
        self.events = [e for e in self.events if not isinstance(e, kind)]
        return found
