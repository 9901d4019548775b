"""The simulator's logins and tokens: JWT-shaped, 24 h by default, several valid at once.

The token table stays bounded: expired tokens are dropped as new ones are issued, and past
``max_tokens`` the oldest token makes room (its holder logs in again, as after an expiry).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Final

import attrs

DEFAULT_USERNAME: Final = "trader"
DEFAULT_API_KEY: Final = "tradeforge-sim-key"
MAX_TOKENS: Final = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@attrs.define
class TokenBook:
    """Issues and checks bearer tokens; a token is valid until it expires or is revoked.

    At most ``max_tokens`` are kept: each issue first drops the expired ones (a scan only once
    the soonest expiry has passed), then the oldest while the table is still full.
    """

    secret: bytes
    lifetime: float = 24 * 3600.0
    max_tokens: int = attrs.field(default=MAX_TOKENS, validator=attrs.validators.ge(1))
    _tokens: dict[str, tuple[str, float]] = attrs.field(factory=dict, repr=False)
    _issued: int = 0
    _soonest: float = math.inf  # no token expires before this

    def __len__(self) -> int:
        """How many tokens are kept (valid ones, and expired ones not yet dropped)."""
        return len(self._tokens)

    def issue(self, username: str, now: float) -> str:
        """A new token for ``username``; older tokens stay valid."""
        self.prune(now)
        while len(self._tokens) >= self.max_tokens:
            del self._tokens[next(iter(self._tokens))]
        self._issued += 1
        expires = now + self.lifetime
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": username, "exp": int(expires), "jti": self._issued}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{header}.{payload}.{_b64(mac)}"
        self._tokens[token] = (username, expires)
        self._soonest = min(self._soonest, expires)
        return token

    def prune(self, now: float) -> None:
        """Drop every token expired by ``now``."""
        if now < self._soonest:
            return
        self._tokens = {t: entry for t, entry in self._tokens.items() if now < entry[1]}
        self._soonest = min((expires for _, expires in self._tokens.values()), default=math.inf)

    def check(self, token: str | None, now: float) -> str | None:
        """The username behind a valid token, or None (unknown, revoked or expired)."""
        if not token:
            return None
        entry = self._tokens.get(token)
        if entry is None:
            return None
        username, expires = entry
        if now >= expires:
            del self._tokens[token]
            return None
        return username

    def revoke(self, token: str) -> bool:
        """End a token (logout); True when it was known."""
        return self._tokens.pop(token, None) is not None

    def expire_all(self, now: float) -> None:
        """Make every current token expired (a fault: tokens that die early)."""
        self.expire_in(0.0, now)

    def expire_in(self, seconds: float, now: float) -> None:
        """Cut every current token's remaining life to ``seconds``."""
        for token, (username, expires) in list(self._tokens.items()):
            self._tokens[token] = (username, min(expires, now + seconds))
        if self._tokens:
            self._soonest = min(self._soonest, now + seconds)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
