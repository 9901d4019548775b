"""A REST web service over ``TradingClient`` (needs the ``service`` extra: FastAPI)."""

from __future__ import annotations

from .app import ClientFactory, create_app

__all__ = ["ClientFactory", "create_app"]
