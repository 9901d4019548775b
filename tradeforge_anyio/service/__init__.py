"""A REST web service over ``TradingClient`` (needs the ``service`` extra: FastAPI)."""

from __future__ import annotations

from .app import ClientFactory, create_app
from .serving import ServeLimits, build_server

__all__ = ["ClientFactory", "ServeLimits", "build_server", "create_app"]
