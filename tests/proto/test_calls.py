"""The call machine: auth, rate limiting, retries and error mapping, driven by a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.calls import (
    Call,
    CallState,
    Done,
    Failed,
    RestCore,
    RetryPolicy,
    Send,
    Sleep,
)
from tradeforge_proto.core.errors import (
    AuthenticationError,
    ConfigurationError,
    LocalProtocolError,
    OrderUncertain,
    ProviderError,
    RateBudgetSpent,
    RateLimited,
    RemoteProtocolError,
    ServerError,
    ValidationFailed,
)
from tradeforge_proto.core.operations import (
    HttpRequest,
    HttpResponse,
    Operation,
    RateBucket,
    Safety,
)
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.limits import DEFAULT_BUDGETS, RateBudget, RateLimiter
from tradeforge_proto.session import TokenSession

T0 = 1_700_000_000.0
HOUR = 3600.0
LOGIN_PATH = "/api/Auth/loginKey"
REFRESH_PATH = "/api/Auth/validate"
PLACE_PATH = "/api/Order/place"
SEARCH_PATH = "/api/Account/search"
BARS_PATH = "/api/History/retrieveBars"
ORDER_CONTEXT = {"account_id": 7, "custom_tag": "tf-1", "contract_id": "CON.F.US.MES.Z25"}


# --- Fakes ------------------------------------------------------------------------------------


def typed_parser(endpoint: str, on_ok: Callable[[HttpResponse], Any]) -> Callable[..., Any]:
    """A parser that maps a status to the result or to the typed error a provider would raise."""

    def parse(response: HttpResponse) -> Any:
        status = response.status
        if status == 200:
            return on_ok(response)
        if status == 400:
            raise ValidationFailed(
                "invalid", endpoint=endpoint, status=400, errors={"size": ("too big",)}
            )
        if status == 401:
            raise AuthenticationError("unauthorized", endpoint=endpoint, status=401)
        if status == 403:
            raise ProviderError("forbidden", endpoint=endpoint, status=403)
        if status == 429:
            hint = response.header("retry-after")
            raise RateLimited(
                None,
                endpoint=endpoint,
                status=429,
                retry_after=None if hint is None else float(hint),
            )
        if status >= 500:
            raise ServerError(None, endpoint=endpoint, status=status)
        raise RemoteProtocolError(f"{endpoint}: unexpected HTTP {status}")

    return parse


def ok_body(response: HttpResponse) -> str:
    if response.body == b"bug":
        raise ValueError("parser bug")
    if response.body == b"refused":
        raise AuthenticationError("rejected", endpoint="x", status=200, code=2)
    return response.body.decode() or "ok"


def read_op(
    path: str = SEARCH_PATH,
    *,
    bucket: RateBucket = RateBucket.GENERAL,
    authenticated: bool = True,
) -> Operation[str]:
    name = path.removeprefix("/api/")
    return Operation(
        name=name,
        request=HttpRequest("POST", path, (("Content-Type", "application/json"),), b"{}"),
        parser=typed_parser(name, ok_body),
        safety=Safety.READ,
        bucket=bucket,
        authenticated=authenticated,
    )


def write_op(context: Mapping[str, object] = ORDER_CONTEXT) -> Operation[str]:
    return Operation(
        name="Order/place",
        request=HttpRequest("POST", PLACE_PATH, (), b'{"accountId":7}'),
        parser=typed_parser("Order/place", ok_body),
        safety=Safety.WRITE,
        context=context,
    )


class FakeAuth:
    """Issues tok-1, tok-2... from a login, and rot-N from a refresh."""

    def __init__(self, *, can_refresh: bool = True) -> None:
        self.can_refresh = can_refresh
        self.issued = 0
        self.refreshed = 0
        self.broken = False

    def _login_ok(self, response: HttpResponse) -> Secret:
        if response.body == b"refused":
            raise AuthenticationError("bad key", endpoint="Auth/loginKey", status=200, code=3)
        if response.body == b"empty":
            return Secret("")
        if response.body == b"bug":
            raise ValueError("parser bug")
        self.issued += 1
        return Secret(f"tok-{self.issued}")

    def _refresh_ok(self, response: HttpResponse) -> Secret:
        if response.body == b"empty":
            return Secret("")
        if response.body == b"bug":
            raise ValueError("parser bug")
        self.refreshed += 1
        return Secret(f"rot-{self.refreshed}")

    def login(self) -> Operation[Secret]:
        if self.broken:
            raise ConfigurationError("no API key configured")
        return Operation(
            name="Auth/loginKey",
            request=HttpRequest("POST", LOGIN_PATH, (), b'{"userName":"u","apiKey":"k"}'),
            parser=typed_parser("Auth/loginKey", self._login_ok),
            safety=Safety.AUTH,
            authenticated=False,
        )

    def refresh(self) -> Operation[Secret] | None:
        if not self.can_refresh:
            return None
        return Operation(
            name="Auth/validate",
            request=HttpRequest("POST", REFRESH_PATH),
            parser=typed_parser("Auth/validate", self._refresh_ok),
            safety=Safety.AUTH,
        )


@attrs.frozen
class Lost:
    """A transport failure, before or after the request left."""

    sent: bool = True
    error: BaseException = attrs.field(factory=lambda: ConnectionResetError("reset by peer"))


Answer = HttpResponse | Lost


def reply(status: int = 200, body: bytes = b"", retry_after: float | None = None) -> HttpResponse:
    headers = () if retry_after is None else (("retry-after", str(retry_after)),)
    return HttpResponse(status, headers, body)


@attrs.define
class Trace:
    sends: list[tuple[float, HttpRequest]] = attrs.Factory(list)
    sleeps: list[tuple[float, float]] = attrs.Factory(list)  # (from, until)
    outcome: Any = None
    now: float = 0.0
    steps: int = 0

    @property
    def paths(self) -> list[str]:
        return [request.path for _, request in self.sends]

    def bearers(self, path: str) -> list[str | None]:
        return [
            request.header("Authorization") for _, request in self.sends if request.path == path
        ]

    @property
    def value(self) -> Any:
        assert isinstance(self.outcome, Done), self.outcome
        return self.outcome.value

    @property
    def error(self) -> BaseException:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error


def drive(
    call: Call[Any],
    answers: Iterable[Answer] | Callable[[HttpRequest], Answer],
    *,
    now: float = T0,
    latency: float = 0.25,
    max_steps: int = 500,
) -> Trace:
    """Run a call the way a runtime does, answering each Send from a script."""
    if callable(answers):
        script = answers
    else:
        pending = iter(list(answers))

        def script(_: HttpRequest) -> Answer:
            return next(pending)

    trace = Trace(now=now)
    for _ in range(max_steps):
        trace.steps += 1
        step = call.next_step(now)
        if isinstance(step, Send):
            trace.sends.append((now, step.request))
            answer = script(step.request)
            now += latency
            if isinstance(answer, Lost):
                call.transport_failed(answer.error, request_sent=answer.sent, now=now)
            else:
                call.response_received(answer, now)
        elif isinstance(step, Sleep):
            assert step.until > now
            trace.sleeps.append((now, step.until))
            now = step.until
        else:
            trace.outcome = step
            trace.now = now
            assert call.next_step(now) is step  # the outcome is stable
            return trace
    raise AssertionError("the call did not finish")


def make_core(
    *,
    token: str | None = "tok-0",
    obtained: float = T0,
    auth: FakeAuth | None = None,
    policy: RetryPolicy | None = None,
    limiter: RateLimiter | None = None,
    seed: int = 1,
) -> RestCore:
    session = TokenSession() if token is None else TokenSession(token=Secret(token), now=obtained)
    return RestCore(
        auth or FakeAuth(),
        session=session,
        limiter=limiter or RateLimiter(),
        policy=policy or RetryPolicy(),
        rng=random.Random(seed),
    )


# --- Retry policy -----------------------------------------------------------------------------


class TestRetryPolicy:
    def test_defaults(self) -> None:
        assert RetryPolicy() == RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=8.0)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_attempts": 0},
            {"max_attempts": True},
            {"base_delay": -0.1},
            {"max_delay": float("inf")},
            {"base_delay": float("nan")},
        ],
    )
    def test_validation(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ConfigurationError):
            RetryPolicy(**kwargs)

    def test_full_jitter_grows_and_is_capped(self) -> None:
        policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
        rng = random.Random(7)
        for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 8.0), (500, 8.0)]:
            delays = [policy.backoff(attempt, rng) for _ in range(200)]
            assert all(0.0 <= d <= ceiling for d in delays)
            assert max(delays) > ceiling * 0.9

    def test_deterministic_for_a_seed(self) -> None:
        policy = RetryPolicy()
        first = [policy.backoff(n, random.Random(3)) for n in range(1, 6)]
        assert first == [policy.backoff(n, random.Random(3)) for n in range(1, 6)]

    def test_attempt_starts_at_one(self) -> None:
        with pytest.raises(LocalProtocolError):
            RetryPolicy().backoff(0, random.Random())


# --- a. Authentication before the operation ----------------------------------------------------


class TestAuthentication:
    def test_login_when_missing_then_bearer_on_the_operation(self) -> None:
        core = make_core(token=None)
        trace = drive(core.start(read_op(), T0), [reply(), reply(body=b"accounts")])
        assert trace.paths == [LOGIN_PATH, SEARCH_PATH]
        assert trace.bearers(LOGIN_PATH) == [None]
        assert trace.bearers(SEARCH_PATH) == ["Bearer tok-1"]
        assert trace.value == "accounts"
        assert core.session.token == Secret("tok-1")
        assert core.session.obtained_at == T0  # when the login was sent

    def test_valid_token_goes_straight_to_the_operation(self) -> None:
        core = make_core(token="tok-0")
        trace = drive(core.start(read_op(), T0 + 60.0), [reply()], now=T0 + 60.0)
        assert trace.paths == [SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == ["Bearer tok-0"]

    def test_expired_token_logs_in_again(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 25 * HOUR)
        trace = drive(core.start(read_op(), T0), [reply(), reply()])
        assert trace.paths == [LOGIN_PATH, SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == ["Bearer tok-1"]

    def test_refresh_within_the_margin_uses_the_refresh_operation(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        trace = drive(core.start(read_op(), T0), [reply(), reply()])
        assert trace.paths == [REFRESH_PATH, SEARCH_PATH]
        assert trace.bearers(REFRESH_PATH) == ["Bearer tok-0"]
        assert trace.bearers(SEARCH_PATH) == ["Bearer rot-1"]
        assert core.session.token == Secret("rot-1")
        assert core.session.expires_at == T0 + 24 * HOUR

    @pytest.mark.parametrize(
        "failure",
        [reply(401), reply(500), reply(403), reply(body=b"empty"), Lost(sent=True), Lost(False)],
    )
    def test_refresh_failure_falls_back_to_login(self, failure: Answer) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        trace = drive(core.start(read_op(), T0), [failure, reply(), reply()])
        assert trace.paths == [REFRESH_PATH, LOGIN_PATH, SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == ["Bearer tok-1"]

    def test_refresh_429_penalizes_and_the_login_waits(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=5), reply(), reply()])
        assert trace.paths == [REFRESH_PATH, LOGIN_PATH, SEARCH_PATH]
        assert trace.sends[1][0] == T0 + 0.25 + 5.0

    def test_refresh_parser_bug_fails_the_call(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        trace = drive(core.start(read_op(), T0), [reply(body=b"bug")])
        assert isinstance(trace.error, ValueError)

    def test_refresh_is_tried_once_per_call(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        trace = drive(core.start(read_op(), T0), [reply(500), reply(500), reply(), reply()])
        assert trace.paths == [REFRESH_PATH, LOGIN_PATH, LOGIN_PATH, SEARCH_PATH]

    def test_without_refresh_a_due_token_is_replaced_by_a_login(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR, auth=FakeAuth(can_refresh=False))
        trace = drive(core.start(read_op(), T0), [reply(), reply()])
        assert trace.paths == [LOGIN_PATH, SEARCH_PATH]

    @pytest.mark.parametrize("answer", [reply(401), reply(body=b"refused"), reply(403)])
    def test_refused_login_fails_with_the_parser_error(self, answer: HttpResponse) -> None:
        core = make_core(token=None)
        trace = drive(core.start(write_op(), T0), [answer])
        assert trace.paths == [LOGIN_PATH]
        assert isinstance(trace.error, ProviderError)
        assert trace.error.endpoint == "Auth/loginKey"
        assert core.session.token is None

    def test_login_giving_an_empty_token_fails(self) -> None:
        core = make_core(token=None)
        trace = drive(core.start(read_op(), T0), [reply(body=b"empty")])
        assert isinstance(trace.error, RemoteProtocolError)
        assert core.session.token is None

    def test_login_parser_bug_fails(self) -> None:
        trace = drive(make_core(token=None).start(read_op(), T0), [reply(body=b"bug")])
        assert isinstance(trace.error, ValueError)

    def test_login_5xx_and_transport_are_retried_within_max_attempts(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(max_attempts=3))
        trace = drive(core.start(read_op(), T0), [reply(502), Lost(), reply(), reply()])
        assert trace.paths == [LOGIN_PATH, LOGIN_PATH, LOGIN_PATH, SEARCH_PATH]
        assert trace.value == "ok"

    def test_login_retries_exhausted(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(max_attempts=2))
        trace = drive(core.start(write_op(), T0), [reply(503), reply(503)])
        assert trace.paths == [LOGIN_PATH, LOGIN_PATH]
        assert isinstance(trace.error, ServerError)

    def test_login_transport_retries_exhausted(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(max_attempts=1))
        lost = Lost(sent=False)
        trace = drive(core.start(write_op(), T0), [lost])
        assert trace.error is lost.error

    def test_login_429_waits_for_retry_after(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(base_delay=0.0))
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=12), reply(), reply()])
        assert trace.paths == [LOGIN_PATH, LOGIN_PATH, SEARCH_PATH]
        assert trace.sends[1][0] == T0 + 0.25 + 12.0

    def test_unauthenticated_operation_skips_login(self) -> None:
        core = make_core(token=None)
        trace = drive(core.start(read_op(authenticated=False), T0), [reply()])
        assert trace.paths == [SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == [None]

    def test_broken_authenticator_fails_the_call(self) -> None:
        auth = FakeAuth()
        auth.broken = True
        trace = drive(make_core(token=None, auth=auth).start(read_op(), T0), [])
        assert isinstance(trace.error, ConfigurationError)

    def test_unusable_token_fails_the_call(self) -> None:
        core = make_core(token="bad\r\ntoken")
        trace = drive(core.start(read_op(), T0), [])
        assert isinstance(trace.error, LocalProtocolError)


class TestSharedSession:
    def test_token_from_one_call_is_used_by_the_next(self) -> None:
        core = make_core(token=None)
        drive(core.start(read_op(), T0), [reply(), reply()])
        trace = drive(core.start(read_op(), T0 + 1.0), [reply()], now=T0 + 1.0)
        assert trace.paths == [SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == ["Bearer tok-1"]

    def test_two_calls_missing_the_token_each_log_in(self) -> None:
        core = make_core(token=None)
        first, second = core.start(read_op(), T0), core.start(read_op(), T0)
        step_a, step_b = first.next_step(T0), second.next_step(T0)
        assert isinstance(step_a, Send)
        assert isinstance(step_b, Send)
        assert step_a.request.path == step_b.request.path == LOGIN_PATH
        first.response_received(reply(), T0 + 0.1)
        second.response_received(reply(), T0 + 0.2)
        assert core.session.token == Secret("tok-2")
        step_a, step_b = first.next_step(T0 + 0.3), second.next_step(T0 + 0.3)
        assert isinstance(step_a, Send)
        assert isinstance(step_b, Send)
        assert step_a.request.header("authorization") == "Bearer tok-2"
        assert step_b.request.header("authorization") == "Bearer tok-2"

    def test_a_waiting_call_uses_a_token_obtained_meanwhile(self) -> None:
        limiter = RateLimiter({RateBucket.GENERAL: RateBudget(1, 10.0)})
        core = make_core(token=None, limiter=limiter)
        first, second = core.start(read_op(), T0), core.start(read_op(), T0)
        login = first.next_step(T0)
        assert isinstance(login, Send)
        assert second.next_step(T0) == Sleep(T0 + 10.0)
        first.response_received(reply(), T0 + 0.5)
        step = second.next_step(T0 + 10.0)
        assert isinstance(step, Send)
        assert step.request.path == SEARCH_PATH
        assert step.request.header("authorization") == "Bearer tok-1"

    def test_own_token_is_used_when_another_call_cleared_the_session(self) -> None:
        core = make_core(token=None)
        call = core.start(read_op(), T0)
        assert isinstance(call.next_step(T0), Send)
        call.response_received(reply(), T0 + 0.1)
        core.session.clear()
        step = call.next_step(T0 + 0.2)
        assert isinstance(step, Send)
        assert step.request.header("authorization") == "Bearer tok-1"

    def test_401_after_another_call_renewed_the_token_retries_without_login(self) -> None:
        core = make_core(token="tok-0")
        call = core.start(read_op(), T0)
        assert isinstance(call.next_step(T0), Send)
        core.session.token_obtained(Secret("tok-9"), T0 + 0.1)
        call.response_received(reply(401), T0 + 0.2)
        assert core.session.token == Secret("tok-9")
        step = call.next_step(T0 + 0.3)
        assert isinstance(step, Send)
        assert step.request.header("authorization") == "Bearer tok-9"

    def test_401_then_a_due_token_from_elsewhere_logs_in(self) -> None:
        core = make_core(token="tok-0", obtained=T0 - 23.5 * HOUR)
        call = core.start(read_op(), T0)
        answers = iter([reply(), reply(401), reply(), reply()])

        def script(request: HttpRequest) -> Answer:
            if request.path == SEARCH_PATH and request.header("authorization") == "Bearer rot-1":
                # Another call put back a token that is itself due for a refresh.
                core.session.token_obtained(Secret("tok-5"), T0 - 23.5 * HOUR)
            return next(answers)

        trace = drive(call, script)
        assert trace.paths == [REFRESH_PATH, SEARCH_PATH, LOGIN_PATH, SEARCH_PATH]
        assert trace.bearers(SEARCH_PATH) == ["Bearer rot-1", "Bearer tok-1"]


# --- b. Rate limiting --------------------------------------------------------------------------


class TestRateLimiting:
    def test_201st_request_waits_until_the_oldest_slot_leaves(self) -> None:
        core = make_core()
        for index in range(200):
            core.limiter.acquire(RateBucket.GENERAL, T0 + index * 0.1)
        now = T0 + 30.0
        trace = drive(core.start(read_op(), now), [reply()], now=now)
        assert trace.sleeps == [(now, T0 + 60.0)]
        assert trace.sends[0][0] == T0 + 60.0

    def test_history_uses_its_own_bucket(self) -> None:
        core = make_core(token=None)
        for _ in range(50):
            core.limiter.acquire(RateBucket.HISTORY, T0)
        trace = drive(core.start(read_op(BARS_PATH, bucket=RateBucket.HISTORY), T0), [reply()] * 2)
        # The login drew from GENERAL and went at once; the bars waited for HISTORY.
        assert trace.sends[0][0] == T0
        assert trace.sends[1][0] == T0 + 30.0
        assert core.limiter.used(RateBucket.GENERAL, T0 + 30.0) == 1
        assert core.limiter.used(RateBucket.HISTORY, T0 + 30.0) == 1

    def test_general_operation_never_counts_in_history(self) -> None:
        core = make_core()
        drive(core.start(read_op(), T0), [reply()])
        assert core.limiter.used(RateBucket.HISTORY, T0) == 0
        assert core.limiter.used(RateBucket.GENERAL, T0) == 1

    def test_every_send_takes_a_slot(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(max_attempts=3))
        trace = drive(core.start(read_op(), T0), [reply(), reply(500), reply(500), reply()])
        assert len(trace.sends) == 4
        assert core.limiter.used(RateBucket.GENERAL, trace.now) == 4

    def test_slot_taken_by_another_call_means_sleeping_again(self) -> None:
        limiter = RateLimiter({RateBucket.GENERAL: RateBudget(1, 10.0)})
        core = make_core(limiter=limiter)
        limiter.acquire(RateBucket.GENERAL, T0)
        call = core.start(read_op(), T0)
        assert call.next_step(T0) == Sleep(T0 + 10.0)
        limiter.acquire(RateBucket.GENERAL, T0 + 10.0)  # someone else was quicker
        assert call.next_step(T0 + 10.0) == Sleep(T0 + 20.0)
        assert isinstance(call.next_step(T0 + 20.0), Send)


class TestMaxRateWait:
    """A capped wait fails fast with the time to retry, and sends nothing."""

    def spent(self, cap: float) -> RestCore:
        core = make_core(policy=RetryPolicy(max_rate_wait=cap))
        for index in range(200):
            core.limiter.acquire(RateBucket.GENERAL, T0 + index * 0.1)
        return core

    def test_wait_longer_than_the_cap_fails_without_sending(self) -> None:
        core = self.spent(5.0)
        now = T0 + 30.0
        trace = drive(core.start(read_op(), now), [], now=now)
        assert trace.sends == []
        error = trace.error
        assert isinstance(error, RateBudgetSpent)
        assert (error.bucket, error.retry_after) == ("general", 30.0)
        assert "retry in 30.0 s" in str(error)
        assert core.limiter.used(RateBucket.GENERAL, now) == 200

    def test_wait_within_the_cap_sleeps_as_usual(self) -> None:
        core = self.spent(30.0)
        now = T0 + 30.0
        trace = drive(core.start(read_op(), now), [reply()], now=now)
        assert trace.sleeps == [(now, T0 + 60.0)]
        assert trace.value == "ok"

    def test_the_cap_bounds_the_whole_wait_not_each_turn(self) -> None:
        limiter = RateLimiter({RateBucket.GENERAL: RateBudget(1, 2.0)})
        core = make_core(limiter=limiter, policy=RetryPolicy(max_rate_wait=2.5))
        limiter.acquire(RateBucket.GENERAL, T0)
        call = core.start(read_op(), T0)
        assert call.next_step(T0) == Sleep(T0 + 2.0)
        limiter.acquire(RateBucket.GENERAL, T0 + 2.0)  # another call took the slot
        step = call.next_step(T0 + 2.0)
        assert isinstance(step, Failed)
        assert isinstance(step.error, RateBudgetSpent)
        assert step.error.retry_after == 2.0

    def test_provider_hint_longer_than_the_cap_fails_with_the_429(self) -> None:
        core = make_core(policy=RetryPolicy(max_rate_wait=5.0))
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=20)])
        assert trace.paths == [SEARCH_PATH]
        assert isinstance(trace.error, RateLimited)
        # The next call meets the penalty in the limiter and fails before sending.
        later = drive(core.start(read_op(), trace.now), [], now=trace.now)
        assert later.sends == []
        assert isinstance(later.error, RateBudgetSpent)

    def test_provider_hint_within_the_cap_is_waited_for(self) -> None:
        core = make_core(policy=RetryPolicy(max_rate_wait=5.0, base_delay=0.0))
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=2), reply()])
        assert trace.value == "ok"
        assert trace.sends[1][0] == T0 + 0.25 + 2.0

    def test_login_hint_longer_than_the_cap_fails(self) -> None:
        core = make_core(token=None, policy=RetryPolicy(max_rate_wait=1.0))
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=12)])
        assert trace.paths == [LOGIN_PATH]
        assert isinstance(trace.error, RateLimited)

    @pytest.mark.parametrize("cap", [-1.0, float("nan"), float("inf")])
    def test_cap_must_be_a_finite_non_negative_number(self, cap: float) -> None:
        with pytest.raises(ConfigurationError):
            RetryPolicy(max_rate_wait=cap)


# --- c. and h. Parsing ---------------------------------------------------------------------------


class TestParsing:
    def test_success(self) -> None:
        call = make_core().start(read_op(), T0)
        states = [call.state]
        trace = drive(call, [reply(body=b"[1,2]")])
        states.append(call.state)
        assert trace.value == "[1,2]"
        assert states == [CallState.READY, CallState.DONE]
        assert call.attempts == 1

    @pytest.mark.parametrize(
        ("answer", "error"),
        [
            (reply(400), ValidationFailed),
            (reply(403), ProviderError),
            (reply(body=b"refused"), AuthenticationError),
            (reply(body=b"bug"), ValueError),
        ],
    )
    @pytest.mark.parametrize("make", [read_op, write_op])
    def test_other_errors_fail_without_retry(
        self, answer: HttpResponse, error: type[BaseException], make: Callable[[], Operation[str]]
    ) -> None:
        call = make_core().start(make(), T0)
        trace = drive(call, [answer])
        assert len(trace.sends) == 1
        assert type(trace.error) is error
        assert call.state is CallState.FAILED

    def test_unreadable_answer_fails_a_read_without_retry(self) -> None:
        trace = drive(make_core().start(read_op(), T0), [reply(302)])
        assert len(trace.sends) == 1
        assert type(trace.error) is RemoteProtocolError

    def test_unreadable_answer_to_a_write_is_uncertain_and_never_resent(self) -> None:
        trace = drive(make_core().start(write_op(), T0), [reply(302)])
        assert trace.paths == [PLACE_PATH]
        error = trace.error
        assert isinstance(error, OrderUncertain)
        assert error.custom_tag == "tf-1"
        assert isinstance(error.cause, RemoteProtocolError)


# --- d. 401 ---------------------------------------------------------------------------------


class TestUnauthorized:
    @pytest.mark.parametrize("make", [read_op, write_op])
    def test_one_relogin_and_one_retry(self, make: Callable[[], Operation[str]]) -> None:
        core = make_core(token="tok-0")
        trace = drive(core.start(make(), T0), [reply(401), reply(), reply(body=b"done")])
        path = make().request.path
        assert trace.paths == [path, LOGIN_PATH, path]
        assert trace.bearers(path) == ["Bearer tok-0", "Bearer tok-1"]
        assert trace.value == "done"

    def test_second_401_fails(self) -> None:
        core = make_core(token="tok-0")
        trace = drive(core.start(write_op(), T0), [reply(401), reply(), reply(401)])
        assert trace.paths == [PLACE_PATH, LOGIN_PATH, PLACE_PATH]
        assert isinstance(trace.error, AuthenticationError)
        assert trace.error.status == 401

    def test_401_forgets_the_token(self) -> None:
        core = make_core(token="tok-0")
        call = core.start(read_op(), T0)
        call.next_step(T0)
        call.response_received(reply(401), T0 + 0.1)
        assert core.session.token is None

    def test_relogin_refused(self) -> None:
        core = make_core(token="tok-0")
        trace = drive(core.start(write_op(), T0), [reply(401), reply(body=b"refused")])
        assert trace.paths == [PLACE_PATH, LOGIN_PATH]
        assert isinstance(trace.error, AuthenticationError)
        assert trace.error.endpoint == "Auth/loginKey"

    def test_resend_after_401_does_not_use_up_an_attempt(self) -> None:
        core = make_core(token="tok-0", policy=RetryPolicy(max_attempts=1))
        call = core.start(read_op(), T0)
        trace = drive(call, [reply(401), reply(), reply()])
        assert trace.paths == [SEARCH_PATH, LOGIN_PATH, SEARCH_PATH]
        assert call.attempts == 1

    def test_401_on_unauthenticated_operation_fails(self) -> None:
        core = make_core(token=None)
        trace = drive(core.start(read_op(authenticated=False), T0), [reply(401)])
        assert trace.paths == [SEARCH_PATH]
        assert isinstance(trace.error, AuthenticationError)


# --- e. 429 ---------------------------------------------------------------------------------


class TestRateLimited:
    def test_read_waits_for_retry_after_and_penalizes_the_bucket(self) -> None:
        core = make_core(policy=RetryPolicy(base_delay=0.1, max_delay=0.1))
        call = core.start(read_op(), T0)
        assert isinstance(call.next_step(T0), Send)
        call.response_received(reply(429, retry_after=20), T0 + 0.5)
        assert core.limiter.ready_at(RateBucket.GENERAL, T0 + 0.5) == T0 + 20.5
        assert core.limiter.delay(RateBucket.HISTORY, T0 + 0.5) == 0.0
        assert call.next_step(T0 + 0.5) == Sleep(T0 + 20.5)
        assert isinstance(call.next_step(T0 + 20.5), Send)

    def test_read_backoff_when_longer_than_retry_after(self) -> None:
        policy = RetryPolicy(base_delay=100.0, max_delay=100.0)
        core = make_core(policy=policy, seed=5)
        expected = policy.backoff(1, random.Random(5))
        assert expected > 1.0
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=1), reply()])
        assert trace.sleeps == [(T0 + 0.25, T0 + 0.25 + expected)]

    def test_read_without_retry_after_backs_off_without_penalty(self) -> None:
        core = make_core()
        call = core.start(read_op(), T0)
        call.next_step(T0)
        call.response_received(reply(429), T0 + 0.5)
        assert core.limiter.delay(RateBucket.GENERAL, T0 + 0.5) == 0.0
        trace = drive(call, [reply()], now=T0 + 0.5)
        assert trace.value == "ok"

    def test_read_gives_up_after_max_attempts(self) -> None:
        core = make_core(policy=RetryPolicy(max_attempts=3))
        trace = drive(core.start(read_op(), T0), [reply(429, retry_after=1)] * 3)
        assert trace.paths == [SEARCH_PATH] * 3
        assert isinstance(trace.error, RateLimited)

    def test_write_is_never_retried(self) -> None:
        core = make_core()
        trace = drive(core.start(write_op(), T0), [reply(429, retry_after=3)])
        assert trace.paths == [PLACE_PATH]
        assert isinstance(trace.error, RateLimited)
        assert core.limiter.ready_at(RateBucket.GENERAL, trace.now) == T0 + 0.25 + 3.0

    @pytest.mark.parametrize(("hint", "penalty"), [(float("inf"), 0.0), (-5.0, 0.0)])
    def test_unusable_retry_after(self, hint: float, penalty: float) -> None:
        core = make_core()
        trace = drive(core.start(write_op(), T0), [reply(429, retry_after=hint)])
        assert isinstance(trace.error, RateLimited)
        assert core.limiter.delay(RateBucket.GENERAL, trace.now) == penalty


# --- f. 5xx ---------------------------------------------------------------------------------


class TestServerError:
    def test_read_retried_up_to_max_attempts_then_failed(self) -> None:
        core = make_core(policy=RetryPolicy(max_attempts=4))
        call = core.start(read_op(), T0)
        trace = drive(call, [reply(500), reply(502), reply(503), reply(504)])
        assert trace.paths == [SEARCH_PATH] * 4
        assert isinstance(trace.error, ServerError)
        assert trace.error.status == 504
        assert call.attempts == 4
        assert len(trace.sleeps) == 3

    def test_read_succeeds_on_retry(self) -> None:
        trace = drive(make_core().start(read_op(), T0), [reply(500), reply(body=b"x")])
        assert trace.value == "x"

    def test_backoff_sleeps_follow_the_policy(self) -> None:
        policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0)
        core = make_core(policy=policy, seed=11)
        rng = random.Random(11)
        expected = [policy.backoff(1, rng), policy.backoff(2, rng)]
        trace = drive(core.start(read_op(), T0), [reply(500)] * 3, latency=0.0)
        assert [until - start for start, until in trace.sleeps] == pytest.approx(expected)

    def test_write_5xx_is_uncertain_with_what_reconciling_needs(self) -> None:
        core = make_core()
        now = T0 + 0.75
        trace = drive(core.start(write_op(), now), [reply(500)], now=now)
        assert trace.paths == [PLACE_PATH]
        error = trace.error
        assert isinstance(error, OrderUncertain)
        assert error.operation == "Order/place"
        assert error.account_id == 7
        assert error.custom_tag == "tf-1"
        assert error.contract_id == "CON.F.US.MES.Z25"
        assert error.sent_at == datetime.fromtimestamp(now, UTC)
        assert isinstance(error.cause, ServerError)

    def test_write_uncertain_tolerates_missing_context(self) -> None:
        op = write_op(context={"account_id": "seven", "contract_id": 42})
        trace = drive(make_core().start(op, T0), [reply(503)])
        error = trace.error
        assert isinstance(error, OrderUncertain)
        assert error.account_id == 0
        assert error.custom_tag is None
        assert error.contract_id == "42"

    def test_write_uncertain_with_an_unrepresentable_time(self) -> None:
        core = make_core(obtained=1e20)
        trace = drive(core.start(write_op(), 1e20), [reply(500)], now=1e20)
        assert isinstance(trace.error, OrderUncertain)
        assert trace.error.sent_at is None


# --- g. transport failures --------------------------------------------------------------------


class TestTransportFailure:
    def test_write_lost_after_sending_is_uncertain_and_never_resent(self) -> None:
        lost = Lost(sent=True)
        trace = drive(make_core().start(write_op(), T0), [lost])
        assert trace.paths == [PLACE_PATH]
        error = trace.error
        assert isinstance(error, OrderUncertain)
        assert error.cause is lost.error
        assert error.account_id == 7
        assert error.sent_at == datetime.fromtimestamp(T0, UTC)

    def test_write_not_sent_fails_with_the_transport_error(self) -> None:
        lost = Lost(sent=False)
        trace = drive(make_core().start(write_op(), T0), [lost])
        assert trace.paths == [PLACE_PATH]
        assert trace.error is lost.error

    @pytest.mark.parametrize("sent", [True, False])
    def test_read_is_retried(self, sent: bool) -> None:
        trace = drive(make_core().start(read_op(), T0), [Lost(sent=sent), reply()])
        assert trace.paths == [SEARCH_PATH] * 2
        assert trace.value == "ok"

    def test_read_gives_up_after_max_attempts(self) -> None:
        core = make_core(policy=RetryPolicy(max_attempts=2))
        last = Lost(sent=True)
        trace = drive(core.start(read_op(), T0), [Lost(sent=False), last])
        assert trace.paths == [SEARCH_PATH] * 2
        assert trace.error is last.error


# --- Misuse and clock --------------------------------------------------------------------------


class TestProtocol:
    def test_answer_without_send(self) -> None:
        call = make_core().start(read_op(), T0)
        with pytest.raises(LocalProtocolError):
            call.response_received(reply(), T0)
        with pytest.raises(LocalProtocolError):
            call.transport_failed(OSError(), request_sent=False, now=T0)

    def test_next_step_while_awaiting(self) -> None:
        call = make_core().start(read_op(), T0)
        assert isinstance(call.next_step(T0), Send)
        assert call.state is CallState.AWAITING_RESPONSE
        with pytest.raises(LocalProtocolError):
            call.next_step(T0)

    def test_answer_after_the_outcome(self) -> None:
        call = make_core().start(read_op(), T0)
        drive(call, [reply()])
        with pytest.raises(LocalProtocolError):
            call.response_received(reply(), T0 + 1)

    def test_non_finite_now(self) -> None:
        core = make_core()
        with pytest.raises(LocalProtocolError):
            core.start(read_op(), float("nan"))
        call = core.start(read_op(), T0)
        with pytest.raises(LocalProtocolError):
            call.next_step(float("inf"))

    def test_properties_and_repr(self) -> None:
        core = make_core()
        op = read_op()
        call = core.start(op, T0)
        assert call.operation is op
        assert call.started_at == T0
        assert "Account/search" in repr(call)
        assert "READY" in repr(call)
        assert "tok-0" not in repr(core)
        assert isinstance(core.authenticator, FakeAuth)

    def test_core_defaults(self) -> None:
        core = RestCore(FakeAuth())
        assert core.session.token is None
        assert core.session.lifetime == 24 * HOUR
        assert dict(core.limiter.budgets) == dict(DEFAULT_BUDGETS)
        assert core.policy == RetryPolicy()
        assert isinstance(core.rng, random.Random)

    def test_clock_going_back_during_backoff_keeps_the_remaining_wait(self) -> None:
        core = make_core(policy=RetryPolicy(base_delay=10.0, max_delay=10.0), seed=2)
        call = core.start(read_op(), T0)
        call.next_step(T0)
        call.response_received(reply(500), T0)
        step = call.next_step(T0 + 1.0)
        assert isinstance(step, Sleep)
        remaining = step.until - (T0 + 1.0)
        later = call.next_step(T0 + 1.0 - HOUR)
        assert isinstance(later, Sleep)
        assert later.until - (T0 + 1.0 - HOUR) == pytest.approx(remaining)

    def test_clock_going_back_without_backoff(self) -> None:
        call = make_core().start(read_op(), T0)
        assert isinstance(call.next_step(T0 - HOUR), Send)


# --- Properties ---------------------------------------------------------------------------------

OUTCOMES: list[Answer] = [
    reply(),
    reply(401),
    reply(429),
    reply(429, retry_after=2),
    reply(500),
    reply(503),
    reply(400),
    reply(body=b"empty"),
    Lost(sent=True),
    Lost(sent=False),
]

SESSIONS = {
    "missing": None,
    "valid": T0,
    "refresh_due": T0 - 23.5 * HOUR,
    "expired": T0 - 30 * HOUR,
}


@attrs.frozen
class Scenario:
    """A starting session, a script of answers and a policy, all drawn by hypothesis."""

    session_kind: str
    answers: tuple[Answer, ...]
    max_attempts: int
    can_refresh: bool
    seed: int

    def core(self) -> RestCore:
        obtained = SESSIONS[self.session_kind]
        return make_core(
            token=None if obtained is None else "tok-0",
            obtained=T0 if obtained is None else obtained,
            auth=FakeAuth(can_refresh=self.can_refresh),
            policy=RetryPolicy(max_attempts=self.max_attempts, base_delay=0.5, max_delay=4.0),
            limiter=RateLimiter({RateBucket.GENERAL: BUDGET}),
            seed=self.seed,
        )


BUDGET = RateBudget(2, 1.0)

scenarios = st.builds(
    Scenario,
    session_kind=st.sampled_from(sorted(SESSIONS)),
    answers=st.lists(st.sampled_from(OUTCOMES), max_size=25).map(tuple),
    max_attempts=st.integers(1, 4),
    can_refresh=st.booleans(),
    seed=st.integers(0, 2**16),
)


def run_scripted(op: Operation[str], scenario: Scenario) -> tuple[Trace, list[Answer]]:
    """Answer every Send from the scenario (then 200s) and record what the operation got."""
    pending = iter(scenario.answers)
    given_to_op: list[Answer] = []

    def script(request: HttpRequest) -> Answer:
        answer = next(pending, reply())
        if request.path == op.request.path:
            given_to_op.append(answer)
        return answer

    trace = drive(scenario.core().start(op, T0), script, latency=0.05, max_steps=1000)
    return trace, given_to_op


def check_slots(sends: list[tuple[float, HttpRequest]]) -> None:
    """No window ever held more GENERAL sends than the budget allows."""
    times = [sent for sent, request in sends if request.path != BARS_PATH]
    for index in range(BUDGET.limit, len(times)):
        assert times[index] - times[index - BUDGET.limit] >= BUDGET.window


def check_write_sends(given_to_op: list[Answer]) -> None:
    """A write went out once, or twice when the first answer was a 401."""
    assert len(given_to_op) <= 2
    if len(given_to_op) == 2:
        first = given_to_op[0]
        assert isinstance(first, HttpResponse)
        assert first.status == 401


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios)
def test_write_is_sent_at_most_once_except_after_a_401(scenario: Scenario) -> None:
    trace, given_to_op = run_scripted(write_op(), scenario)
    assert isinstance(trace.outcome, Done | Failed)
    assert trace.paths.count(PLACE_PATH) == len(given_to_op)
    check_write_sends(given_to_op)
    if given_to_op:
        last = given_to_op[-1]
        if isinstance(last, Lost) and last.sent:
            assert isinstance(trace.error, OrderUncertain)
        if isinstance(last, HttpResponse) and last.status >= 500:
            assert isinstance(trace.error, OrderUncertain)
    check_slots(trace.sends)
    # Bounded: two login rounds, one refresh, two sends of the operation; sleeps before each.
    assert len(trace.sends) <= 2 * scenario.max_attempts + 3
    assert trace.steps <= 3 * len(trace.sends) + 1


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios, bucket=st.sampled_from(list(RateBucket)))
def test_any_call_ends_within_a_bounded_number_of_steps(
    scenario: Scenario, bucket: RateBucket
) -> None:
    op = read_op(BARS_PATH if bucket is RateBucket.HISTORY else SEARCH_PATH, bucket=bucket)
    trace, given_to_op = run_scripted(op, scenario)
    assert isinstance(trace.outcome, Done | Failed)
    assert len(given_to_op) <= scenario.max_attempts + 1
    assert len(trace.sends) <= 3 * scenario.max_attempts + 2
    assert trace.steps <= 3 * len(trace.sends) + 1
    check_slots(trace.sends)


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios, turns=st.lists(st.booleans(), max_size=300))
def test_concurrent_calls_share_session_and_limiter_safely(
    scenario: Scenario, turns: list[bool]
) -> None:
    core = scenario.core()
    calls: list[Call[str]] = [core.start(write_op(), T0), core.start(read_op(), T0)]
    in_flight: list[HttpRequest | None] = [None, None]
    wake = [T0, T0]
    outcomes: list[Done[str] | Failed | None] = [None, None]
    answers = iter(scenario.answers)
    choices = iter(turns)
    sends: list[tuple[float, HttpRequest]] = []
    given_to_write: list[Answer] = []
    now = T0
    for _ in range(2000):
        active = [i for i in (0, 1) if outcomes[i] is None]
        if not active:
            break
        runnable = [i for i in active if in_flight[i] is not None or wake[i] <= now]
        if not runnable:
            now = min(wake[i] for i in active)
            continue
        index = runnable[int(next(choices, False)) % len(runnable)]
        call, request = calls[index], in_flight[index]
        if request is not None:
            answer = next(answers, reply())
            if request.path == PLACE_PATH:
                given_to_write.append(answer)
            now += 0.01
            in_flight[index] = None
            if isinstance(answer, Lost):
                call.transport_failed(answer.error, request_sent=answer.sent, now=now)
            else:
                call.response_received(answer, now)
            continue
        step = call.next_step(now)
        if isinstance(step, Send):
            sends.append((now, step.request))
            in_flight[index] = step.request
        elif isinstance(step, Sleep):
            assert step.until > now
            wake[index] = step.until
        else:
            outcomes[index] = step
    assert all(outcome is not None for outcome in outcomes)
    check_write_sends(given_to_write)
    check_slots(sends)
    for _, request in sends:
        if request.path != LOGIN_PATH:
            assert (request.header("authorization") or "").startswith("Bearer ")


class TestAbandon:
    def test_cancelled_write_after_sending_is_uncertain(self) -> None:
        call = make_core(obtained=T0).start(write_op(), T0)
        step = call.next_step(T0)
        assert isinstance(step, Send)
        cause = KeyboardInterrupt()
        error = call.abandon(cause, request_sent=True, now=T0 + 1)
        assert isinstance(error, OrderUncertain)
        assert error.custom_tag == "tf-1"
        assert error.cause is cause
        assert call.state is CallState.FAILED
        assert call.next_step(T0 + 2) == Failed(error)

    @pytest.mark.parametrize(("make", "sent"), [(write_op, False), (read_op, True)])
    def test_other_abandons_keep_their_cause(
        self, make: Callable[[], Operation[str]], sent: bool
    ) -> None:
        call = make_core(obtained=T0).start(make(), T0)
        call.next_step(T0)
        cause = TimeoutError("gave up")
        assert call.abandon(cause, request_sent=sent, now=T0) is cause

    def test_abandon_during_login_is_not_uncertain(self) -> None:
        call = make_core(token=None).start(write_op(), T0)
        step = call.next_step(T0)  # the login goes first
        assert isinstance(step, Send)
        assert step.request.path != PLACE_PATH
        cause = TimeoutError("gave up")
        assert call.abandon(cause, request_sent=True, now=T0) is cause

    def test_abandon_before_any_send(self) -> None:
        call = make_core(obtained=T0).start(write_op(), T0)
        cause = TimeoutError("gave up")
        assert call.abandon(cause, request_sent=False, now=T0) is cause


def test_a_hub_gets_the_current_token_until_it_must_be_renewed_or_was_refused() -> None:
    core = RestCore(_TokenLogin())
    assert core.token_for_hubs(1000.0) is None  # nobody logged in yet
    core.token_obtained(Secret("t1"), 1000.0)
    assert core.token_for_hubs(1001.0) == Secret("t1")
    assert core.token_for_hubs(1001.0, force=True) is None  # the hub refused it
    assert core.token_for_hubs(1000.0 + 30 * 86_400) is None  # long expired


class _TokenLogin:
    def login(self) -> Any:
        raise AssertionError("not called")

    def refresh(self) -> None:
        return None
