"""Reading the gateway's answers: the JSON envelope, HTTP error statuses and error bodies.

Every failure becomes a typed error carrying the endpoint's own error code name and message:
HTTP 200 with ``success: false``, 400 validation problems, 401, 429 (with Retry-After), 5xx and
bodies that are not JSON. Nothing here raises KeyError or returns a silent None.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from ...core.enums import OpenIntEnum
from ...core.errors import (
    AuthenticationError,
    ProviderError,
    RateLimited,
    RemoteProtocolError,
    ServerError,
    ValidationFailed,
)
from ...core.jsoncodec import loads
from ...core.operations import HttpResponse

_EXCERPT: Final = 200
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

ErrorFactory = Callable[..., ProviderError]


def excerpt(body: bytes) -> str | None:
    """A short, printable piece of a body for an error message (None when empty)."""
    text = body[: _EXCERPT * 4].decode("utf-8", "replace").strip()
    if not text:
        return None
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def retry_after(response: HttpResponse) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), when present."""
    value = response.header("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    # An HTTP-date only means something relative to the server's own Date header.
    when = _http_date(value)
    reference = _http_date(response.header("date") or "")
    if when is None or reference is None:
        return None
    return max(0.0, (when - reference).total_seconds())


def _http_date(text: str) -> datetime | None:
    """Parse the IMF-fixdate form of HTTP dates ("Sun, 06 Nov 1994 08:49:37 GMT")."""
    # Parsed by hand: strptime's %a and %b follow the process locale, HTTP dates do not.
    parts = text.split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        return None
    try:
        hour, minute, second = (int(p) for p in parts[4].split(":"))
        return datetime(
            int(parts[3]),
            _MONTHS.index(parts[2]) + 1,
            int(parts[1]),
            hour,
            minute,
            second,
            tzinfo=UTC,
        )
    except (ValueError, OverflowError):
        return None


def _message_of(body: bytes) -> str | None:
    """The gateway's message inside an error body: JSON envelope, problem title, or raw text."""
    try:
        data = loads(body)
    except RemoteProtocolError:
        return excerpt(body)
    if isinstance(data, dict):
        for key in ("errorMessage", "message", "title", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
        return None
    if isinstance(data, str):
        return data or None
    return excerpt(body)


def _validation_errors(body: bytes) -> tuple[str | None, dict[str, tuple[str, ...]]]:
    try:
        data = loads(body)
    except RemoteProtocolError:
        return excerpt(body), {}
    if not isinstance(data, dict):
        return excerpt(body), {}
    errors: dict[str, tuple[str, ...]] = {}
    raw = data.get("errors")
    if isinstance(raw, dict):
        for field, messages in raw.items():
            if isinstance(messages, list):
                errors[str(field)] = tuple(str(m) for m in messages)
            elif messages is not None:
                errors[str(field)] = (str(messages),)
    title = data.get("title") or data.get("errorMessage")
    return (str(title) if title else None), errors


def check_status(endpoint: str, response: HttpResponse) -> None:
    """Raise the typed error for any HTTP status other than 2xx."""
    status = response.status
    if 200 <= status < 300:
        return
    if status == 401:
        raise AuthenticationError(
            _message_of(response.body) or "token missing, expired or invalid",
            endpoint=endpoint,
            status=status,
        )
    if status == 429:
        raise RateLimited(
            _message_of(response.body) or "rate limit exceeded",
            endpoint=endpoint,
            status=status,
            retry_after=retry_after(response),
        )
    if status == 400:
        title, errors = _validation_errors(response.body)
        raise ValidationFailed(
            title or "request rejected", endpoint=endpoint, status=status, errors=errors
        )
    if status >= 500:
        raise ServerError(_message_of(response.body), endpoint=endpoint, status=status)
    raise ProviderError(_message_of(response.body), endpoint=endpoint, status=status)


def read_envelope(
    endpoint: str,
    codes: type[OpenIntEnum],
    response: HttpResponse,
    *,
    error: ErrorFactory = ProviderError,
) -> dict[str, Any]:
    """The JSON object of a successful answer; raises the typed error for every failure."""
    check_status(endpoint, response)
    if not response.body.strip():
        raise RemoteProtocolError(f"{endpoint}: empty response body (HTTP {response.status})")
    try:
        data = loads(response.body)
    except RemoteProtocolError:
        content_type = response.header("content-type") or "no content type"
        raise RemoteProtocolError(
            f"{endpoint}: response is not JSON ({content_type}): {excerpt(response.body)!r}"
        ) from None
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"{endpoint}: expected a JSON object, got {type(data).__name__}")
    success = data.get("success")
    raw_code = data.get("errorCode", 0)
    if isinstance(raw_code, bool) or not isinstance(raw_code, int | None):
        raise RemoteProtocolError(f"{endpoint}: errorCode is not an integer: {raw_code!r}")
    if not isinstance(success, bool):
        raise RemoteProtocolError(f"{endpoint}: response has no boolean 'success' field")
    if success and not raw_code:
        return data
    message = data.get("errorMessage")
    text = message if isinstance(message, str) and message else None
    if not raw_code:  # success: false without a code: nothing more specific to report
        raise error(text or "request failed", endpoint=endpoint, status=response.status)
    code = codes(raw_code)
    raise error(
        text, endpoint=endpoint, status=response.status, code=int(code), code_name=code.name
    )
