"""The realtime engine: hub machines, the session that owns them, the event queue, recovery.

``StreamMachine`` keeps one hub connection alive; ``StreamSession`` owns every hub of one login
(routing, read slicing, books, the queue, back-pressure and gap recovery) and is what runtimes
step; ``EventQueue`` is the bounded, coalescing queue between the session and its reader;
``HubServerConnection`` is the server side of one hub connection (the simulator's, the tests').
"""

from .hubserver import (
    HANDSHAKE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    MAX_OUTBOX,
    SLOW_CLIENT_CODE,
    SLOW_CLIENT_ERROR,
    HubClosed,
    HubOpened,
    HubServerConnection,
    HubServerEvent,
    HubServerState,
)
from .machine import (
    FEED_SIZE,
    CloseConnection,
    FetchToken,
    HubSpec,
    OpenConnection,
    StreamAction,
    StreamConfig,
    StreamMachine,
    StreamState,
    hub_for,
)
from .queue import EventQueue, QueueOverflow, merge_depth
from .recovery import Ledger, Recovery, RecoveryRead
from .session import (
    CLOSE_TIMEOUT,
    MAX_WAIT,
    READ_SIZE,
    SUBSCRIBE_TIMEOUT,
    HubLink,
    RunOperation,
    SessionAction,
    StreamSession,
    StreamStats,
    SubscriptionStatus,
)

__all__ = [
    "CLOSE_TIMEOUT",
    "FEED_SIZE",
    "HANDSHAKE_TIMEOUT",
    "KEEPALIVE_INTERVAL",
    "MAX_OUTBOX",
    "MAX_WAIT",
    "READ_SIZE",
    "SLOW_CLIENT_CODE",
    "SLOW_CLIENT_ERROR",
    "SUBSCRIBE_TIMEOUT",
    "CloseConnection",
    "EventQueue",
    "FetchToken",
    "HubClosed",
    "HubLink",
    "HubOpened",
    "HubServerConnection",
    "HubServerEvent",
    "HubServerState",
    "HubSpec",
    "Ledger",
    "OpenConnection",
    "QueueOverflow",
    "Recovery",
    "RecoveryRead",
    "RunOperation",
    "SessionAction",
    "StreamAction",
    "StreamConfig",
    "StreamMachine",
    "StreamSession",
    "StreamState",
    "StreamStats",
    "SubscriptionStatus",
    "hub_for",
    "merge_depth",
]
