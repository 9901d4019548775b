"""TradeForge's blocking runtime: the core driven over plain sockets, for scripts."""

from .client import TradingClient
from .net import ConnectionPool, ConnectTimeout, Origin, ReadTimeout, SendProgress, TransportError
from .quickstart import connect
from .settings import load_settings
from .stream import TradingStream

__all__ = [
    "ConnectTimeout",
    "ConnectionPool",
    "Origin",
    "ReadTimeout",
    "SendProgress",
    "TradingClient",
    "TradingStream",
    "TransportError",
    "connect",
    "load_settings",
]
