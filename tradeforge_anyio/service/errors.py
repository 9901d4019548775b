"""How library errors become HTTP answers: never a 500 for what the provider or network did."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from tradeforge_proto.core.errors import (
    AuthenticationError,
    BarsCapExceeded,
    FeatureDisabled,
    LocalProtocolError,
    OrderRejected,
    OrderUncertain,
    ProviderError,
    RateBudgetSpent,
    RateLimited,
    RemoteProtocolError,
    ServerError,
    TradeForgeError,
    ValidationFailed,
)

from ..net import TransportError
from .schemas import ErrorOut, ProviderErrorOut, UncertainOut, ValidationErrorOut

MAX_ECHO: Final = 100
"""Characters of a refused value quoted back in a validation error."""


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def _retry_after(seconds: float | None) -> dict[str, str]:
    """The Retry-After header: whole seconds, at least one (one when the wait is unknown)."""
    wait = 1 if seconds is None else max(1, math.ceil(seconds))
    return {"Retry-After": str(wait)}


def _provider_body(exc: ProviderError) -> ProviderErrorOut:
    order_id = exc.order_id if isinstance(exc, OrderRejected) else None
    return ProviderErrorOut(
        detail=str(exc),
        provider_code=exc.code,
        provider_code_name=exc.code_name,
        message=exc.message,
        order_id=order_id,
    )


def _validation_detail(exc: ValidationFailed) -> list[dict[str, Any]]:
    if not exc.errors:
        return [{"loc": ["body"], "msg": exc.message or str(exc), "type": "provider_validation"}]
    return [
        {"loc": ["body", field], "msg": " ".join(messages), "type": "provider_validation"}
        for field, messages in sorted(exc.errors.items())
    ]


def _bars_cap_detail(exc: BarsCapExceeded) -> list[dict[str, Any]]:
    msg = (
        f"the window holds more than {exc.cap:,} bars, the most one request may return: "
        f"narrow the window (start, end) or pass limit (at most {exc.cap})"
    )
    return [{"loc": ["query"], "msg": msg, "type": "bars_cap_exceeded"}]


def error_response(exc: TradeForgeError) -> JSONResponse:
    """The answer for one library error."""
    if isinstance(exc, OrderUncertain):
        uncertain = UncertainOut(
            detail=str(exc),
            change=None if exc.change is None else exc.change.name,
            account_id=exc.account_id,
            custom_tag=exc.custom_tag,
            order_id=exc.order_id,
            contract_id=exc.contract_id,
            size=exc.size,
            sent_at=exc.sent_at,
        )
        return _json(503, uncertain)
    if isinstance(exc, ValidationFailed):
        return _json(422, {"detail": _validation_detail(exc)})
    if isinstance(exc, BarsCapExceeded):
        return _json(422, {"detail": _bars_cap_detail(exc)})
    if isinstance(exc, LocalProtocolError):
        issue = {"loc": ["request"], "msg": str(exc), "type": "value_error"}
        return _json(422, {"detail": [issue]})
    if isinstance(exc, FeatureDisabled):
        return _json(403, ErrorOut(detail=str(exc)))
    if isinstance(exc, RateLimited):
        return _json(429, _provider_body(exc), _retry_after(exc.retry_after))
    if isinstance(exc, RateBudgetSpent):
        failure = ProviderErrorOut(detail=str(exc))
        return _json(429, failure, _retry_after(exc.retry_after))
    if isinstance(exc, AuthenticationError | ServerError):
        return _json(502, _provider_body(exc))
    if isinstance(exc, ProviderError):
        missing = (exc.code_name or "").endswith("NotFound")
        return _json(404 if missing else 409, _provider_body(exc))
    if isinstance(exc, TransportError | RemoteProtocolError):
        failure = ProviderErrorOut(detail=str(exc))
        return _json(502, failure)
    return _json(500, ErrorOut(detail="internal error"))


async def handle_library_error(request: Request, exc: Exception) -> Response:
    """Exception handler for every ``TradeForgeError``."""
    if not isinstance(exc, TradeForgeError):
        raise exc
    return error_response(exc)


def _text(value: str) -> str:
    """``value`` with lone surrogates escaped, so that it encodes as UTF-8."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _short(value: str) -> str:
    return _text(value if len(value) <= MAX_ECHO else f"{value[: MAX_ECHO - 3]}...")


def _echo(value: object) -> object:
    """A refused value as JSON can carry it: non-finite and long numbers become short text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        digits = repr(value)
        return value if len(digits) <= 20 else f"{digits[:17]}..."
    return _short(value if isinstance(value, str) else repr(value))


def _issue(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error as ``ValidationIssue``, quoting a scalar input (containers are not)."""
    loc = [part if isinstance(part, int) else _short(str(part)) for part in error.get("loc", ())]
    msg = str(error.get("msg", "invalid value"))
    context = error.get("ctx") or {}
    if error.get("type") == "json_invalid" and "error" in context:
        msg = f"{msg}: {context['error']}"
    issue: dict[str, Any] = {"type": str(error.get("type")), "loc": loc, "msg": _text(msg)}
    given = error.get("input")
    if not isinstance(given, Mapping | list | tuple):
        issue["input"] = _echo(given)
    return issue


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    """422 for a request that does not fit the API, whatever values it holds (NaN, 10**400)."""
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:  # not JSON at all: 400, as documented, with where it broke
        where = broken.get("loc", ())[-1:]
        at = f" at character {where[0]}" if where and isinstance(where[0], int) else ""
        reason = str((broken.get("ctx") or {}).get("error") or broken.get("msg", ""))
        return _json(400, ErrorOut(detail=f"the body is not valid JSON{at}: {reason}"))
    return JSONResponse({"detail": [_issue(error) for error in errors]}, status_code=422)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    403: {"model": ErrorOut, "description": "Feature disabled for this provider"},
    404: {
        "model": ProviderErrorOut,
        "description": "No such path, or the provider knows no such account, contract or order",
    },
    409: {"model": ProviderErrorOut, "description": "The provider refused the request"},
    422: {"model": ValidationErrorOut, "description": "The request does not fit the API"},
    429: {
        "model": ProviderErrorOut,
        "description": "Rate budget spent (ours or the provider's); see Retry-After",
    },
    502: {"model": ProviderErrorOut, "description": "The provider failed or refused our login"},
    503: {
        "model": ErrorOut,
        "description": "The service is starting or stopping, or at its connection limit",
    },
}
BAD_BODY_RESPONSE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not readable JSON"},
}
BODY_LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "The body is larger than the service accepts"},
    415: {"model": ErrorOut, "description": "The body is not sent as application/json"},
}
UNCERTAIN_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": UncertainOut,
        "description": (
            "Sent, outcome unknown: reconcile by custom_tag (a body without `status` means the"
            " service is starting or stopping and nothing was sent)"
        ),
    },
}
