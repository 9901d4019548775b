"""The call machine: runs one ``Operation`` through auth, rate limiting, retries and error mapping.

Runtimes only do I/O: loop on ``call.next_step(now)``; for Send write the request and report the
answer (``response_received``) or the failure (``transport_failed``); for Sleep wait until
``until``; Done gives the value; Failed gives the error to raise. A WRITE is never repeated except
once after a 401, and an unknown outcome of a WRITE fails with ``OrderUncertain``.
"""

from __future__ import annotations

import enum
import math
import random
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import attrs

from .core.errors import (
    AuthenticationError,
    ConfigurationError,
    LocalProtocolError,
    OrderUncertain,
    ProviderError,
    RateBudgetSpent,
    RateLimited,
    RemoteProtocolError,
    ServerError,
)
from .core.operations import Change, HttpRequest, HttpResponse, Operation
from .core.secret import Secret
from .limits import RateLimiter
from .session import AuthNeed, TokenSession, bearer

__all__ = [
    "Authenticator",
    "Call",
    "CallState",
    "Done",
    "Failed",
    "RestCore",
    "RetryPolicy",
    "Send",
    "Sleep",
    "Step",
]

T = TypeVar("T")

_UNAUTHORIZED = 401


class Authenticator(Protocol):
    """Builds the operations that obtain a bearer token for a provider."""

    def login(self) -> Operation[Secret]:
        """An operation that logs in and gives a new token."""
        ...

    def refresh(self) -> Operation[Secret] | None:
        """An operation that exchanges the current (bearer) token for a new one, or None."""
        ...


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How often a retryable request is tried in all, and how long to back off between tries.

    ``max_rate_wait`` caps how long a call waits for the rate budget before it fails with
    ``RateBudgetSpent`` instead (None: wait as long as the budget says; servers set a cap).
    """

    max_attempts: int = attrs.field(default=3, validator=_at_least_one)
    base_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    max_rate_wait: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_non_negative)
    )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based): full jitter, capped."""
        if attempt < 1:
            raise LocalProtocolError(f"attempt numbers start at 1, got {attempt}")
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64))
        return ceiling * rng.random()


@attrs.frozen
class Send:
    """Write this request (already authorized) and report its answer."""

    request: HttpRequest


@attrs.frozen
class Sleep:
    """Wait until ``until`` (UNIX epoch seconds), then ask for the next step."""

    until: float


@attrs.frozen
class Done(Generic[T]):
    """The call succeeded with ``value``."""

    value: T


@attrs.frozen
class Failed:
    """The call failed; raise ``error``."""

    error: BaseException


Step: TypeAlias = Send | Sleep | Done[T] | Failed


class CallState(enum.Enum):
    """Where a call stands."""

    READY = "ready"  # next_step may be called
    AWAITING_RESPONSE = "awaiting_response"  # a Send was emitted: report its answer
    DONE = "done"
    FAILED = "failed"


class _Kind(enum.Enum):
    LOGIN = "login"
    REFRESH = "refresh"
    OPERATION = "operation"


@attrs.frozen
class _InFlight:
    """The request last handed to the runtime, and what it was for."""

    kind: _Kind
    operation: Operation[Any]
    sent_at: float
    token: Secret | None  # the bearer it carries


def _check_time(now: float) -> None:
    if not math.isfinite(now):
        raise LocalProtocolError(f"now must be a finite number of seconds, got {now!r}")


def _retry_after(error: RateLimited) -> float | None:
    """The server's Retry-After hint in seconds, when it gave a usable one."""
    hint = error.retry_after
    if hint is None or not math.isfinite(hint):
        return None
    return max(0.0, hint)


def _parse_token(operation: Operation[Secret], response: HttpResponse) -> Secret:
    token = operation.parse_response(response)
    if not token:
        raise RemoteProtocolError(f"{operation.name} gave an empty token")
    return token


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _as_int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_change(value: object) -> Change | None:
    return value if isinstance(value, Change) else None


def _as_text(value: object) -> str | None:
    return None if value is None else str(value)


