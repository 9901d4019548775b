"""The realtime stream machine: one hub connection kept alive, reconnected and resubscribed.

Generic and sans-IO. A provider describes its hub with a ``HubSpec`` (how to subscribe, how to
decode events); this machine owns everything else: the WebSocket and SignalR layers of the current
connection, the desired subscriptions versus those the connection has acknowledged, keep-alive
pings, server-timeout and stale-feed detection, backoff with full jitter, fresh tokens before a
reconnect, and a clean stop after repeated refusals.

The runtime does only I/O. It drains ``actions()`` (open or close a socket, fetch a token),
writes ``data_to_send()``, feeds what it reads to ``receive_data``, reports socket outcomes,
sleeps until ``next_deadline()`` and then calls ``handle_timer(now)``, and hands ``events()`` to
the user.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from typing import Final

import attrs

from ..core.errors import (
    AuthenticationError,
    LocalProtocolError,
    ProviderError,
    RemoteProtocolError,
    TradeForgeError,
)
from ..core.events import (
    Connected,
    Disconnected,
    EventDropped,
    FeedStale,
    Reconnecting,
    Resubscribed,
    SessionLoggedOut,
    StreamEvent,
    StreamStopped,
    Subscribed,
    SubscriptionRefused,
)
from ..core.interfaces import HubSpec
from ..core.secret import Secret
from ..core.subscriptions import Subscription
from ..signalr import (
    CloseReceived,
    CompletionReceived,
    HandshakeCompleted,
    HandshakeFailed,
    HubConnection,
    HubRole,
    HubState,
    InvocationReceived,
)
from ..websocket import (
    Accepted,
    ConnectionClosed,
    Rejected,
    TextReceived,
    WebSocketClient,
    WebSocketState,
    WsEndpoint,
    ws_endpoint,
)

__all__ = [
    "FEED_SIZE",
    "CloseConnection",
    "FetchToken",
    "HubSpec",
    "OpenConnection",
    "StreamAction",
    "StreamConfig",
    "StreamMachine",
    "StreamState",
    "hub_for",
]

_AUTH_STATUSES: Final = frozenset({401, 403})
# How much of a read runtimes hand to ``receive_data`` at a time, passing the events on between
# slices: the first records of a long read then reach the reader before the rest is decoded.
FEED_SIZE: Final = 16384


@attrs.frozen
class StreamConfig:
    """Timers and limits of a stream; every duration is in seconds."""

    keepalive_interval: float = 15.0
    server_timeout: float = 30.0
    handshake_timeout: float = 15.0
    ack_timeout: float = 15.0  # a (un)subscribe not acknowledged by then means a broken hub
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    healthy_after: float = 60.0
    stale_after: float | None = 120.0
    max_refusals: int = 3
    token_margin: float = 300.0
    max_message_size: int = 4 * 1024 * 1024
    # A hub whose reading stayed paused this long for a slow reader is closed on purpose, then
    # reconnected (and its gap recovered) once the reader made room.
    max_pause: float = 30.0
    recovery_overlap: float = 60.0  # seconds looked back before the last moment known complete
    recovery_retry: float = 5.0  # delay before failed recovery reads are tried again

    def backoff_bound(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` (1, 2, ...) may wait."""
        return min(self.backoff_cap, self.backoff_base * 2.0 ** min(attempt - 1, 62))


# --- what the runtime is asked to do ------------------------------------------------------


@attrs.frozen
class OpenConnection:
    """Open a TCP connection (TLS when ``tls``) and report ``connection_made`` or ``_failed``."""

    host: str
    port: int
    tls: bool


@attrs.frozen
class CloseConnection:
    """Write what is left in ``data_to_send()``, then close the socket."""

    reason: str


@attrs.frozen
class FetchToken:
    """Obtain a token and report ``token_received`` or ``token_failed``.

    ``fresh`` means the last token was refused: log in again rather than reuse a cached one.
    """

    fresh: bool


StreamAction = OpenConnection | CloseConnection | FetchToken


