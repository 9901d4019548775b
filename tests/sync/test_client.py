"""The blocking client against the simulator, which runs on its own thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tradeforge_proto.core import (
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUncertain,
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
