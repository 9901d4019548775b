"""The error hierarchy shared by every provider and runtime.

``LocalProtocolError`` means the caller misused the API; ``RemoteProtocolError`` means the peer sent
something that breaks the protocol. Everything a provider *answers* (a business rejection, a
validation failure, 401, 429, 5xx) is a ``ProviderError`` carrying the provider's own code and text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rules.checks import Verdict
    from .operations import Change


class TradeForgeError(Exception):
    """Base class of every error raised by TradeForge."""


class ConfigurationError(TradeForgeError):
    """Settings are missing or contradictory."""


class ProtocolError(TradeForgeError):
    """A protocol rule was broken, by us or by the peer."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol or the provider does not allow."""


class BarsCapExceeded(LocalProtocolError):
    """A bar request would gather more bars than the cap of one call."""

    def __init__(self, cap: int, reason: str) -> None:
        self.cap = cap
        super().__init__(
            f"{reason} the cap of {cap:,} bars per call: narrow the window, "
            "pass a smaller limit, or raise max_bars"
        )


class RiskRejected(LocalProtocolError):
    """A risk guard refused an order before it was sent; ``verdict`` holds the rule and figures."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        figures = ", ".join(
            f"{label} {format(value.normalize(), 'f')}"
            for label, value in (
                ("limit", verdict.limit),
                ("current", verdict.current),
                ("after", verdict.after),
            )
            if value is not None
        )
        rule = "no rule could be judged" if verdict.rule is None else verdict.rule.value
        detail = f"{rule}: {figures}" if figures else rule
        super().__init__(f"order refused by the risk guard ({detail}): {verdict.message}")


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or unexpected."""


class FeatureDisabled(TradeForgeError):
    """A feature known to be unreliable on this provider was used without opting in."""


class ProviderError(TradeForgeError):
    """The provider answered, and the answer was a failure.

    ``code`` and ``code_name`` are the endpoint's own error code (each endpoint has its own
    numbering), ``message`` is the provider's text, ``status`` the HTTP status.
    """

    def __init__(
        self,
        message: str | None,
        *,
        endpoint: str,
        status: int,
        code: int | None = None,
        code_name: str | None = None,
    ) -> None:
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.code_name = code_name
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.code is None and 200 <= self.status < 300 and self.message:
            return f"{self.message} (answer of {self.endpoint})"  # a success that lacked it
        parts = [f"{self.endpoint}:"]
        if self.code is not None:
            parts.append(f"{self.code_name or 'error'} ({self.code})")
        else:
            parts.append(f"HTTP {self.status}")
        if self.message:
            parts.append(f"- {self.message}")
        return " ".join(parts)


class NoActiveContract(ProviderError):
    """The provider's catalogue of tradeable contracts holds no active one for a symbol."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        super().__init__(
            f"no active contract for {symbol}", endpoint="the contract catalogue", status=200
        )


class AuthenticationError(ProviderError):
    """Credentials or token were refused (HTTP 401, or a failed login or validate)."""


class OrderRejected(ProviderError):
    """The provider refused to place an order; it may still have created one (``order_id``)."""

    def __init__(
        self,
        message: str | None,
        *,
        endpoint: str,
        status: int,
        code: int | None = None,
        code_name: str | None = None,
        order_id: int | None = None,
    ) -> None:
        self.order_id = order_id
        super().__init__(message, endpoint=endpoint, status=status, code=code, code_name=code_name)


class ValidationFailed(ProviderError):
    """The provider rejected the request body (HTTP 400); ``errors`` maps fields to messages."""

    def __init__(
        self,
        message: str | None,
        *,
        endpoint: str,
        status: int,
        errors: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.errors = dict(errors)
        super().__init__(message, endpoint=endpoint, status=status)

    def _describe(self) -> str:
        text = super()._describe()
        if self.errors:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(self.errors.items()))
            text = f"{text} [{details}]"
        return text


class RateLimited(ProviderError):
    """The provider answered 429; ``retry_after`` is its hint in seconds, when it gave one."""

    def __init__(
        self, message: str | None, *, endpoint: str, status: int, retry_after: float | None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, endpoint=endpoint, status=status)


class RateBudgetSpent(TradeForgeError):
    """Our own rate budget would hold the call longer than allowed; nothing was sent.

    ``retry_after`` is how many seconds until the budget (or a provider penalty) lets it go.
    """

    def __init__(self, bucket: str, retry_after: float) -> None:
        self.bucket = bucket
        self.retry_after = retry_after
        super().__init__(f"rate budget of {bucket!r} is spent: retry in {retry_after:.1f} s")


class ServerError(ProviderError):
    """The provider failed (HTTP 5xx); the request may or may not have been processed."""


class OrderUncertain(TradeForgeError):
    """A state-changing request was sent but its outcome is unknown.

    It carries what reconciling needs: what the request did (``change``), the account, the
    order's ``custom_tag`` and ``order_id`` where it has them, the contract, the size of a partial
    close, the request itself, when it was sent and when the client stopped waiting for its
    answer (``given_up_at``). Never retry blindly: reconcile it.
    """

    def __init__(
        self,
        operation: str,
        *,
        account_id: int,
        custom_tag: str | None,
        contract_id: str | None,
        sent_at: datetime | None,
        cause: BaseException | None = None,
        change: Change | None = None,
        order_id: int | None = None,
        size: int | None = None,
        request: object | None = None,
        given_up_at: datetime | None = None,
    ) -> None:
        self.operation = operation
        self.account_id = account_id
        self.custom_tag = custom_tag
        self.contract_id = contract_id
        self.sent_at = sent_at
        self.cause = cause
        self.change = change
        self.order_id = order_id
        self.size = size
        self.request = request
        self.given_up_at = given_up_at
        reason = f": {cause}" if cause is not None else ""
        tag = f", custom_tag={custom_tag!r}" if custom_tag else ""
        order = f", order {order_id}" if order_id is not None else ""
        super().__init__(
            f"outcome of {operation} for account {account_id}{order}{tag} is unknown{reason}; "
            "reconcile before trying again"
        )


class SubscriptionFailed(TradeForgeError):
    """The provider refused a subscription (an unknown contract, say), or the stream stopped."""

    def __init__(self, subscription: object, reason: str) -> None:
        self.subscription = subscription
        self.reason = reason
        super().__init__(f"{subscription} was refused: {reason}")


class SubscriptionTimeout(TradeForgeError):
    """A subscription was not acknowledged in time; it stays wanted and is sent on connection."""

    def __init__(self, subscription: object, timeout: float) -> None:
        self.subscription = subscription
        self.timeout = timeout
        super().__init__(
            f"{subscription} was not acknowledged within {timeout:g}s; "
            "it stays wanted and is sent when the hub connects"
        )


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def single_error(
    group: BaseExceptionGroup[BaseException], cancelled: type[BaseException]
) -> BaseException | None:
    """The one exception an exception group stands for once its cancellations are left out, or
    None when it holds several: task groups wrap what a block raised, and callers should see the
    library's own exception, not a group."""
    found: list[BaseException] = []
    for leaf in _leaves(group):
        if not isinstance(leaf, cancelled) and all(leaf is not seen for seen in found):
            found.append(leaf)
    return found[0] if len(found) == 1 else None
