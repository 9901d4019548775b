"""TradeForge's blocking runtime: the core driven over plain sockets, for scripts."""

from .settings import load_settings

__all__ = ["load_settings"]
