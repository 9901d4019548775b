"""The bearer-token lifecycle as pure state: when to log in, when to refresh, when to start over.

Time is passed in as ``now`` (UNIX epoch seconds). The token is held as a ``Secret`` and never shows
in a repr.
"""

from __future__ import annotations

import enum
import math

from .core.errors import ConfigurationError, LocalProtocolError
from .core.operations import HttpRequest
from .core.secret import Secret

__all__ = ["AuthNeed", "TokenSession", "TokenState", "bearer"]

DEFAULT_LIFETIME = 24 * 3600.0
DEFAULT_REFRESH_MARGIN = 3600.0


class TokenState(enum.Enum):
    """Where the current token stands at a given time."""

    MISSING = "missing"
    VALID = "valid"
    REFRESH_DUE = "refresh_due"  # still valid, but within the refresh margin before expiry
    EXPIRED = "expired"


class AuthNeed(enum.Enum):
    """What must happen before an authenticated request can be sent."""

    NONE = "none"
    LOGIN = "login"
    REFRESH = "refresh"


def bearer(request: HttpRequest, token: Secret) -> HttpRequest:
    """``request`` with an ``Authorization: Bearer`` header carrying ``token``."""
    if not token:
        raise LocalProtocolError("cannot authorize a request with an empty token")
    return request.with_header("Authorization", f"Bearer {token.reveal()}")


class TokenSession:
    """Holds one bearer token and when it was obtained, and says what the next request needs.

    A token counts as obtained when its request was sent, so its expiry is never overestimated.
    """

    __slots__ = ("_lifetime", "_obtained_at", "_refresh_margin", "_token")

    def __init__(
        self,
        *,
        lifetime: float = DEFAULT_LIFETIME,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        token: Secret | None = None,
        now: float | None = None,
    ) -> None:
        if not math.isfinite(lifetime) or lifetime <= 0:
            raise ConfigurationError(f"lifetime must be a positive number, got {lifetime!r}")
        if not math.isfinite(refresh_margin) or not 0 <= refresh_margin < lifetime:
            raise ConfigurationError(
                f"refresh_margin must be >= 0 and below the lifetime, got {refresh_margin!r}"
            )
        self._lifetime = float(lifetime)
        self._refresh_margin = float(refresh_margin)
        self._token: Secret | None = None
        self._obtained_at: float | None = None
        if token is not None:
            if now is None:
                raise LocalProtocolError("a token given up front needs the time it was obtained")
            self.token_obtained(token, now)

    @property
    def lifetime(self) -> float:
        """How long a token stays valid after it is obtained, in seconds."""
        return self._lifetime

    @property
    def refresh_margin(self) -> float:
        """How long before expiry a refresh becomes due, in seconds."""
        return self._refresh_margin

    @property
    def token(self) -> Secret | None:
        """The current token, or None when there is none."""
        return self._token

    @property
    def obtained_at(self) -> float | None:
        """When the current token was obtained, or None."""
        return self._obtained_at

    @property
    def expires_at(self) -> float | None:
        """When the current token stops being valid, or None when there is no token."""
        if self._obtained_at is None:
            return None
        return self._obtained_at + self._lifetime

    def state(self, now: float) -> TokenState:
        """The state of the token at ``now``."""
        expires_at = self.expires_at
        if expires_at is None:
            return TokenState.MISSING
        if now >= expires_at:
            return TokenState.EXPIRED
        if now >= expires_at - self._refresh_margin:
            return TokenState.REFRESH_DUE
        return TokenState.VALID

    def need(self, now: float) -> AuthNeed:
        """What an authenticated request sent at ``now`` needs first."""
        state = self.state(now)
        if state is TokenState.VALID:
            return AuthNeed.NONE
        if state is TokenState.REFRESH_DUE:
            return AuthNeed.REFRESH
        return AuthNeed.LOGIN

    def authorize(self, request: HttpRequest) -> HttpRequest:
        """``request`` with the current token as its bearer; LocalProtocolError without one."""
        if self._token is None:
            raise LocalProtocolError("no token: log in first")
        return bearer(request, self._token)

    def token_obtained(self, token: Secret, now: float) -> None:
        """A login or refresh sent at ``now`` gave ``token``."""
        if not token:
            raise LocalProtocolError("the token is empty")
        if not math.isfinite(now):
            raise LocalProtocolError(f"now must be a finite number of seconds, got {now!r}")
        self._token = token
        self._obtained_at = float(now)

    def _forget(self, token: Secret | None) -> None:
        if token is None or token == self._token:
            self._token = None
            self._obtained_at = None

    def refresh_failed(self, token: Secret | None = None) -> None:
        """A refresh failed: forget the token so that the next need is LOGIN.

        With ``token``, only if it is still the current one (another call may have replaced it).
        """
        self._forget(token)

    def unauthorized(self, token: Secret | None = None) -> None:
        """A 401 came back: the token is no good, so the next need is LOGIN.

        With ``token`` (the one the refused request carried), only if it is still the current one.
        """
        self._forget(token)

    def clear(self) -> None:
        """Forget the token (logout)."""
        self._forget(None)

    def __repr__(self) -> str:
        token = "None" if self._token is None else "<hidden>"
        return (
            f"TokenSession(token={token}, expires_at={self.expires_at!r}, "
            f"lifetime={self._lifetime!r}, refresh_margin={self._refresh_margin!r})"
        )
