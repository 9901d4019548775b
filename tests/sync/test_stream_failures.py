"""The blocking stream's own threads: a failure in one surfaces to the reader, once."""

from __future__ import annotations

import threading

import pytest

from tradeforge_proto.core.secret import Secret
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sync.client import TradingClient

from . import running_sim


class Broken(BaseException):
    """Not an Exception: nothing in the stream may swallow it."""


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("tradeforge-")}


def test_a_failed_driver_surfaces_to_the_reader() -> None:
    with running_sim() as sim:
        client = TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
        with client:
            mes = client.resolve_contract("MES")

            def refuse(*, force: bool = False) -> Secret:
                raise Broken

            client.fresh_token = refuse  # type: ignore[method-assign]
            stream = client.stream()
            try:
                stream.subscribe_market(mes.id, quotes=True, wait=False)
                with pytest.raises(Broken):
                    list(stream.events(idle_timeout=5))
                assert stream.get(timeout=0) is None  # raised once
            finally:
                stream.close()
            assert live_threads() == set()
