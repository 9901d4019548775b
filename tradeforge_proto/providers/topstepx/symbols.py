"""Product symbols: "MES", "ES" or "NQ" to the gateway's roots and the active contract."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ...core.models import Contract

# Exchange tickers that the gateway spells differently.
ROOT_ALIASES: Final[dict[str, str]] = {
    "ES": "EP",
    "NQ": "ENQ",
    "GC": "GCE",
    "CL": "CLE",
    "ZN": "TYA",
    "ZB": "USA",
    "6E": "EU6",
    "6B": "BP6",
    "6C": "CA6",
    "6A": "DA6",
    "E7": "EEU",
}


def root_of(contract: Contract) -> str:
    """The product root of a contract ("CON.F.US.EP.Z25" -> "EP")."""
    if contract.symbol_id:
        return contract.symbol_id.rsplit(".", 1)[-1]
    parts = contract.id.split(".")
    return parts[-2] if len(parts) >= 2 else contract.id


def active_contract(contracts: Iterable[Contract], symbol: str) -> Contract | None:
    """The active contract of a product given by its symbol, exchange ticker or root."""
    wanted = symbol.strip().upper()
    wanted = ROOT_ALIASES.get(wanted, wanted)
    for contract in contracts:
        if contract.active and root_of(contract).upper() == wanted:
            return contract
    return None
