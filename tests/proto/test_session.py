"""The token lifecycle, driven by a fake clock."""

from __future__ import annotations

import math

import pytest

from tradeforge_proto.core.errors import ConfigurationError, LocalProtocolError
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.session import AuthNeed, TokenSession, TokenState, bearer

T0 = 1_700_000_000.0
HOUR = 3600.0
TOKEN = "eyJhbGciOi.secret-token-value"


class TestConfiguration:
    def test_defaults(self) -> None:
        session = TokenSession()
        assert session.lifetime == 24 * HOUR
        assert session.refresh_margin == HOUR
        assert session.token is None
        assert session.expires_at is None
        assert session.obtained_at is None

    @pytest.mark.parametrize("lifetime", [0.0, -1.0, math.nan, math.inf])
    def test_lifetime_must_be_positive(self, lifetime: float) -> None:
        with pytest.raises(ConfigurationError, match="lifetime"):
            TokenSession(lifetime=lifetime, refresh_margin=0.0)

    @pytest.mark.parametrize("margin", [-1.0, 24 * HOUR, 25 * HOUR, math.nan])
    def test_margin_must_be_below_the_lifetime(self, margin: float) -> None:
        with pytest.raises(ConfigurationError, match="refresh_margin"):
            TokenSession(refresh_margin=margin)

    def test_token_up_front_needs_now(self) -> None:
        with pytest.raises(LocalProtocolError, match="obtained"):
            TokenSession(token=Secret(TOKEN))

    def test_token_up_front_counts_as_obtained_at_now(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        assert session.token == Secret(TOKEN)
        assert session.obtained_at == T0
        assert session.expires_at == T0 + 24 * HOUR


class TestStates:
    def test_missing_needs_login(self) -> None:
        session = TokenSession()
        assert session.state(T0) is TokenState.MISSING
        assert session.need(T0) is AuthNeed.LOGIN

    def test_lifecycle_boundaries(self) -> None:
        session = TokenSession()
        session.token_obtained(Secret(TOKEN), T0)
        assert session.state(T0) is TokenState.VALID
        assert session.need(T0) is AuthNeed.NONE
        assert session.state(T0 + 23 * HOUR - 0.001) is TokenState.VALID
        assert session.state(T0 + 23 * HOUR) is TokenState.REFRESH_DUE
        assert session.need(T0 + 23 * HOUR) is AuthNeed.REFRESH
        assert session.state(T0 + 24 * HOUR - 0.001) is TokenState.REFRESH_DUE
        assert session.state(T0 + 24 * HOUR) is TokenState.EXPIRED
        assert session.need(T0 + 24 * HOUR) is AuthNeed.LOGIN

    def test_zero_margin_never_asks_for_a_refresh(self) -> None:
        session = TokenSession(lifetime=100.0, refresh_margin=0.0, token=Secret(TOKEN), now=T0)
        assert session.need(T0 + 99.999) is AuthNeed.NONE
        assert session.need(T0 + 100.0) is AuthNeed.LOGIN

    def test_new_token_restarts_the_clock(self) -> None:
        session = TokenSession(token=Secret("old"), now=T0)
        session.token_obtained(Secret("new"), T0 + 23.5 * HOUR)
        assert session.token == Secret("new")
        assert session.need(T0 + 24 * HOUR) is AuthNeed.NONE
        assert session.expires_at == T0 + 47.5 * HOUR

    def test_clock_before_the_token_still_counts_as_valid(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        assert session.state(T0 - HOUR) is TokenState.VALID

    def test_empty_token_is_refused(self) -> None:
        with pytest.raises(LocalProtocolError, match="empty"):
            TokenSession().token_obtained(Secret(""), T0)

    def test_non_finite_time_is_refused(self) -> None:
        with pytest.raises(LocalProtocolError, match="finite"):
            TokenSession().token_obtained(Secret(TOKEN), math.nan)


class TestForgetting:
    def test_unauthorized_means_login(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        session.unauthorized()
        assert session.token is None
        assert session.need(T0) is AuthNeed.LOGIN

    def test_refresh_failed_means_login(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        session.refresh_failed()
        assert session.state(T0 + 23.5 * HOUR) is TokenState.MISSING
        assert session.need(T0 + 23.5 * HOUR) is AuthNeed.LOGIN

    def test_clear(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        session.clear()
        assert session.token is None
        assert session.expires_at is None

    def test_stale_token_does_not_forget_a_newer_one(self) -> None:
        session = TokenSession(token=Secret("new"), now=T0)
        session.unauthorized(Secret("old"))
        session.refresh_failed(Secret("old"))
        assert session.token == Secret("new")
        session.unauthorized(Secret("new"))
        assert session.token is None

    def test_refresh_failed_with_the_current_token(self) -> None:
        session = TokenSession(token=Secret("current"), now=T0)
        session.refresh_failed(Secret("current"))
        assert session.need(T0) is AuthNeed.LOGIN


class TestAuthorize:
    def test_adds_the_bearer_header(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        request = HttpRequest("POST", "/x", (("Content-Type", "application/json"),))
        authorized = session.authorize(request)
        assert authorized.header("authorization") == f"Bearer {TOKEN}"
        assert authorized.header("content-type") == "application/json"
        assert request.header("authorization") is None

    def test_replaces_an_older_bearer(self) -> None:
        request = HttpRequest("POST", "/x", (("Authorization", "Bearer old"),))
        authorized = bearer(request, Secret("new"))
        assert authorized.headers == (("Authorization", "Bearer new"),)

    def test_without_token(self) -> None:
        with pytest.raises(LocalProtocolError, match="log in"):
            TokenSession().authorize(HttpRequest("POST", "/x"))

    def test_bearer_refuses_an_empty_token(self) -> None:
        with pytest.raises(LocalProtocolError, match="empty"):
            bearer(HttpRequest("POST", "/x"), Secret(""))


class TestSecrecy:
    def test_repr_and_str_never_show_the_token(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        for text in (repr(session), str(session), f"{session!r}"):
            assert TOKEN not in text
            assert "secret-token" not in text
        assert "<hidden>" in repr(session)

    def test_repr_without_token(self) -> None:
        assert "token=None" in repr(TokenSession())

    def test_authorized_request_repr_masks_the_token(self) -> None:
        session = TokenSession(token=Secret(TOKEN), now=T0)
        assert TOKEN not in repr(session.authorize(HttpRequest("POST", "/x")))
