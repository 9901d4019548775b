"""``WebSocket /ws/stream``: realtime events of the shared upstream stream, per client choice.

Clients send ``{"action": "subscribe"|"unsubscribe", "market_data": {...}, "user_data": {...}}``
and receive ``{"event_type": ..., "data": ...}`` messages.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import Any, Final

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from tradeforge_proto.core import jsoncodec
from tradeforge_proto.core.errors import TradeForgeError
from tradeforge_proto.core.models import AccountId
from tradeforge_proto.core.subscriptions import Channel, Subscription

from .fanout import Fanout, FanoutClient

__all__ = [
    "BEARER_PROTOCOL",
    "CLOSE_TOO_SLOW",
    "BadMessage",
    "Request",
    "parse_request",
    "stream_router",
]

CLOSE_TOO_SLOW: Final = 1013
BEARER_PROTOCOL: Final = "tradeforge.bearer"
"""The subprotocol a browser offers first, with its token as the second."""
MAX_CONTRACT_ID: Final = 100  # characters; gateway contract ids are about 16
MARKET_TYPES: Final = {"QUOTE": Channel.QUOTES, "DEPTH": Channel.DEPTH, "TRADE": Channel.TRADES}
USER_TYPES: Final = {
    "ORDER_UPDATE": Channel.ORDERS,
    "POSITION_UPDATE": Channel.POSITIONS,
    "USER_TRADE": Channel.FILLS,
}
ACCOUNT_UPDATE: Final = "ACCOUNT_UPDATE"


class BadMessage(ValueError):
    """A client message the service cannot act on."""


class Request:
    """One parsed client message."""

    def __init__(
        self, action: str, subscriptions: set[Subscription], accounts: set[AccountId]
    ) -> None:
        self.action = action
        self.subscriptions = subscriptions
        self.accounts = accounts


def _section(message: dict[str, Any], name: str, ids: str) -> tuple[list[Any], list[str]]:
    part = message.get(name)
    if part is None:
        return [], []
    if not isinstance(part, dict):
        raise BadMessage(f"{name} must be an object")
    keys, types = part.get(ids, []), part.get("data_types", [])
    if not isinstance(keys, list) or not isinstance(types, list):
        raise BadMessage(f"{name}.{ids} and {name}.data_types must be lists")
    if not all(isinstance(t, str) for t in types):
        raise BadMessage(f"{name}.data_types must be strings")
    return keys, types


def _both_named(name: str, ids: str, keys: list[Any], types: list[str]) -> None:
    """A section names what to stream and for what, or nothing at all."""
    if keys and not types:
        raise BadMessage(f"{name}.data_types is empty: name what to stream")
    if types and not keys:
        raise BadMessage(f"{name}.{ids} is empty: name what to stream it for")


def _shown(value: object) -> str:
    """A client's value quoted in an error, cut short: errors never echo a whole message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _account_id(value: object) -> AccountId:
    """A positive account id, as a JSON integer or a string of digits."""
    number: object = value
    if isinstance(value, str):
        digits = value.strip()
        number = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else 0
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**63:
        return number
    raise BadMessage(f"invalid account id {_shown(value)}")


def _contract_id(value: object) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_CONTRACT_ID and value.isprintable():
        return value
    raise BadMessage(f"invalid contract id {_shown(value)}")


