"""Providers: each turns generic calls into operations for one trading platform."""

from . import topstepx

__all__ = ["topstepx"]
