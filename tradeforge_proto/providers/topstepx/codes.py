"""The gateway's per-endpoint error codes.

Each endpoint numbers its failures on its own (code 5 of Order/place is not code 5 of
Position/closeContract), so every endpoint has its own enum. Member names are the gateway's own.
Unknown codes are kept as ``UNKNOWN_<n>`` members.
"""

from __future__ import annotations

from ...core.enums import OpenIntEnum


class LoginErrorCode(OpenIntEnum):
    """Auth/loginKey and Auth/loginApp."""

    Success = 0
    UserNotFound = 1
    PasswordVerificationFailed = 2
    InvalidCredentials = 3
    AppNotFound = 4
    AppVerificationFailed = 5
    InvalidDevice = 6
    AgreementsNotSigned = 7
    UnknownError = 8
    ApiSubscriptionNotFound = 9
    ApiKeyAuthenticationDisabled = 10


class ValidateErrorCode(OpenIntEnum):
    """Auth/validate."""

    Success = 0
    InvalidSession = 1
    SessionNotFound = 2
    ExpiredToken = 3
    UnknownError = 4


class LogoutErrorCode(OpenIntEnum):
    """Auth/logout."""

    Success = 0
    InvalidSession = 1
    UnknownError = 2


class SearchErrorCode(OpenIntEnum):
    """Account/search, Contract/search and Contract/available: success is the only code."""

    Success = 0


class SearchContractByIdErrorCode(OpenIntEnum):
    """Contract/searchById."""

    Success = 0
    ContractNotFound = 1


class RetrieveBarErrorCode(OpenIntEnum):
    """History/retrieveBars."""

    Success = 0
    ContractNotFound = 1
    UnitInvalid = 2
    UnitNumberInvalid = 3
    LimitInvalid = 4


class AccountSearchErrorCode(OpenIntEnum):
    """Order/search, Order/searchOpen, Order/v2/query, Position/searchOpen and Trade/search."""

    Success = 0
    AccountNotFound = 1


class SearchOrderByIdErrorCode(OpenIntEnum):
    """Order/searchById."""

    Success = 0
    OrderNotFound = 1


class PlaceOrderErrorCode(OpenIntEnum):
    """Order/place. Code 2 is the catch-all rejection; the reason is in the message."""

    Success = 0
    AccountNotFound = 1
    OrderRejected = 2
    InsufficientFunds = 3
    AccountViolation = 4
    OutsideTradingHours = 5
    OrderPending = 6
    UnknownError = 7
    ContractNotFound = 8
    ContractNotActive = 9
    AccountRejected = 10


class CancelOrderErrorCode(OpenIntEnum):
    """Order/cancel."""

    Success = 0
    AccountNotFound = 1
    OrderNotFound = 2
    Rejected = 3
    Pending = 4
    UnknownError = 5
    AccountRejected = 6


class ModifyOrderErrorCode(OpenIntEnum):
    """Order/modify."""

    Success = 0
    AccountNotFound = 1
    OrderNotFound = 2
    Rejected = 3
    Pending = 4
    UnknownError = 5
    AccountRejected = 6
    ContractNotFound = 7


class ClosePositionErrorCode(OpenIntEnum):
    """Position/closeContract."""

    Success = 0
    AccountNotFound = 1
    PositionNotFound = 2
    ContractNotFound = 3
    ContractNotActive = 4
    OrderRejected = 5
    OrderPending = 6
    UnknownError = 7
    AccountRejected = 8


class PartialClosePositionErrorCode(OpenIntEnum):
    """Position/partialCloseContract (numbering shifted against closeContract from 5 on)."""

    Success = 0
    AccountNotFound = 1
    PositionNotFound = 2
    ContractNotFound = 3
    ContractNotActive = 4
    InvalidCloseSize = 5
    OrderRejected = 6
    OrderPending = 7
    UnknownError = 8
    AccountRejected = 9
