"""The blocking client against the simulator, which runs on its own thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradeforge_proto.calls import RetryPolicy
from tradeforge_proto.core import (
    AuthenticationError,
    BarUnit,
    OrderQuery,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUncertain,
    ProviderError,
    RateLimited,
    ServerError,
)
from tradeforge_proto.reconcile import Outcome
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer
from tradeforge_sync.client import TradingClient

from . import running_sim

ACCOUNT = 20258288


def client_for(sim: SimServer, **options: object) -> TradingClient:
    return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY, **options)


@contextmanager
def ctrl_c_after(seconds: float) -> Iterator[None]:
    """A KeyboardInterrupt in this (main) thread after ``seconds``, like Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_reads() -> None:
    with running_sim() as sim, client_for(sim) as client:
        accounts = client.get_accounts()
        assert [a.id for a in accounts] == [20258288, 20258289]
        mes = client.resolve_contract("MES")
        assert mes.symbol_id == "F.US.MES"
        assert client.resolve_contract("mes") is mes  # cached
        es = client.resolve_contract("ES")
        assert es.symbol_id == "F.US.EP"
        assert client.get_contract(mes.id) == mes
        assert mes in client.get_available_contracts()
        assert any(c.id == mes.id for c in client.search_contracts("MES"))
        with pytest.raises(ProviderError, match="no active contract"):
            client.resolve_contract("NOPE")
        assert client.get_open_positions(ACCOUNT) == []
        assert client.get_open_orders(ACCOUNT) == []
        assert client.search_trades(ACCOUNT, datetime.now(UTC) - timedelta(hours=1)) == []
        assert client.token is not None
        assert client.token_expires_at is not None
        assert client.fresh_token() is client.token


def test_bars_page_past_the_cap() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        end = datetime.now(UTC).replace(microsecond=0)
        bars = client.get_bars(
            mes.id, BarUnit.SECOND, 1, start=end - timedelta(hours=12), end=end, limit=25_000
        )
        assert len(bars) == 25_000
        times = [b.time for b in bars]
        assert times == sorted(set(times))
        assert times[-1] <= end
        few = client.get_bars(mes.id, BarUnit.HOUR, 1, start=end - timedelta(hours=5), end=end)
        assert 4 <= len(few) <= 6


def test_order_lifecycle() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        order_id = client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 2)
        order = client.get_order(ACCOUNT, order_id)
        assert order.status is OrderStatus.FILLED
        assert order.custom_tag is not None  # every order can be found again
        assert order.custom_tag.startswith("tf-")
        (position,) = client.get_open_positions(ACCOUNT)
        assert position.size == 2
        price = (position.average_price // mes.tick_size) * mes.tick_size - 50
        resting = client.place_order(
            ACCOUNT, mes.id, OrderSide.BUY, OrderType.LIMIT, 1, limit_price=price, custom_tag="mine"
        )
        client.modify_order(ACCOUNT, resting, limit_price=price - 1)
        assert client.get_order(ACCOUNT, resting).limit_price == Decimal(price - 1)
        client.cancel_order(ACCOUNT, resting)
        client.partial_close_position(ACCOUNT, mes.id, 1)
        client.close_position(ACCOUNT, mes.id)
        assert client.get_open_positions(ACCOUNT) == []
        page = client.query_orders(OrderQuery(ACCOUNT, include_total_count=True))
        assert page.total_count == 4
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert len(client.search_orders(ACCOUNT, since)) == 4
        fills = client.search_trades(ACCOUNT, since)
        assert sum(f.size for f in fills) == 4


def test_reads_are_retried_but_writes_never() -> None:
    with (
        running_sim() as sim,
        client_for(sim, retry=RetryPolicy(max_attempts=3, base_delay=0.01)) as client,
    ):
        mes = client.resolve_contract("MES")
        sim.faults.rest_statuses.extend([503, 429])
        assert client.get_accounts()  # two failures, then the answer
        sim.faults.rest_statuses.extend([503, 503, 503])
        with pytest.raises(ServerError):
            client.get_accounts()
        sim.faults.rest_statuses.append(429)
        with pytest.raises(RateLimited):
            client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        assert client.get_open_positions(ACCOUNT) == []  # the 429 was not executed
        sim.faults.rest_statuses.append(500)
        with pytest.raises(OrderUncertain) as uncertain:
            client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        assert uncertain.value.custom_tag is not None
        # The 500 came before the exchange: once the window has passed it is known not placed.
        verdict = client.reconcile(uncertain.value, window=0.3)
        assert verdict.outcome is Outcome.NOT_APPLIED
        assert verdict.order is None


def test_token_expiry_is_handled_with_one_relogin() -> None:
    with running_sim() as sim, client_for(sim) as client:
        client.get_accounts()
        first = client.token
        sim.expire_tokens()
        assert client.get_accounts()
        assert client.token != first
        second = client.token
        assert client.fresh_token(force=True) != second
        assert client.fresh_token() == client.token


def test_bad_credentials() -> None:
    with (
        running_sim() as sim,
        TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, "wrong") as client,
    ):
        with pytest.raises(AuthenticationError) as refused:
            client.get_accounts()
        assert refused.value.code_name == "InvalidCredentials"


def test_threads_share_one_client() -> None:
    with running_sim() as sim, client_for(sim, max_connections=2) as client:
        errors: list[BaseException] = []
        counts: list[int] = []

        def work() -> None:
            try:
                counts.extend(len(client.get_accounts()) for _ in range(5))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert errors == []
        assert counts == [2] * 30


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
def test_interrupted_placement_is_uncertain_and_reconcile_finds_it() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        client.get_accounts()  # logged in
        sim.faults.rest_delay = 0.5
        try:
            with pytest.raises(OrderUncertain) as uncertain, ctrl_c_after(0.2):
                client.place_order(
                    ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1, custom_tag="cx-1"
                )
        except KeyboardInterrupt:  # pragma: no cover - only if the interrupt came too early
            pytest.fail("the interrupt was not turned into OrderUncertain")
        sim.faults.rest_delay = 0.0
        assert uncertain.value.custom_tag == "cx-1"
        assert isinstance(uncertain.value.__cause__, KeyboardInterrupt)
        # Reconciling at once waits for the order the simulator is still working on.
        verdict = client.reconcile(uncertain.value)
        assert verdict.outcome is Outcome.APPLIED
        found = verdict.order
        assert found is not None
        assert found.custom_tag == "cx-1"
        assert found.status is OrderStatus.FILLED


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
def test_an_interrupted_read_stays_an_interrupt() -> None:
    with running_sim() as sim, client_for(sim) as client:
        client.get_accounts()
        sim.faults.rest_delay = 0.5
        with pytest.raises(KeyboardInterrupt), ctrl_c_after(0.2):
            client.get_accounts()
        sim.faults.rest_delay = 0.0
        assert client.get_accounts()


def test_connection_lost_during_placement_is_uncertain_and_reconcile_finds_it() -> None:
    with running_sim() as sim, client_for(sim) as client:
        mes = client.resolve_contract("MES")
        sim.faults.rest_drops = 1  # the order is placed, the answer is lost with the connection
        with pytest.raises(OrderUncertain) as uncertain:
            client.place_order(ACCOUNT, mes.id, OrderSide.BUY, OrderType.MARKET, 1)
        verdict = client.reconcile(uncertain.value)
        assert verdict.applied
        found = verdict.order
        assert found is not None
        assert found.status is OrderStatus.FILLED
        assert len(client.get_open_positions(ACCOUNT)) == 1  # placed once, never twice
        sim.faults.rest_drops = 1  # a read whose answer is lost is simply asked again
        assert client.get_accounts()
