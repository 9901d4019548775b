"""Provider-agnostic operations: an HTTP request description plus a parser of its response.

A provider turns a generic call (place an order, search contracts) into an ``Operation``. Runtimes
send ``operation.request`` however they like and hand the answer to ``operation.parse``; they never
need to know which provider they serve.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import attrs

from .errors import LocalProtocolError

T = TypeVar("T")
U = TypeVar("U")

Headers = tuple[tuple[str, str], ...]


class RateBucket(enum.Enum):
    """Which client-side rate budget a request draws from."""

    GENERAL = "general"
    HISTORY = "history"


class Safety(enum.Enum):
    """Whether a request may be repeated without changing anything."""

    READ = "read"  # retrying is harmless
    WRITE = "write"  # may change state: never retried, an unknown outcome is OrderUncertain
    AUTH = "auth"  # obtains or refreshes credentials


class Change(enum.Enum):
    """What a state-changing request does, so an unknown outcome can be looked up by its kind."""

    PLACE = "place"
    CANCEL = "cancel"
    MODIFY = "modify"
    CLOSE = "close"
    PARTIAL_CLOSE = "partial_close"


def find_header(headers: Headers, name: str) -> str | None:
    """The value of the first header called ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


def _check_header(name: str, value: str) -> None:
    if any(c in name for c in "\r\n:") or not name or any(c in value for c in "\r\n"):
        raise LocalProtocolError(f"invalid header {name!r}")


@attrs.frozen
class HttpRequest:
    """What to send: method, path (with any query), headers and an already-encoded body."""

    method: str
    path: str
    headers: Headers = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of the first header called ``name`` (case-insensitive), or None."""
        return find_header(self.headers, name)

    def with_header(self, name: str, value: str) -> HttpRequest:
        """A copy with ``name`` set to ``value``, replacing any header of that name."""
        _check_header(name, value)
        lowered = name.lower()
        kept = tuple((k, v) for k, v in self.headers if k.lower() != lowered)
        return attrs.evolve(self, headers=(*kept, (name, value)))

    def __repr__(self) -> str:
        # Never show credentials: authorization values are masked.
        shown = tuple(
            (k, "********" if k.lower() == "authorization" else v) for k, v in self.headers
        )
        return f"HttpRequest(method={self.method!r}, path={self.path!r}, headers={shown!r})"


@attrs.frozen
class HttpResponse:
    """What came back: status, headers (names lower-cased) and the whole body."""

    status: int
    headers: Headers = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of the first header called ``name`` (case-insensitive), or None."""
        return find_header(self.headers, name)


def normalize_headers(headers: Mapping[str, str] | Headers) -> Headers:
    """Headers as a tuple of (lower-case name, value) pairs."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(k).lower(), str(v)) for k, v in items)


@attrs.frozen
class Operation(Generic[T]):
    """A request to send and the function that turns its response into a typed result.

    ``name`` identifies the endpoint in errors; ``safety`` says whether it may be retried;
    ``bucket`` which rate budget it uses; ``authenticated`` whether it needs a bearer token;
    ``context`` carries what an uncertain outcome needs to be reconciled: ``change`` (a
    ``Change``), ``account_id``, and as the change has them ``order_id``, ``contract_id``,
    ``custom_tag``, ``size`` and ``request``.
    """

    name: str
    request: HttpRequest
    parser: Callable[[HttpResponse], T] = attrs.field(repr=False)
    safety: Safety = Safety.READ
    bucket: RateBucket = RateBucket.GENERAL
    authenticated: bool = True
    context: Mapping[str, object] = attrs.field(factory=dict, repr=False)

    @property
    def retryable(self) -> bool:
        """True when repeating the request cannot change state twice."""
        return self.safety is not Safety.WRITE

    def parse(self, status: int, headers: Mapping[str, str] | Headers = (), body: bytes = b"") -> T:
        """Turn a response into the result, or raise a typed error."""
        return self.parser(HttpResponse(status, normalize_headers(headers), body))

    def parse_response(self, response: HttpResponse) -> T:
        """Same as ``parse`` for an ``HttpResponse`` already in hand."""
        return self.parser(response)

    def map(self, fn: Callable[[T], U]) -> Operation[U]:
        """The same request with ``fn`` applied to the parsed result."""
        parser = self.parser
        return Operation(
            name=self.name,
            request=self.request,
            parser=lambda response: fn(parser(response)),
            safety=self.safety,
            bucket=self.bucket,
            authenticated=self.authenticated,
            context=self.context,
        )
