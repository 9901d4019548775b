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

__all__ = [
    "FEED_SIZE",
    "CloseConnection",
    "EventQueue",
    "FetchToken",
    "HubSpec",
    "OpenConnection",
    "QueueOverflow",
    "StreamAction",
    "StreamConfig",
    "StreamMachine",
    "StreamState",
    "hub_for",
    "merge_depth",
]
