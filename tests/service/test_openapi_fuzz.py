"""The REST API fuzzed from its own OpenAPI document: valid and invalid requests, on a real port.

Every answer must be documented (status, content type, body schema), no request may cause a 500,
invalid input must be refused with a 4xx, and the token must be required. Requests a schema allows
but the trading rules refuse (an end before a start, an unknown account) may be refused, so the
"valid data is accepted" check is left out.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, settings

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.service import create_app
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .harness import served, simulator_client

TOKEN = "fuzz-s3rvice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BARS = 2000  # generated windows may hold millions of bars: keep each answer small


def _unused_client() -> TradingClient:
    raise AssertionError("the document is built without a client")


def _schema(read_only: bool, max_examples: int) -> tuple[dict[str, Any], Any]:
    """The document an app publishes, and schemathesis's reading of it."""
    app = create_app(_unused_client, token=TOKEN, read_only=read_only, max_bars=MAX_BARS)
    document = app.openapi()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.generation.update(
        max_examples=max_examples, database="none", with_security_parameters=False
    )
    return document, loaded


# The documents the served apps publish; the first is checked against the live one below.
DOCUMENT, schema = _schema(read_only=False, max_examples=100)
READ_ONLY_DOCUMENT, read_only_schema = _schema(read_only=True, max_examples=25)


@asynccontextmanager
async def _service(read_only: bool) -> AsyncIterator[str]:
    # No rate budgets on either side: the fuzzer sends far more than 200 requests a minute.
    async with SimServer(SimConfig(budgets={})) as sim:
        factory = simulator_client(sim, budgets={})
        app = create_app(factory, token=TOKEN, read_only=read_only, max_bars=MAX_BARS)
        async with served(app) as base:
            yield base


def _serving(read_only: bool) -> Iterator[str]:
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_service(read_only)) as base,
    ):
        yield base


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    yield from _serving(read_only=False)


@pytest.fixture(scope="module")
def read_only_url() -> Iterator[str]:
    yield from _serving(read_only=True)


def test_the_fuzzed_documents_are_the_served_ones(service_url: str, read_only_url: str) -> None:
    for url, document in ((service_url, DOCUMENT), (read_only_url, READ_ONLY_DOCUMENT)):
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as response:
            assert json.loads(response.read()) == document


def check(case: schemathesis.Case[Any], base_url: str) -> None:
    """Send the case with the token; every check but "valid data is accepted" must hold."""
    case.call_and_validate(
        base_url=base_url,
        headers=AUTH,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )


FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()  # type: ignore[untyped-decorator]
@FUZZ_SETTINGS
def test_every_answer_is_documented_and_none_is_a_500(
    case: schemathesis.Case[Any], service_url: str
) -> None:
    check(case, service_url)


@read_only_schema.parametrize()  # type: ignore[untyped-decorator]
@FUZZ_SETTINGS
def test_a_read_only_service_keeps_to_its_document(
    case: schemathesis.Case[Any], read_only_url: str
) -> None:
    """No write route is in it: a write method on a read path must be a 405 with its Allow."""
    check(case, read_only_url)
