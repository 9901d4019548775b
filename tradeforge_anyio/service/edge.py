"""ASGI middleware at the service's edge: what is refused before any body is read or work is done.

``RequireToken`` answers 401 before routing, so a caller without the token never gets a body
read or parsed. ``BodyGate`` answers 415 for a body that is not JSON on a write and 413 for a
declared length over the cap (Starlette's ``RequestBodyLimitMiddleware`` counts streamed bodies).
``CancelOnDisconnect`` cancels a read's handling when its caller goes away, so abandoned work
(pages of bars, upstream calls) stops with it; changes always run to their end.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection
from email.message import Message as MimeMessage
from typing import Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "UNAUTHORIZED",
    "AllowedHosts",
    "BodyGate",
    "CancelOnDisconnect",
    "RequireToken",
    "host_name",
    "is_json",
    "token_matches",
]

UNAUTHORIZED: Final = "missing or invalid bearer token"
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_METHODS: Final = frozenset({"GET", "HEAD"})


def token_matches(authorization: str | None, expected: bytes) -> bool:
    """True when an ``Authorization`` header is ``Bearer <expected>`` (constant-time compare)."""
    scheme, _, credentials = (authorization or "").partition(" ")
    given = credentials.strip().encode()
    return scheme.lower() == "bearer" and secrets.compare_digest(given, expected)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str, **headers: str
) -> None:
    """Answer with the service's error body, ``{"detail": ...}``, and close the connection: the
    body was never read, and reading it only to discard it would cost what refusing saved."""
    headers["Connection"] = "close"
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response(scope, receive, send)


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port, lower-cased (IPv6 keeps its brackets)."""
    name = header.strip().lower()
    if name.startswith("["):
        return name[: name.find("]") + 1] if "]" in name else name
    return name.partition(":")[0]


class AllowedHosts:
    """Answers 400 to a request whose ``Host`` is not one this service is reached by.

    A web page can make a browser send requests to 127.0.0.1 under a name it controls (DNS
    rebinding); naming the hosts stops those before anything else runs.
    """

    def __init__(self, app: ASGIApp, *, hosts: Collection[str]) -> None:
        self.app = app
        self._hosts = frozenset(host_name(h) for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if host_name(Headers(scope=scope).get("host", "")) in self._hosts:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        detail = "the Host header names a host this service does not answer for"
        await _refuse(scope, receive, send, 400, detail)


class RequireToken:
    """Answers 401 to every HTTP request without the bearer token, except ``public`` paths.

    WebSocket connections pass: their route checks the token itself and closes with 1008.
    """

    def __init__(self, app: ASGIApp, *, token: str, public: Collection[str]) -> None:
        self.app = app
        self._expected = token.encode()
        self._public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        if token_matches(Headers(scope=scope).get("authorization"), self._expected):
            await self.app(scope, receive, send)
            return
        await _refuse(scope, receive, send, 401, UNAUTHORIZED, **{"WWW-Authenticate": "Bearer"})


def _declared_length(headers: Headers) -> int | None:
    """The Content-Length as a number (None when absent or unreadable)."""
    text = headers.get("content-length", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or bool(_declared_length(headers))


def is_json(content_type: str | None) -> bool:
    """True for ``application/json``, with or without parameters such as a charset."""
    if not content_type:
        return False
    parsed = MimeMessage()
    parsed["content-type"] = content_type
    return parsed.get_content_type() == "application/json"


class BodyGate:
    """Refuses, before reading it, a body over ``max_body`` bytes (413) or a write's non-JSON
    body (415): a browser page may post ``text/plain`` to 127.0.0.1 without asking first."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = _declared_length(headers)
        if length is not None and length > self.max_body:
            detail = f"the body is {length} bytes, more than the {self.max_body} allowed"
            await _refuse(scope, receive, send, 413, detail)
            return
        writes = scope["method"] in WRITE_METHODS
        if writes and _has_body(headers) and not is_json(headers.get("content-type")):
            detail = "a request body must be JSON sent as Content-Type: application/json"
            await _refuse(scope, receive, send, 415, detail)
            return
        await self.app(scope, receive, send)


class CancelOnDisconnect:
    """Runs each read (GET, HEAD) in a cancel scope that ends when its client disconnects.

    Changes run to their end whoever is listening: cancelling a placement in flight would only
    turn a known outcome into an unknown one.

    A pump task is the only reader of the server's ``receive``: it passes the request's body on
    to the app and, once the body is complete, waits for ``http.disconnect``. Bodies are bounded
    by the body limit in front, so what the pump holds ahead of the app is too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READ_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            await self._run(scope, receive, send)
        except BaseExceptionGroup as group:
            if len(group.exceptions) != 1:
                raise
            raise group.exceptions[0] from None

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        inbox, outbox = _inbox()
        answered = False

        async def send_tracked(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        async with anyio.create_task_group() as group:
            cancel = group.cancel_scope

            async def pump() -> None:
                with inbox:
                    while True:
                        try:
                            message = await receive()
                        except Exception as exc:  # the body limit's 413, for the app to raise
                            inbox.send_nowait(exc)
                            return
                        if message["type"] == "http.disconnect":
                            if not answered:
                                cancel.cancel()
                            return
                        inbox.send_nowait(message)

            group.start_soon(pump)
            await self.app(scope, _reader(outbox), send_tracked)
            cancel.cancel()


def _inbox() -> tuple[
    MemoryObjectSendStream[Message | Exception], MemoryObjectReceiveStream[Message | Exception]
]:
    return anyio.create_memory_object_stream[Message | Exception](math.inf)


def _reader(outbox: MemoryObjectReceiveStream[Message | Exception]) -> Receive:
    """The app's ``receive``: the pumped messages, then a disconnect once the pump stopped."""

    async def receive() -> Message:
        try:
            item = await outbox.receive()
        except anyio.EndOfStream:
            return {"type": "http.disconnect"}
        if isinstance(item, Exception):
            raise item
        return item

    return receive
