"""Realtime behaviour written once and run on every runtime: asyncio, trio and blocking."""
