"""The audit trail: each state-changing request, once answered, as one log line and a journal row.

A pure ASGI middleware outside the token check, so refused attempts are kept too. It reads a copy
of the request body (bounded by the service's body limit, which runs inside it) and of a small
answer to pick out the fields a trader looks for (account, contract, order id, custom tag, the
error's detail); headers, and so the token, are never read.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .journal import Journal, JournalEntry, outcome_of

log = logging.getLogger("tradeforge.audit")

CHANGES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEPT: Final = 64 * 1024  # bytes of a body or an answer read for its fields
MAX_DETAIL: Final = 300
_NUMBER: Final = re.compile(r"/\d+(?=/|$)")
_ORDER_PATH: Final = re.compile(r"^/orders/(\d{1,18})(?:/|$)")


class AuditTrail:
    """Writes one structured ``tradeforge.audit`` log line and one journal row per change."""

    def __init__(self, app: ASGIApp, *, journal: Journal | None) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = bytearray()
        answer = bytearray()
        status = 500  # unless an answer starts: the app failed

        async def reading() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request) < MAX_KEPT:
                request.extend(message.get("body", b"")[: MAX_KEPT - len(request)])
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(answer) < MAX_KEPT:
                answer.extend(message.get("body", b"")[: MAX_KEPT - len(answer)])
            await send(message)

        try:
            await self.app(scope, reading, sending)
        finally:
            latency = (time.perf_counter() - started) * 1e3
            self._keep(_entry(scope, status, latency, bytes(request), bytes(answer)))

    def _keep(self, entry: JournalEntry) -> None:
        log.info(
            "%s %s -> %s (%s) %.1f ms",
            entry.method,
            entry.route,
            entry.status,
            entry.outcome,
            entry.latency_ms,
            extra={"audit": entry.to_json()},
        )
        if self.journal is not None:
            try:
                self.journal.record(entry)
            except Exception:  # the trail must not stop trading; the log line above is kept
                log.exception("the order journal could not be written")


def _fields(data: bytes) -> dict[str, Any]:
    """The JSON object in ``data``, or nothing (a body that is not one is simply not read)."""
    try:
        value = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value[:MAX_DETAIL] if isinstance(value, str) else None


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _entry(
    scope: Scope, status: int, latency: float, request: bytes, answer: bytes
) -> JournalEntry:
    path: str = scope["path"]
    sent, got = _fields(request), _fields(answer)
    query = dict(
        part.split("=", 1)
        for part in scope.get("query_string", b"").decode("latin-1").split("&")
        if "=" in part
    )
    in_query = query.get("account_id", "")
    in_path = _ORDER_PATH.match(path)
    detail = got.get("detail") if status >= 400 else None
    if detail is not None and not isinstance(detail, str):
        detail = orjson.dumps(detail).decode()  # a validation error's list of problems
    client = scope.get("client")
    return JournalEntry(
        time=datetime.now(UTC),
        client=f"{client[0]}:{client[1]}" if client else "unknown",
        method=scope["method"],
        route=_NUMBER.sub("/{id}", path)[:MAX_DETAIL],
        status=status,
        latency_ms=round(latency, 3),
        outcome=outcome_of(status),
        account_id=_first(
            _int(sent.get("account_id")),
            _int(got.get("account_id")),
            int(in_query) if in_query.isdigit() and len(in_query) <= 18 else None,
        ),
        contract_id=_first(_text(sent.get("contract_id")), _text(got.get("contract_id"))),
        order_id=_first(_int(got.get("order_id")), int(in_path.group(1)) if in_path else None),
        custom_tag=_first(_text(got.get("custom_tag")), _text(sent.get("custom_tag"))),
        detail=_text(detail),
    )
