"""The embedded gateway simulator: a paper exchange, its contract catalogue, rules and state."""

from .accounts import ACCOUNT_TYPES, accounts_of
from .faults import Faults
from .server import SimServer
from .simulation import SimConfig, Simulation
from .store import StateStore, StoreError

__all__ = [
    "ACCOUNT_TYPES",
    "Faults",
    "SimConfig",
    "SimServer",
    "Simulation",
    "StateStore",
    "StoreError",
    "accounts_of",
]
