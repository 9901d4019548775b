"""TradeForge's async runtime (asyncio and trio, through anyio)."""

from tradeforge_sync.settings import load_settings

__all__ = ["load_settings"]