def parse_request(text: object) -> Request:
    """The subscriptions a client message asks for; BadMessage says what is wrong with it."""
    if not isinstance(text, str):
        raise BadMessage("messages must be JSON text")
    try:
        message = jsoncodec.raw_loads(text)
    except jsoncodec.JSONDecodeError:
        raise BadMessage("the message is not JSON (or nests too deeply)") from None
    if not isinstance(message, dict):
        raise BadMessage("the message must be a JSON object")
    action = message.get("action")
    if action not in ("subscribe", "unsubscribe"):
        raise BadMessage(f"unknown action {_shown(action)}: 'subscribe' or 'unsubscribe'")
    subscriptions: set[Subscription] = set()
    accounts: set[AccountId] = set()
    contracts, market_types = _section(message, "market_data", "provider_contract_ids")
    for data_type in market_types:
        if data_type not in MARKET_TYPES:
            raise BadMessage(f"unknown market data type {_shown(data_type)}")
    contract_ids = [_contract_id(c) for c in contracts]
    _both_named("market_data", "provider_contract_ids", contract_ids, market_types)
    for contract_id in contract_ids:
        subscriptions.update(Subscription(MARKET_TYPES[t], contract_id) for t in market_types)
    account_keys, user_types = _section(message, "user_data", "provider_account_ids")
    for data_type in user_types:
        if data_type not in USER_TYPES and data_type != ACCOUNT_UPDATE:
            raise BadMessage(f"unknown user data type {_shown(data_type)}")
    account_ids = [_account_id(a) for a in account_keys]
    _both_named("user_data", "provider_account_ids", account_ids, user_types)
    for account_id in account_ids:
        for data_type in user_types:
            if data_type == ACCOUNT_UPDATE:
                accounts.add(account_id)
            else:
                subscriptions.add(Subscription(USER_TYPES[data_type], account_id))
    if not subscriptions and not accounts:
        raise BadMessage(f"nothing to {action}: give market_data or user_data")
    return Request(action, subscriptions, accounts)


def _accounts_of(request: Request) -> set[AccountId]:
    """Every account a request names, for its user channels or its account updates."""
    named = {int(s.key) for s in request.subscriptions if not s.is_market and s.key is not None}
    return named | request.accounts


def _token_of(websocket: WebSocket) -> tuple[str, str | None]:
    """The token a client sent, and the subprotocol to accept it with.

    A program sends ``Authorization: Bearer``; a browser, which cannot set headers on a
    WebSocket, offers the subprotocols ``[BEARER_PROTOCOL, token]`` (the service accepts the
    first, so no URL ever carries the token); ``?token=`` is taken too.
    """
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), None
    offered = list(websocket.scope.get("subprotocols", ()))
    if offered[:1] == [BEARER_PROTOCOL] and len(offered) == 2:
        return str(offered[1]), BEARER_PROTOCOL
    return websocket.query_params.get("token", ""), None


def _error(message: str) -> dict[str, Any]:
    return {"event_type": "ERROR", "data": {"message": message}}


async def _write(websocket: WebSocket, client: FanoutClient, scope: anyio.CancelScope) -> None:
    """Drain the client's queue to the socket; close with 1013 once it overflowed."""
    try:
        while True:
            batch = await client.next_batch()
            if client.overflowed:
                await websocket.close(CLOSE_TOO_SLOW, "client too slow")
                return
            for text in batch:
                await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the peer is gone; the reader notices too
    finally:
        scope.cancel()


async def _read(websocket: WebSocket, fanout: Fanout, client: FanoutClient) -> None:
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000), received.get("reason"))
        text = received.get("text")
        try:
            request = parse_request(text)
        except BadMessage as exc:
            client.reply(_error(str(exc)))
            continue
        try:
            if request.action == "subscribe":
                unknown = _accounts_of(request) - await fanout.known_accounts()
                if unknown:
                    shown = ", ".join(map(str, sorted(unknown)))
                    client.reply(_error(f"no such account for this login: {shown}"))
                    continue
                await fanout.change(
                    client, add=request.subscriptions, add_accounts=request.accounts
                )
            else:
                await fanout.change(
                    client, remove=request.subscriptions, remove_accounts=request.accounts
                )
        except TradeForgeError as exc:
            client.reply(_error(str(exc)))
            continue
        done = "SUBSCRIBED_ACK" if request.action == "subscribe" else "UNSUBSCRIBED_ACK"
        client.reply({"event_type": done, "data": client.summary()})


def stream_router(fanout: Callable[[], Fanout | None], token: str) -> APIRouter:
    """The WebSocket route; ``fanout()`` is the running app's shared stream."""
    expected = token.encode()
    router = APIRouter()

    @router.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        given, subprotocol = _token_of(websocket)
        if not secrets.compare_digest(given.encode(), expected):
            await websocket.close(status.WS_1008_POLICY_VIOLATION, "unauthorized")
            return
        shared = fanout()
        if shared is None:
            await websocket.close(status.WS_1011_INTERNAL_ERROR, "service is not running")
            return
        await websocket.accept(subprotocol)
        client = shared.join()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_write, websocket, client, group.cancel_scope)
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await _read(websocket, shared, client)
                group.cancel_scope.cancel()
        finally:
            await shared.leave(client)

    return router
