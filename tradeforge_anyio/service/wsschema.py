"""The JSON Schema of every ``/ws/stream`` message, derived from the models the service sends.

Derived rather than written out, so the document cannot drift from what ``event_message`` and the
direct replies produce: one definition per model, one message form per ``event_type``.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Final

import attrs
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tradeforge_proto.core.errors import TradeForgeError
from tradeforge_proto.core.models import Position

from .fanout import EVENT_TYPES, SLOW_CONSUMER, event_payload
from .ws import ACCOUNT_UPDATE, MARKET_TYPES, USER_TYPES

__all__ = ["SCHEMA_PATH", "install_stream_schema", "stream_schema"]

SCHEMA_PATH: Final = "/ws/stream/schema.json"
_REF: Final = "#/$defs/"
_DECIMAL: Final = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?(E[-+]?[0-9]+)?$",
    "description": "an exact decimal number as text",
}
_UTC_TIME: Final = {
    "type": "string",
    "format": "date-time",
    "pattern": "Z$",
    "description": "ISO 8601, UTC, ending in Z",
}
_PLAIN: Final[dict[Any, dict[str, Any]]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    Decimal: _DECIMAL,
    datetime: _UTC_TIME,
    date: {"type": "string", "format": "date"},
    time: {"type": "string", "format": "time"},
    timedelta: {"type": "number", "description": "seconds"},
    type(None): {"type": "null"},
    TradeForgeError: {"type": "string", "description": "what went wrong"},
}


class _Definitions:
    """The ``$defs`` of the document, filled as models are met."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def of(self, hint: Any) -> dict[str, Any]:
        """The schema of a value of type ``hint`` as ``fanout.to_json`` writes it."""
        if hint in _PLAIN:
            return _PLAIN[hint]
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(arg) for arg in typing.get_args(hint)]}
        if origin in (tuple, list, frozenset, set):
            return {"type": "array", "items": self.of(typing.get_args(hint)[0])}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self._named(hint, lambda: _enum(hint))
        if isinstance(hint, type) and attrs.has(hint):
            return self._named(hint, lambda: self._model(hint))
        raise TypeError(f"no JSON Schema for {hint!r}")  # a new model field type: teach it here

    def _named(self, cls: type, build: typing.Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # a placeholder, so a model that refers to itself ends
            self.defs[name] = build()
        return {"$ref": _REF + name}

    def _model(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        fields = attrs.fields(cls)
        return {
            "type": "object",
            "description": _first_line(cls.__doc__),
            "properties": {f.name: self.of(hints[f.name]) for f in fields},
            "required": [f.name for f in fields],
            "additionalProperties": False,
        }


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0].replace("``", "`")


def _enum(cls: type[enum.Enum]) -> dict[str, Any]:
    names = {"enum": list(cls.__members__)}
    if not hasattr(cls, "is_known"):
        return names
    # An open enumeration keeps a value the provider added later as UNKNOWN_<n>.
    return {"anyOf": [names, {"type": "string", "pattern": "^UNKNOWN_-?[0-9]+$"}]}


def _message(event_type: str, data: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"event_type": {"const": event_type}, "data": data},
        "required": ["event_type", "data"],
        "additionalProperties": False,
    }


def _server_messages(defs: _Definitions) -> list[dict[str, Any]]:
    messages = []
    for cls, event_type in EVENT_TYPES.items():
        data = defs.of(event_payload(cls))
        messages.append(_message(event_type, data, _first_line(cls.__doc__)))
    # A flat position has no side, over REST and here alike.
    side = defs.defs[Position.__name__]["properties"]["side"]
    side["anyOf"] = [{"$ref": side.pop("$ref")}, {"type": "null"}]
    names = sorted([*MARKET_TYPES, *USER_TYPES, ACCOUNT_UPDATE])
    held = {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {"enum": names},
            "uniqueItems": True,
        },
    }
    summary = {
        "type": "object",
        "description": "everything the client is subscribed to once the request is done",
        "properties": {"market_data": held, "user_data": held},
        "required": ["market_data", "user_data"],
        "additionalProperties": False,
    }
    counts = {"type": "integer", "minimum": 0}
    messages += [
        _message("SUBSCRIBED_ACK", summary, "a subscribe request was done"),
        _message("UNSUBSCRIBED_ACK", summary, "an unsubscribe request was done"),
        _message(
            "ERROR",
            {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
                "additionalProperties": False,
            },
            "a request the service could not act on; the connection stays open",
        ),
        _message(
            SLOW_CONSUMER,
            {
                "type": "object",
                "properties": {"queued": counts, "limit": counts},
                "required": ["queued", "limit"],
                "additionalProperties": False,
            },
            "the client's queue passed half its limit: read faster or be closed (1013)",
        ),
    ]
    return messages


def _client_message() -> dict[str, Any]:
    ids = {"type": "array", "minItems": 1}
    contract = {"type": "string", "minLength": 1, "maxLength": 100}
    account = {
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": "^ *[0-9]{1,18} *$"},
        ]
    }

    def section(key: str, item: dict[str, Any], names: list[str]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                key: {**ids, "items": item},
                "data_types": {**ids, "items": {"enum": names}},
            },
            "required": [key, "data_types"],
        }

    return {
        "type": "object",
        "description": "subscribe to, or unsubscribe from, market data and account data",
        "properties": {
            "action": {"enum": ["subscribe", "unsubscribe"]},
            "market_data": section("provider_contract_ids", contract, sorted(MARKET_TYPES)),
            "user_data": section(
                "provider_account_ids", account, sorted([*USER_TYPES, ACCOUNT_UPDATE])
            ),
        },
        "required": ["action"],
        "anyOf": [{"required": ["market_data"]}, {"required": ["user_data"]}],
    }


@cache
def stream_schema() -> dict[str, Any]:
    """The document: ``$defs/ClientMessage`` is what a client sends, ``$defs/ServerMessage``
    each message the service sends, one form per ``event_type``."""
    defs = _Definitions()
    server = _server_messages(defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "TradeForge /ws/stream messages",
        "description": (
            "Clients send ClientMessage as JSON text; the service sends ServerMessage, each "
            "{event_type, data}. Prices are exact decimal text, times ISO 8601 UTC ending in Z."
        ),
        "anyOf": [{"$ref": _REF + "ClientMessage"}, {"$ref": _REF + "ServerMessage"}],
        "$defs": {
            "ClientMessage": _client_message(),
            "ServerMessage": {"oneOf": server},
            **dict(sorted(defs.defs.items())),
        },
    }


def install_stream_schema(app: FastAPI) -> str:
    """Serve the document at SCHEMA_PATH, beside ``/openapi.json``; answer its path (public,
    like the OpenAPI document: it describes the service, it holds no data)."""

    async def schema() -> JSONResponse:
        return JSONResponse(stream_schema(), headers={"Cache-Control": "no-cache"})

    app.add_api_route(SCHEMA_PATH, schema, include_in_schema=False)
    return SCHEMA_PATH