class StreamState(enum.Enum):
    """Where the stream stands."""

    IDLE = "idle"  # not started
    WAITING_TOKEN = "waiting_token"  # asked the runtime for a token
    CONNECTING = "connecting"  # asked the runtime for a socket
    HANDSHAKING = "handshaking"  # WebSocket upgrade and SignalR handshake under way
    CONNECTED = "connected"
    BACKOFF = "backoff"  # waiting before the next attempt
    HELD = "held"  # closed on purpose; connects again on ``release``
    STOPPED = "stopped"


class _Sub(enum.Enum):
    SUBSCRIBING = "subscribing"
    ACTIVE = "active"
    UNSUBSCRIBING = "unsubscribing"


class StreamMachine:
    """Keeps one hub connection alive and its subscriptions equal to the desired ones."""

    def __init__(
        self,
        hub: HubSpec,
        *,
        config: StreamConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.hub = hub
        self.config = config or StreamConfig()
        self._rng = rng or random.Random()
        self._state = StreamState.IDLE
        self._desired: dict[Subscription, None] = {}
        self._events: list[StreamEvent] = []
        self._actions: list[StreamAction] = []
        self._token: Secret | None = None
        self._token_expires: float | None = None
        self._need_fresh_token = False
        self._attempt = 0  # consecutive unhealthy attempts
        self._refusals = 0  # consecutive refusals (auth and explicit no-reconnect)
        self._connections = 0  # completed handshakes so far
        self._outbox = b""  # last bytes of a connection being closed (its close frame)
        self._endpoint: WsEndpoint | None = None
        self._opens_requested = 0
        self._reset_connection()

    def _reset_connection(self) -> None:
        self._ws: WebSocketClient | None = None
        self._hub_conn: HubConnection | None = None
        self._socket_open = False
        self._subs: dict[Subscription, _Sub] = {}
        # invocation id -> (subscription, what it does, when it was sent)
        self._pending: dict[str, tuple[Subscription, _Sub, float]] = {}
        self._resubscribing: set[Subscription] | None = None
        self._deadline_at: float | None = None  # handshake deadline or backoff end
        self._connected_at: float | None = None
        self._last_received = 0.0
        self._last_sent = 0.0
        self._last_data = 0.0
        self._healthy = False
        self._paused_since: float | None = None  # reading paused by the owner since then

    # --- inspection ---

    @property
    def state(self) -> StreamState:
        """Current state."""
        return self._state

    @property
    def desired(self) -> tuple[Subscription, ...]:
        """Subscriptions the user wants, in the order they were asked for."""
        return tuple(self._desired)

    @property
    def active(self) -> tuple[Subscription, ...]:
        """Subscriptions the current connection has acknowledged."""
        return tuple(s for s, st in self._subs.items() if st is _Sub.ACTIVE)

    @property
    def reading_paused(self) -> bool:
        """True while the owner does not read this connection (see ``pause_reading``)."""
        return self._paused_since is not None

    @property
    def attempt(self) -> int:
        """Consecutive connection attempts since the last healthy connection."""
        return self._attempt

    def events(self) -> list[StreamEvent]:
        """Events produced so far (drained)."""
        events, self._events = self._events, []
        return events

    def actions(self) -> list[StreamAction]:
        """What the runtime must do next (drained)."""
        actions, self._actions = self._actions, []
        return actions

    def data_to_send(self) -> bytes:
        """Bytes to write to the current socket (drained); write them before closing it."""
        data, self._outbox = self._outbox, b""
        return data if self._ws is None else data + self._ws.data_to_send()

    # --- user intentions ---

    def subscribe(self, subscription: Subscription, now: float) -> None:
        """Want ``subscription``; sent now when connected, else on the next connection."""
        if not self.hub.handles(subscription):
            raise LocalProtocolError(f"the {self.hub.name} hub does not serve {subscription}")
        if self._state is StreamState.STOPPED:
            raise LocalProtocolError("the stream is stopped")
        if subscription not in self._desired:
            self._desired[subscription] = None
            self._reconcile(now)

    def unsubscribe(self, subscription: Subscription, now: float) -> None:
        """No longer want ``subscription``."""
        if self._desired.pop(subscription, 0) is None:
            self._reconcile(now)

    def start(self, now: float) -> None:
        """Begin connecting."""
        if self._state is not StreamState.IDLE:
            raise LocalProtocolError(f"cannot start a stream that is {self._state.value}")
        self._begin_attempt(now)

    def pause_reading(self, now: float) -> None:
        """The owner stops reading for now: silence from then on is not the server's fault.

        Receive-side deadlines (server timeout, stale feed, acknowledgements, the handshake) stand
        still until ``resume_reading``; keep-alive pings go on.
        """
        if self._paused_since is None and self._socket_open:
            self._paused_since = now

    def resume_reading(self, now: float) -> None:
        """The owner reads again: the receive-side deadlines move by the time spent paused."""
        since = self._paused_since
        if since is None:
            return
        self._paused_since = None
        paused = max(0.0, now - since)

        def moved(moment: float) -> float:
            # Silence before the pause still counts; the pause itself does not.
            return moment + paused if moment <= since else now

        self._last_received = moved(self._last_received)
        self._last_data = moved(self._last_data)
        self._pending = {k: (sub, op, moved(at)) for k, (sub, op, at) in self._pending.items()}
        if self._state is StreamState.HANDSHAKING and self._deadline_at is not None:
            self._deadline_at += paused

    def hold(self, now: float, reason: str) -> None:
        """Close the connection on purpose and stay closed until ``release``."""
        if self._state in (StreamState.STOPPED, StreamState.HELD):
            return
        was_connected = self._state is StreamState.CONNECTED
        if self._socket_open or self._state is StreamState.CONNECTING:
            if self._hub_conn is not None and was_connected:
                self._hub_conn.close()
                self._flush(now)
            self._close_socket(reason)
        self._reset_connection()
        self._state = StreamState.HELD
        if was_connected:
            self._events.append(Disconnected(self.hub.name, reason, will_reconnect=True))

    def release(self, now: float) -> None:
        """Connect again after ``hold`` (at once: holding was our choice, not a failure)."""
        if self._state is StreamState.HELD:
            self._begin_attempt(now)

    def stop(self, now: float, error: TradeForgeError | None = None) -> None:
        """Stop for good: close the connection, emit StreamStopped."""
        if self._state is StreamState.STOPPED:
            return
        if self._socket_open or self._state is StreamState.CONNECTING:
            if self._hub_conn is not None and self._state is StreamState.CONNECTED:
                self._hub_conn.close()
                self._flush(now)
            self._close_socket("stopping")
            self._events.append(Disconnected(self.hub.name, "stopped", will_reconnect=False))
        self._reset_connection()
        self._state = StreamState.STOPPED
        self._events.append(StreamStopped(self.hub.name, error))

    # --- runtime reports ---

    def token_received(self, token: Secret, now: float, *, expires_at: float | None = None) -> None:
        """A token the runtime obtained after FetchToken."""
        if not token:
            raise LocalProtocolError("empty token")
        self._token, self._token_expires = token, expires_at
        self._need_fresh_token = False
        if self._state is StreamState.WAITING_TOKEN:
            self._open(now)

    def token_failed(self, error: BaseException, now: float) -> None:
        """The runtime could not obtain a token."""
        if self._state is not StreamState.WAITING_TOKEN:
            return
        self._state = StreamState.IDLE
        refusal = error if isinstance(error, AuthenticationError) else None
        self._retry(now, f"no token: {error}", refusal)

    def connection_made(self, now: float) -> bool:
        """The socket asked for by OpenConnection is up: the WebSocket upgrade goes out.

        False when that request was withdrawn meanwhile (stopped, held, timed out): close the
        socket without using it.
        """
        if self._state is not StreamState.CONNECTING:
            if self._opens_requested:
                return False
            raise LocalProtocolError(f"no connection was requested ({self._state.value})")
        endpoint = self._endpoint
        assert endpoint is not None
        self._ws = WebSocketClient(
            endpoint.host_header,
            endpoint.target,
            max_message_size=self.config.max_message_size,
            text_pieces=True,  # SignalR records are decoded as soon as each one is complete
        )
        self._socket_open = True
        self._outbox = b""  # whatever was left for the previous socket never goes to this one
        self._state = StreamState.HANDSHAKING
        self._last_received = self._last_sent = now
        return True

    def connection_failed(self, error: BaseException, now: float) -> None:
        """The socket asked for by OpenConnection could not be opened."""
        if self._state is StreamState.CONNECTING:
            self._lost(now, f"connect failed: {error}")

    def connection_lost(self, now: float, error: BaseException | None = None) -> None:
        """The socket closed or failed."""
        if self._state in (StreamState.HANDSHAKING, StreamState.CONNECTED):
            self._socket_open = False
            self._lost(now, f"connection lost: {error}" if error else "connection closed")

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the socket (``b""`` at end of file)."""
        ws = self._ws
        if ws is None or self._state not in (StreamState.HANDSHAKING, StreamState.CONNECTED):
            return
        self._last_received = now
        try:
            ws_events = ws.receive_data(data)
            for event in ws_events:
                if self._ws is not ws:
                    return  # the connection was replaced while handling earlier events
                self._on_ws_event(event, now)
        except RemoteProtocolError as exc:
            self._lost(now, f"protocol error: {exc}")
            return
        self._flush(now)

    # --- timers ---

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must be called next (None: only on input)."""
        state = self._state
        paused = self._paused_since is not None
        if state in (StreamState.BACKOFF, StreamState.CONNECTING):
            return self._deadline_at
        if state is StreamState.HANDSHAKING:
            return None if paused else self._deadline_at
        if state is not StreamState.CONNECTED:
            return None
        config = self.config
        deadlines = [self._last_sent + config.keepalive_interval]
        if not self._healthy and self._connected_at is not None:
            deadlines.append(self._connected_at + config.healthy_after)
        if not paused:
            deadlines.append(self._last_received + config.server_timeout)
            if self._watching_staleness():
                assert config.stale_after is not None
                deadlines.append(self._last_data + config.stale_after)
            if self._pending:
                deadlines.append(self._oldest_pending() + config.ack_timeout)
        return min(deadlines)

    def _oldest_pending(self) -> float:
        return min(sent for _, _, sent in self._pending.values())

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed."""
        state = self._state
        deadline = self._deadline_at
        if state is StreamState.BACKOFF and deadline is not None and now >= deadline:
            self._begin_attempt(now)
        elif state is StreamState.CONNECTING or (
            state is StreamState.HANDSHAKING and self._paused_since is None
        ):
            if deadline is not None and now >= deadline:
                self._lost(now, "handshake timed out")
        elif state is StreamState.CONNECTED:
            self._connected_timers(now)

    def _connected_timers(self, now: float) -> None:
        config = self.config
        if self._paused_since is None and not self._receive_timers(now):
            return
        connected_at = self._connected_at
        healthy_at = None if connected_at is None else connected_at + config.healthy_after
        if not self._healthy and healthy_at is not None and now >= healthy_at:
            # The connection proved itself: the next failure starts the backoff from scratch.
            self._healthy = True
            self._attempt = 0
            self._refusals = 0
        if now - self._last_sent >= config.keepalive_interval and self._hub_conn is not None:
            self._hub_conn.ping()
            self._flush(now)

    def _receive_timers(self, now: float) -> bool:
        """Server silence, missing acknowledgements, a stale feed; False when the link is lost."""
        config = self.config
        if now - self._last_received >= config.server_timeout:
            self._lost(now, f"no data from the server for {now - self._last_received:.1f}s")
            return False
        if self._pending and now - self._oldest_pending() >= config.ack_timeout:
            self._lost(now, f"a subscription was not acknowledged within {config.ack_timeout:g}s")
            return False
        if self._watching_staleness():
            assert config.stale_after is not None
            silent = now - self._last_data
            if silent >= config.stale_after:
                contracts = tuple(str(s.key) for s in self.active if s.is_market)
                self._events.append(FeedStale(self.hub.name, silent, contracts))
                self._lost(now, f"market data stale for {silent:.1f}s")
                return False
        return True

    def _watching_staleness(self) -> bool:
        return (
            self.hub.market_data
            and self.config.stale_after is not None
            and any(st is _Sub.ACTIVE and s.is_market for s, st in self._subs.items())
        )

    # --- internals ---

    def _begin_attempt(self, now: float) -> None:
        token_ok = (
            self._token is not None
            and not self._need_fresh_token
            and (
                self._token_expires is None or self._token_expires - now > self.config.token_margin
            )
        )
        if token_ok:
            self._open(now)
        else:
            self._state = StreamState.WAITING_TOKEN
            self._actions.append(FetchToken(fresh=self._need_fresh_token))

    def _open(self, now: float) -> None:
        assert self._token is not None
        endpoint = ws_endpoint(self.hub.url, access_token=self._token.reveal())
        self._endpoint = endpoint
        self._state = StreamState.CONNECTING
        self._opens_requested += 1
        self._deadline_at = now + self.config.handshake_timeout
        self._actions.append(OpenConnection(endpoint.host, endpoint.port, endpoint.tls))

    def _on_ws_event(self, event: object, now: float) -> None:
        if isinstance(event, TextReceived):
            self._on_text(event.data, now)
        elif isinstance(event, Accepted):
            self._hub_conn = HubConnection(
                HubRole.CLIENT, max_buffer_size=self.config.max_message_size
            )
        elif isinstance(event, Rejected):
            reason = f"upgrade rejected with HTTP {event.status}"
            refusal = (
                AuthenticationError(reason, endpoint=self.hub.name, status=event.status)
                if event.status in _AUTH_STATUSES
                else None
            )
            self._lost(now, reason, refusal)
        elif isinstance(event, ConnectionClosed):
            self._lost(now, f"WebSocket closed ({event.code} {event.reason})".rstrip())

    def _on_text(self, text: str, now: float) -> None:
        hub_conn = self._hub_conn
        assert hub_conn is not None  # the WebSocket reports Accepted before any message
        for event in hub_conn.receive(text):
            if self._hub_conn is not hub_conn:
                return
            if isinstance(event, InvocationReceived):
                self._on_invocation(event, now)
            elif isinstance(event, CompletionReceived):
                self._on_completion(event, now)
            elif isinstance(event, HandshakeCompleted):
                self._on_connected(now)
            elif isinstance(event, HandshakeFailed):
                reason = f"handshake refused: {event.error}"
                self._lost(now, reason, self._refused(reason))
            elif isinstance(event, CloseReceived):
                reason = f"server closed the hub ({event.error or 'no reason'})"
                self._lost(now, reason, None if event.allow_reconnect else self._refused(reason))

    def _refused(self, reason: str) -> ProviderError:
        return ProviderError(reason, endpoint=self.hub.name, status=101)

    def _on_connected(self, now: float) -> None:
        self._state = StreamState.CONNECTED
        self._deadline_at = None
        self._connected_at = self._last_data = now
        attempt = self._connections
        self._connections += 1
        self._events.append(Connected(self.hub.name, attempt))
        if attempt and self._desired:
            self._resubscribing = set(self._desired)
        self._reconcile(now)

    def _on_invocation(self, event: InvocationReceived, now: float) -> None:
        try:
            decoded = self.hub.decode(event.target, event.arguments)
        except RemoteProtocolError as exc:
            self._events.append(EventDropped(self.hub.name, event.target, str(exc)))
            return
        hub_conn = self._hub_conn
        if (
            event.invocation_id is not None
            and hub_conn is not None
            and hub_conn.state is HubState.OPEN
        ):
            # The gateway's events are fire-and-forget; answer anything else as unsupported.
            hub_conn.complete(
                event.invocation_id, error="client results are not supported", has_result=False
            )
        if decoded:
            self._last_data = now
            self._events.extend(decoded)
            if SessionLoggedOut in map(type, decoded):
                reason = "session logged out by the provider"
                self._lost(
                    now, reason, AuthenticationError(reason, endpoint=self.hub.name, status=0)
                )

    def _on_completion(self, event: CompletionReceived, now: float) -> None:
        entry = self._pending.pop(event.invocation_id, None)
        if entry is None:
            return
        sub, op, _ = entry
        if op is _Sub.SUBSCRIBING:
            if event.error is not None:
                self._subs.pop(sub, None)
                self._desired.pop(sub, None)
                self._events.append(SubscriptionRefused(self.hub.name, sub, event.error))
                self._discard_resubscribe(sub)
            else:
                self._subs[sub] = _Sub.ACTIVE
                if self._resubscribing is None or sub not in self._resubscribing:
                    self._events.append(Subscribed(self.hub.name, sub))
                self._discard_resubscribe(sub)
        else:
            self._subs.pop(sub, None)
        self._reconcile(now)

    def _discard_resubscribe(self, sub: Subscription) -> None:
        waiting = self._resubscribing
        if waiting is None:
            return
        waiting.discard(sub)
        if not waiting:
            self._resubscribing = None
            self._events.append(Resubscribed(self.hub.name, self.active))

    def _reconcile(self, now: float) -> None:
        """Send whatever makes the connection's subscriptions match the desired ones."""
        hub_conn = self._hub_conn
        if self._state is not StreamState.CONNECTED or hub_conn is None:
            return
        for sub in self._desired:
            if sub not in self._subs:
                target, args = self.hub.subscribe_call(sub)
                self._pending[hub_conn.invoke(target, *args)] = (sub, _Sub.SUBSCRIBING, now)
                self._subs[sub] = _Sub.SUBSCRIBING
        for sub, status in list(self._subs.items()):
            if status is _Sub.ACTIVE and sub not in self._desired:
                target, args = self.hub.unsubscribe_call(sub)
                self._pending[hub_conn.invoke(target, *args)] = (sub, _Sub.UNSUBSCRIBING, now)
                self._subs[sub] = _Sub.UNSUBSCRIBING
        if self._resubscribing is not None:
            # Subscriptions dropped meanwhile no longer hold the Resubscribed event back.
            for sub in list(self._resubscribing):
                if sub not in self._desired:
                    self._discard_resubscribe(sub)
        self._flush(now)

    def _flush(self, now: float) -> None:
        """Move what the hub connection queued into the WebSocket's outbound buffer."""
        hub_conn, ws = self._hub_conn, self._ws
        if hub_conn is None or ws is None or ws.state is not WebSocketState.OPEN:
            return
        text = hub_conn.data_to_send()
        if text:
            ws.send_text(text)
            self._last_sent = now

    def _close_socket(self, reason: str) -> None:
        """Queue a close frame if the WebSocket is open and ask the runtime to close the socket."""
        ws = self._ws
        if ws is not None:
            if ws.state is WebSocketState.OPEN:
                ws.close(1000, reason[:100])
            self._outbox += ws.data_to_send()
        self._actions.append(CloseConnection(reason))

    def _lost(self, now: float, reason: str, refusal: TradeForgeError | None = None) -> None:
        """The current attempt or connection is over: close it and plan the next one.

        A ``refusal`` (credentials refused, the server said not to reconnect, logged out) asks
        for a fresh token and counts toward ``max_refusals``.
        """
        was_connected = self._state is StreamState.CONNECTED
        if self._socket_open or self._state is StreamState.CONNECTING:
            self._close_socket(reason)
        self._reset_connection()
        self._state = StreamState.IDLE
        if was_connected or refusal is not None:
            will_stop = refusal is not None and self._refusals + 1 >= self.config.max_refusals
            self._events.append(Disconnected(self.hub.name, reason, will_reconnect=not will_stop))
        self._retry(now, reason, refusal)

    def _retry(self, now: float, reason: str, refusal: BaseException | None) -> None:
        if refusal is not None:
            self._refusals += 1
            self._need_fresh_token = True
            if self._refusals >= self.config.max_refusals:
                error = (
                    refusal
                    if isinstance(refusal, TradeForgeError)
                    else AuthenticationError(reason, endpoint=self.hub.name, status=0)
                )
                self._state = StreamState.STOPPED
                self._events.append(StreamStopped(self.hub.name, error))
                return
        self._attempt += 1
        delay = self._rng.uniform(0.0, self.config.backoff_bound(self._attempt))
        self._state = StreamState.BACKOFF
        self._deadline_at = now + delay
        self._events.append(Reconnecting(self.hub.name, self._attempt, delay))


def hub_for(hubs: Iterable[HubSpec], subscription: Subscription) -> HubSpec:
    """The hub among ``hubs`` that serves ``subscription``."""
    for hub in hubs:
        if hub.handles(subscription):
            return hub
    raise LocalProtocolError(f"no hub serves {subscription}")
