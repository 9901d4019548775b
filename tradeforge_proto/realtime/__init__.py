"""The realtime engine: hub machines, the session that owns them, the event queue, recovery.

``StreamMachine`` keeps one hub connection alive; ``StreamSession`` owns every hub of one login
(routing, read slicing, books, the queue, back-pressure and gap recovery) and is what runtimes
step; ``EventQueue`` is the bounded, coalescing queue between the session and its reader.
"""

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
    MAX_WAIT,
    HubLink,
    RunOperation,
    SessionAction,
    StreamSession,
    StreamStats,
    SubscriptionStatus,
)

__all__ = [
    "FEED_SIZE",
    "MAX_WAIT",
    "CloseConnection",
    "EventQueue",
    "FetchToken",
    "HubLink",
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