def _utc(timestamp: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class Call(Generic[T]):
    """One operation on its way through auth, rate limiting and retries; made by ``RestCore``."""

    def __init__(self, core: RestCore, operation: Operation[T], now: float) -> None:
        _check_time(now)
        self._core = core
        self._operation = operation
        self._started_at = now
        self._clock = now
        self._in_flight: _InFlight | None = None
        self._outcome: Done[T] | Failed | None = None
        self._resume_at: float | None = None
        self._attempts = 0  # sends of the operation that count against max_attempts
        self._login_attempts = 0  # login sends since the last token was obtained
        self._refresh_tried = False
        self._reauthenticated = False  # the one retry after a 401 is used up
        self._resend_after_401 = False
        self._own_token: Secret | None = None  # the token this call obtained, if any
        self._budget_wait_from: float | None = None  # when it first waited for the rate budget

    @property
    def operation(self) -> Operation[T]:
        """The operation this call runs."""
        return self._operation

    @property
    def started_at(self) -> float:
        """When the call was started."""
        return self._started_at

    @property
    def attempts(self) -> int:
        """How many times the operation was sent, not counting the re-send after a 401."""
        return self._attempts

    @property
    def state(self) -> CallState:
        """Where the call stands."""
        if isinstance(self._outcome, Done):
            return CallState.DONE
        if isinstance(self._outcome, Failed):
            return CallState.FAILED
        if self._in_flight is not None:
            return CallState.AWAITING_RESPONSE
        return CallState.READY

    # --- What the runtime calls -------------------------------------------------------------

    def next_step(self, now: float) -> Step[T]:
        """What to do next: Send, Sleep, or the outcome (repeated if asked again)."""
        if self._outcome is not None:
            return self._outcome
        if self._in_flight is not None:
            raise LocalProtocolError("a request was sent: report its answer first")
        self._observe(now)
        if self._resume_at is not None:
            if now < self._resume_at:
                return Sleep(self._resume_at)
            self._resume_at = None
        try:
            kind, operation, token = self._prepare(now)
            request = operation.request if token is None else bearer(operation.request, token)
        except Exception as error:  # an authenticator that cannot build its request
            return self._fail(error)
        limiter = self._core.limiter
        ready = limiter.ready_at(operation.bucket, now)
        if ready > now:
            cap = self._core.policy.max_rate_wait
            if cap is not None:
                # The cap bounds the call's whole wait for the budget, however many turns it
                # loses to other calls taking the slot it was waiting for.
                if self._budget_wait_from is None:
                    self._budget_wait_from = now
                if ready - self._budget_wait_from > cap:
                    return self._fail(RateBudgetSpent(operation.bucket.value, ready - now))
            return Sleep(ready)
        limiter.acquire(operation.bucket, now)
        if kind is _Kind.LOGIN:
            self._login_attempts += 1
        elif kind is _Kind.REFRESH:
            self._refresh_tried = True
        elif self._resend_after_401:
            self._resend_after_401 = False
        else:
            self._attempts += 1
        self._in_flight = _InFlight(kind, operation, now, token)
        return Send(request)

    def response_received(self, response: HttpResponse, now: float) -> None:
        """The answer to the last Send arrived."""
        flight = self._take_flight(now)
        if flight.kind is _Kind.LOGIN:
            self._login_answered(flight, response, now)
        elif flight.kind is _Kind.REFRESH:
            self._refresh_answered(flight, response, now)
        else:
            self._operation_answered(flight, response, now)

    def transport_failed(self, error: BaseException, *, request_sent: bool, now: float) -> None:
        """The last Send could not complete; ``request_sent`` says whether it may have left."""
        flight = self._take_flight(now)
        if flight.kind is _Kind.LOGIN:
            self._retry_login(error, now, None)
        elif flight.kind is _Kind.REFRESH:
            self._refresh_failed(flight)
        elif self._operation.retryable:
            self._retry_operation(error, now, None)
        elif request_sent:
            self._fail(self._uncertain(flight, error, now))
        else:
            self._fail(error)  # it never left: certainly not executed

    def abandon(self, cause: BaseException, *, request_sent: bool, now: float) -> BaseException:
        """The runtime gave up on the call (it was cancelled); the error describing the outcome.

        A write whose request may have left is OrderUncertain; anything else is ``cause``.
        """
        self._observe(now)
        flight = self._in_flight
        self._in_flight = None
        uncertain = (
            flight is not None
            and flight.kind is _Kind.OPERATION
            and request_sent
            and not self._operation.retryable
        )
        error = self._uncertain(flight, cause, now) if uncertain and flight else cause
        self._fail(error)
        return error

    # --- Internals --------------------------------------------------------------------------

    def _observe(self, now: float) -> None:
        """Take note of the clock; a backward jump moves a pending back-off back with it."""
        _check_time(now)
        if now < self._clock and self._resume_at is not None:
            self._resume_at -= self._clock - now
        self._clock = now

    def _take_flight(self, now: float) -> _InFlight:
        flight = self._in_flight
        if flight is None:
            raise LocalProtocolError("no request is awaiting an answer")
        self._observe(now)
        self._in_flight = None
        return flight

    def _prepare(self, now: float) -> tuple[_Kind, Operation[Any], Secret | None]:
        """The request to send next, and the bearer it needs."""
        operation = self._operation
        if not operation.authenticated:
            return _Kind.OPERATION, operation, None
        session = self._core.session
        need = session.need(now)
        if need is AuthNeed.NONE:
            return _Kind.OPERATION, operation, session.token
        if self._own_token is not None:
            return _Kind.OPERATION, operation, self._own_token
        authenticator = self._core.authenticator
        if need is AuthNeed.REFRESH and not self._refresh_tried:
            refresh = authenticator.refresh()
            if refresh is not None:
                return _Kind.REFRESH, refresh, session.token
        return _Kind.LOGIN, authenticator.login(), None

    def _fail(self, error: BaseException) -> Failed:
        outcome = Failed(error)
        self._outcome = outcome
        return outcome

    def _back_off(
        self, error: BaseException, now: float, attempt: int, retry_after: float | None
    ) -> None:
        """Wait before the next try; a server hint longer than ``max_rate_wait`` fails instead."""
        policy = self._core.policy
        cap = policy.max_rate_wait
        if retry_after is not None and cap is not None and retry_after > cap:
            self._fail(error)
            return
        wait = max(retry_after or 0.0, policy.backoff(attempt, self._core.rng))
        self._resume_at = now + wait

    def _penalize(self, error: RateLimited, operation: Operation[Any], now: float) -> float | None:
        retry_after = _retry_after(error)
        if retry_after is not None:
            self._core.limiter.penalize(operation.bucket, now + retry_after, now=now)
        return retry_after

    def _token_obtained(self, flight: _InFlight, token: Secret) -> None:
        self._core.session.token_obtained(token, flight.sent_at)
        self._own_token = token
        self._login_attempts = 0

    def _login_answered(self, flight: _InFlight, response: HttpResponse, now: float) -> None:
        try:
            token = _parse_token(flight.operation, response)
        except RateLimited as error:
            self._retry_login(error, now, self._penalize(error, flight.operation, now))
        except ServerError as error:
            self._retry_login(error, now, None)
        except Exception as error:  # refused credentials, or an answer that makes no sense
            self._fail(error)
        else:
            self._token_obtained(flight, token)

    def _retry_login(self, error: BaseException, now: float, retry_after: float | None) -> None:
        if self._login_attempts < self._core.policy.max_attempts:
            self._back_off(error, now, self._login_attempts, retry_after)
        else:
            self._fail(error)

    def _refresh_answered(self, flight: _InFlight, response: HttpResponse, now: float) -> None:
        try:
            token = _parse_token(flight.operation, response)
        except (ProviderError, RemoteProtocolError) as error:
            if isinstance(error, RateLimited):
                self._penalize(error, flight.operation, now)
            self._refresh_failed(flight)
        except Exception as error:
            self._fail(error)
        else:
            self._token_obtained(flight, token)

    def _refresh_failed(self, flight: _InFlight) -> None:
        """Forget the token that could not be refreshed; the next step logs in instead."""
        self._core.session.refresh_failed(flight.token)

    def _operation_answered(self, flight: _InFlight, response: HttpResponse, now: float) -> None:
        operation = self._operation
        try:
            value = operation.parse_response(response)
        except AuthenticationError as error:
            if error.status == _UNAUTHORIZED and operation.authenticated:
                self._unauthorized(flight, error)
            else:
                self._fail(error)
        except RateLimited as error:
            retry_after = self._penalize(error, operation, now)
            if operation.retryable:
                self._retry_operation(error, now, retry_after)
            else:
                self._fail(error)  # 429: certainly not executed, and a write is never repeated
        except ServerError as error:
            if operation.retryable:
                self._retry_operation(error, now, None)
            else:
                self._fail(self._uncertain(flight, error, now))
        except RemoteProtocolError as error:
            # An answer that cannot be read says nothing about whether a write happened.
            self._fail(error if operation.retryable else self._uncertain(flight, error, now))
        except Exception as error:  # any other refusal
            self._fail(error)
        else:
            self._outcome = Done(value)

    def _unauthorized(self, flight: _InFlight, error: AuthenticationError) -> None:
        """A 401: the server refused before executing; re-authenticate and send once more."""
        if self._reauthenticated:
            self._fail(error)
            return
        self._reauthenticated = True
        self._resend_after_401 = True
        self._own_token = None
        self._core.session.unauthorized(flight.token)

    def _retry_operation(self, error: BaseException, now: float, retry_after: float | None) -> None:
        if self._attempts < self._core.policy.max_attempts:
            self._back_off(error, now, self._attempts, retry_after)
        else:
            self._fail(error)

    def _uncertain(self, flight: _InFlight, cause: BaseException, now: float) -> OrderUncertain:
        """The error for a write whose outcome is unknown, with what reconciling needs."""
        context = self._operation.context
        return OrderUncertain(
            self._operation.name,
            account_id=_as_int(context.get("account_id")),
            custom_tag=_as_text(context.get("custom_tag")),
            contract_id=_as_text(context.get("contract_id")),
            sent_at=_utc(flight.sent_at),
            cause=cause,
            change=_as_change(context.get("change")),
            order_id=_as_int_or_none(context.get("order_id")),
            size=_as_int_or_none(context.get("size")),
            request=context.get("request"),
            given_up_at=_utc(now),
        )

    def __repr__(self) -> str:
        return (
            f"Call(operation={self._operation.name!r}, state={self.state.name}, "
            f"attempts={self._attempts})"
        )


class RestCore:
    """What every call of one client shares: authenticator, token session, rate limiter, policy."""

    __slots__ = ("_authenticator", "_limiter", "_policy", "_rng", "_session")

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        session: TokenSession | None = None,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._session = TokenSession() if session is None else session
        self._limiter = RateLimiter() if limiter is None else limiter
        self._policy = RetryPolicy() if policy is None else policy
        self._rng = random.Random() if rng is None else rng

    @property
    def authenticator(self) -> Authenticator:
        """Builds the login and refresh operations."""
        return self._authenticator

    @property
    def session(self) -> TokenSession:
        """The token shared by every call."""
        return self._session

    @property
    def limiter(self) -> RateLimiter:
        """The rate budgets shared by every call."""
        return self._limiter

    @property
    def policy(self) -> RetryPolicy:
        """How retryable requests are retried."""
        return self._policy

    @property
    def rng(self) -> random.Random:
        """The source of back-off jitter."""
        return self._rng

    def start(self, operation: Operation[T], now: float) -> Call[T]:
        """Begin running ``operation``; drive the returned call with ``next_step``."""
        return Call(self, operation, now)

    def token_for_hubs(self, now: float, *, force: bool = False) -> Secret | None:
        """The token a hub connection may use now, or None when a login must come first (run
        ``authenticator.login()`` and hand its token to ``token_obtained``); ``force`` says the
        hub refused the current one."""
        session = self._session
        current = session.token
        if current is None or force or session.need(now) is not AuthNeed.NONE:
            return None
        return current

    def token_obtained(self, token: Secret, now: float) -> None:
        """A login made outside a call gave ``token``: every call and hub uses it from now."""
        self._session.token_obtained(token, now)

    def __repr__(self) -> str:
        return f"RestCore(session={self._session!r}, policy={self._policy!r})"
