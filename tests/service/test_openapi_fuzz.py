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

import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, settings

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.service import create_app
from tradeforge_anyio.sim.server import SimServer
from tradeforge_anyio.sim.simulation import SimConfig

from .harness import served, simulator_client

TOKEN = "fuzz-s3rvice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _unused_client() -> TradingClient:
    raise AssertionError("the document is built without a client")


# The document the served app publishes; checked against the live one below.
DOCUMENT = create_app(_unused_client, token=TOKEN).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(max_examples=100, database="none", with_security_parameters=False)


@asynccontextmanager
async def _service() -> AsyncIterator[str]:
    # No rate budgets on either side: the fuzzer sends far more than 200 requests a minute.
    async with SimServer(SimConfig(budgets={})) as sim:
        app = create_app(simulator_client(sim, budgets={}), token=TOKEN)
        async with served(app) as base:
            yield base


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(_service()) as base:
        yield base


def test_the_fuzzed_document_is_the_served_one(service_url: str) -> None:
    with urllib.request.urlopen(f"{service_url}/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == DOCUMENT


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_none_is_a_500(
    case: schemathesis.Case, service_url: str
) -> None:
    case.call_and_validate(
        base_url=service_url,
        headers=AUTH,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
