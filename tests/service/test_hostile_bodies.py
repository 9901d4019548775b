"""Every write route fed hostile raw bytes over HTTP: extreme decimals, NaN and Infinity (literal
and quoted), huge integers, bools, control characters and long strings, in any field.

Each answer must be a refusal or a success the API documents (never a 500), come within the
safety timeout, and leave the service answering ``/health``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradeforge_anyio.service import create_app
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .harness import SAFETY, served, simulator_client

TOKEN = "hostile-s3rvice-token"
ACCOUNT = 20258288
ALLOWED: Final = {400, 401, 404, 409, 413, 415, 422, 429, 502, 503}

LITERALS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "1E+300000", "-1E+300000", "1E-1000000000", "1e309",
    "-0", "0", "0.0", "-1", "1.0", "1.5", "true", "false", "null", "[]", "{}", '""',
    '"NaN"', '"nan"', '"Infinity"', '"-Infinity"', '"1E+300000"', '"1E-1000000000"', '"1e999"',
    '"1_000"', '" 1.00 "', '"1"', '"0x10"', '"\\u0000"', '"tag\\r\\nX-Injected: 1"',
    '"\\ud800"', str(2**53), str(2**63), str(2**64), str(10**400), "-" + str(2**64),
]  # fmt: skip

digits = st.text("0123456789", min_size=1, max_size=600)
hostile_json = st.one_of(
    st.sampled_from(LITERALS),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    st.builds("{}.{}".format, digits, digits),
    st.builds("{}E{:+d}".format, digits, st.integers(-(10**9), 10**9)),
    st.builds(lambda a, b: json.dumps(f"{a}.{b}"), digits, digits),
    st.integers(min_value=0, max_value=150_000).map(lambda n: json.dumps("x" * n)),
    st.text(max_size=60).map(json.dumps),
    st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n + "]" * n),
)
"""Raw JSON text (or near-JSON: NaN, Infinity) for one value."""
hostile_text = st.one_of(
    st.sampled_from(["0", "-1", "1_0", " 1", "1.0", "NaN", "true", "", "9" * 17, "9" * 5000]),
    st.text(max_size=40),
    digits,
)
"""Raw text for a path or query value."""
content_types = st.sampled_from(
    ["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain", ""]
)


@asynccontextmanager
async def _service() -> Any:
    async with SimServer(SimConfig(budgets={})) as sim:
        app = create_app(simulator_client(sim, budgets={}), token=TOKEN)
        async with served(app) as base:
            yield base


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_service()) as base,
        httpx.Client(base_url=base, headers=headers, timeout=SAFETY) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def mes(http: httpx.Client) -> str:
    return str(http.get("/contracts/by-symbol/MES").raise_for_status().json()["id"])


def templates(mes: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """A valid request of every write route: method, path and body."""
    position = {"account_id": ACCOUNT, "contract_id": mes}
    limit = {**position, "side": "BUY", "type": "LIMIT", "size": 1, "limit_price": "1"}
    bracketed = {**limit, "stop_loss": {"ticks": -8, "type": "STOP"}, "custom_tag": "hostile"}
    return {
        "place": ("POST", "/orders", bracketed),
        "modify": ("PATCH", "/orders/1", {"account_id": ACCOUNT, "size": 2, "limit_price": 2}),
        "cancel": ("DELETE", "/orders/1", {}),
        "close": ("POST", "/positions/close", position),
        "partial": ("POST", "/positions/partial-close", {**position, "size": 1}),
    }


def encode(body: dict[str, Any], field: str, raw: str) -> bytes:
    """``body`` as JSON text with ``field`` (``a.b`` for a nested one, or a new one) set to
    the raw JSON text ``raw``."""
    outer, _, inner = field.partition(".")
    parts = []
    for key, value in {**body, outer: None}.items():
        text = json.dumps(value)
        if key == outer:
            text = raw if not inner else encode(value or {}, inner, raw).decode()
        parts.append(f"{json.dumps(key)}: {text}")
    return ("{" + ", ".join(parts) + "}").encode("utf-8", "surrogatepass")


def check(http: httpx.Client, response: httpx.Response) -> None:
    assert response.status_code < 300 or response.status_code in ALLOWED, response.text[:300]
    assert http.get("/health").status_code == 200


HOSTILE_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("route", ["place", "modify", "close", "partial"])
@HOSTILE_SETTINGS
@given(data=st.data(), raw=hostile_json, content_type=content_types)
def test_hostile_bodies_are_refused_cleanly(
    http: httpx.Client,
    mes: str,
    route: str,
    *,
    data: st.DataObject,
    raw: str,
    content_type: str,
) -> None:
    method, path, body = templates(mes)[route]
    fields = [*body, "unknown"] + (["stop_loss.ticks"] if route == "place" else [])
    field = data.draw(st.sampled_from(fields), label="field")
    content = (
        encode(body, field, raw) if data.draw(st.booleans()) else raw.encode("utf-8", "ignore")
    )
    headers = {"Content-Type": content_type} if content_type else {}
    check(http, http.request(method, path, content=content, headers=headers))


@pytest.mark.parametrize("route", ["modify", "cancel"])
@HOSTILE_SETTINGS
@given(order_id=hostile_text, account_id=hostile_text)
@example(order_id=".", account_id="1")
@example(order_id="..", account_id="1")
@example(order_id="open", account_id="1")
def test_hostile_ids_are_refused_cleanly(
    http: httpx.Client, mes: str, route: str, order_id: str, account_id: str
) -> None:
    method, _, body = templates(mes)[route]
    path = f"/orders/{quote(order_id, safe='')}"
    if route == "cancel":
        response = http.request(method, path, params={"account_id": account_id})
    else:
        content = encode(body, "account_id", json.dumps(account_id))
        response = http.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
    if response.status_code == 405:  # the id made the path another route's, which only reads
        # ("open" is /orders/open; "." and ".." are dot segments the client resolves away)
        assert response.request.url.path in {"/", "/orders", "/orders/", "/orders/open"}
        return
    check(http, response)
