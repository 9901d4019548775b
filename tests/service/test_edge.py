"""The service's edge against hostile or careless callers, over HTTP on a real loopback port.

Each test checks the answer, that it came while other callers were still served, and that the
service goes on serving afterwards; waits are bounded by a safety timeout, never measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.service import create_app
from tradeforge_anyio.service.app import ClientFactory
from tradeforge_anyio.service.serving import ServeLimits
from tradeforge_proto.core.operations import Operation
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

from .harness import SAFETY, health_answers, running, send_partially, simulator_client

pytestmark = pytest.mark.anyio
T = TypeVar("T")
ACCOUNT = 20258288
TOKEN = "edge-s3rvice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def service(
    factory: ClientFactory | None = None,
    limits: ServeLimits | None = None,
    **app_options: Any,
) -> AsyncIterator[tuple[SimServer, httpx.AsyncClient]]:
    """The app on the simulator, and a client holding the token."""
    async with SimServer() as sim:
        app = create_app(factory or simulator_client(sim), token=TOKEN, **app_options)
        async with (
            running(app, limits) as (base, _),
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=SAFETY) as http,
        ):
            yield sim, http


async def mes_id(http: httpx.AsyncClient) -> str:
    response = await http.get("/contracts/by-symbol/MES")
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def order(mes: str, **fields: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET", **fields}


def year_of_seconds(mes: str, **params: Any) -> dict[str, Any]:
    end = datetime.now(UTC).replace(microsecond=0)
    window = {"start": (end - timedelta(days=365)).isoformat(), "end": end.isoformat()}
    return {"contract_id": mes, "unit": "SECOND", **window, **params}


def base_of(http: httpx.AsyncClient) -> str:
    return str(http.base_url).rstrip("/")


# --- A: bars ---


async def test_bars_past_the_cap_are_refused_with_what_to_do():
    async with service(max_bars=2000) as (sim, http):
        mes = await mes_id(http)
        answers: list[httpx.Response] = []
        async with anyio.create_task_group() as group:
            sim.faults.rest_delay = 0.2  # the upstream pages are slow

            async def too_many() -> None:
                answers.append(await http.get("/bars", params=year_of_seconds(mes)))

            group.start_soon(too_many)
            await health_answers(base_of(http), TOKEN)
        (refused,) = answers
        assert refused.status_code == 422, refused.text
        (issue,) = refused.json()["detail"]
        assert "2,000 bars" in issue["msg"]
        assert "narrow the window" in issue["msg"]
        assert "limit" in issue["msg"]
        over = await http.get("/bars", params=year_of_seconds(mes, limit=2001))
        assert over.status_code == 422, over.text
        assert over.json()["detail"][0]["loc"] == ["query", "limit"]
        sim.faults.rest_delay = 0
        newest = await http.get("/bars", params=year_of_seconds(mes, limit=2000))
        assert newest.status_code == 200, newest.text
        assert len(newest.json()["bars"]) == 2000
        document = (await http.get("/openapi.json")).json()
        (limit,) = (
            p for p in document["paths"]["/bars"]["get"]["parameters"] if p["name"] == "limit"
        )
        assert limit["schema"]["anyOf"][0]["maximum"] == 2000


class Watched(TradingClient):
    """A simulator client that tells when an upstream call starts and when one is cancelled."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.calls = 0
        self.started = anyio.Event()
        self.cancelled = anyio.Event()

    async def execute(self, operation: Operation[T]) -> T:
        self.calls += 1
        self.started.set()
        try:
            return await super().execute(operation)
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise


async def test_a_caller_going_away_cancels_its_upstream_work():
    clients: list[Watched] = []

    def factory() -> Watched:
        client = Watched.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
        clients.append(client)
        return client

    async with SimServer() as sim:
        app = create_app(factory, token=TOKEN, max_bars=10**7)
        async with (
            running(app) as (base, _),
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=SAFETY) as http,
        ):
            mes = await mes_id(http)
            (client,) = clients
            client.started = anyio.Event()
            sim.faults.rest_delay = 60.0  # the upstream answers long after any caller gave up
            async with anyio.create_task_group() as group:
                group.start_soon(partial(http.get, "/bars", params=year_of_seconds(mes)))
                with anyio.fail_after(SAFETY):
                    await client.started.wait()
                await health_answers(base, TOKEN)
                group.cancel_scope.cancel()  # the caller hangs up
            with anyio.fail_after(SAFETY):
                await client.cancelled.wait()
            calls = client.calls
            sim.faults.rest_delay = 0
            accounts = await http.get("/accounts")
            assert accounts.status_code == 200, accounts.text
            assert client.calls == calls + 1  # the abandoned paging never resumed


async def test_a_caller_going_away_does_not_cancel_a_change_in_flight():
    clients: list[Watched] = []

    def factory() -> Watched:
        client = Watched.for_simulator(sim.api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
        clients.append(client)
        return client

    async with SimServer() as sim:
        app = create_app(factory, token=TOKEN)
        async with (
            running(app) as (base, _),
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=SAFETY) as http,
        ):
            mes = await mes_id(http)
            (client,) = clients
            client.started = anyio.Event()
            sim.faults.rest_delay = 0.5  # the placement is still upstream when the caller leaves
            placing = partial(http.post, "/orders", json=order(mes, custom_tag="stays"))
            async with anyio.create_task_group() as group:
                group.start_soon(placing)
                with anyio.fail_after(SAFETY):
                    await client.started.wait()
                group.cancel_scope.cancel()  # the caller hangs up
            sim.faults.rest_delay = 0
            hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            since: dict[str, str | int] = {"account_id": ACCOUNT, "start": hour_ago}
            with anyio.fail_after(SAFETY):  # it lands: the change ran to its end
                while True:
                    found = (await http.get("/orders", params=since)).json()["orders"]
                    if [o["custom_tag"] for o in found] == ["stays"]:
                        break
                    await anyio.sleep(0.05)
            assert not client.cancelled.is_set()


# --- B: token first, bounded bodies ---


async def test_token_comes_before_the_body_and_bodies_are_bounded():
    async with service() as (_, http):
        base = base_of(http)
        huge = [("Content-Type", "application/json"), ("Content-Length", "200000000")]
        async with anyio.create_task_group() as group:
            results: dict[str, int] = {}

            async def unauthorized() -> None:
                answer = await send_partially(base, "POST", "/orders", huge, b'{"account_id"')
                assert answer.json() == {"detail": "missing or invalid bearer token"}
                assert answer.headers["www-authenticate"] == "Bearer"
                assert answer.headers["connection"] == "close"  # the body is never read
                results["no token"] = answer.status

            async def too_large() -> None:
                headers = [*huge, ("Authorization", f"Bearer {TOKEN}")]
                answer = await send_partially(base, "POST", "/orders", headers, b"{")
                assert "65536" in answer.json()["detail"]
                assert answer.headers["connection"] == "close"
                results["declared"] = answer.status

            with anyio.fail_after(SAFETY):
                group.start_soon(unauthorized)
                group.start_soon(too_large)
                await health_answers(base, TOKEN)
        assert results == {"no token": 401, "declared": 413}

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"account_id": "'
            for _ in range(32):
                yield b"x" * 4096

        streamed = await http.post("/orders", content=chunks(), headers=JSON)
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["detail"]
        page = {"Content-Type": "text/plain"}
        simple = await http.post("/orders", content=b'{"a": 1}', headers=page)
        assert simple.status_code == 415, simple.text
        assert "application/json" in simple.json()["detail"]
        anonymous = httpx.AsyncClient(base_url=base, timeout=SAFETY)
        async with anonymous:
            cross_site = await anonymous.post("/orders", content=b"{}", headers=page)
        assert cross_site.status_code == 401
        mes = await mes_id(http)
        charset = {"Content-Type": "application/json; charset=utf-8"}
        placed = await http.post("/orders", json=order(mes), headers=charset)
        assert placed.status_code == 201, placed.text
        responses = (await http.get("/openapi.json")).json()["paths"]["/orders"]["post"]
        assert {"401", "413", "415"} <= set(responses["responses"])


# --- C: non-finite numbers ---


async def test_nan_is_a_422_and_the_connection_stays_usable():
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with service() as (_, http):
        mes = await mes_id(http)
        base = base_of(http)
        async with httpx.AsyncClient(
            base_url=base, headers=AUTH, timeout=SAFETY, limits=limits
        ) as one:
            ports: set[int] = set()

            async def post(body: bytes) -> httpx.Response:
                response = await one.post("/orders", content=body, headers=JSON)
                ports.add(response.extensions["network_stream"].get_extra_info("client_addr")[1])
                return response

            for literal in (b"NaN", b"Infinity", b"-Infinity", b"1E+400"):
                body = b'{"account_id": %d, "contract_id": "%s", "side": "BUY", "type": "LIMIT",'
                body %= (ACCOUNT, mes.encode())
                refused = await post(body + b' "limit_price": ' + literal + b"}")
                assert refused.status_code == 422, refused.text
                (issue,) = refused.json()["detail"]
                assert issue["loc"] == ["body", "limit_price"]
                assert "finite" in issue["msg"]
                await health_answers(base, TOKEN)
            placed = await post(
                b'{"account_id": %d, "contract_id": "%s", "side": "BUY", '
                b'"type": "MARKET"}' % (ACCOUNT, mes.encode())
            )
            assert placed.status_code == 201, placed.text
            assert len(ports) == 1  # every answer came on the one connection


# --- D: the custom tag ---


async def test_placing_answers_the_custom_tag_to_reconcile_by():
    async with service() as (sim, http):
        mes = await mes_id(http)
        placed = await http.post("/orders", json=order(mes))
        assert placed.status_code == 201, placed.text
        answer = placed.json()
        assert answer["status"] == "FILLED"  # read back at once: the market order filled
        assert answer["order"]["id"] == answer["order_id"]
        assert answer["order"]["custom_tag"] == answer["custom_tag"]
        assert answer["custom_tag"].startswith("tf-")
        params = {"account_id": ACCOUNT}
        found = await http.get(f"/orders/{answer['order_id']}", params=params)
        assert found.json()["custom_tag"] == answer["custom_tag"]
        own = await http.post("/orders", json=order(mes, custom_tag="desk-7"))
        assert own.json()["custom_tag"] == "desk-7"
        # Placed, but not read back: the answer says so rather than guessing.
        sim.faults.rest_statuses = [0, *[503] * 20]
        unread = await http.post("/orders", json=order(mes, custom_tag="desk-8"))
        sim.faults.rest_statuses = []
        assert unread.status_code == 201, unread.text
        assert unread.json()["status"] == "ACCEPTED"
        assert unread.json()["order"] is None
        assert unread.json()["custom_tag"] == "desk-8"
        sim.faults.rest_drops = 1  # carried out, but the answer is lost
        async with anyio.create_task_group() as group:
            lost: list[httpx.Response] = []

            async def place() -> None:
                lost.append(await http.post("/orders", json=order(mes, side="SELL")))

            group.start_soon(place)
            await health_answers(base_of(http), TOKEN)
        (uncertain,) = lost
        assert uncertain.status_code == 503, uncertain.text
        tag = uncertain.json()["custom_tag"]
        assert tag.startswith("tf-")
        assert tag not in (answer["custom_tag"], "desk-7")
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        orders = (await http.get("/orders", params={**params, "start": since})).json()["orders"]
        assert [o["side"] for o in orders if o["custom_tag"] == tag] == ["SELL"]


# --- E: idle connections ---


async def test_idle_connections_neither_lock_callers_out_nor_stay_open():
    limits = ServeLimits(header_timeout=8.0, max_connections=4)
    async with SimServer() as sim:
        app = create_app(simulator_client(sim), token=TOKEN)
        async with running(app, limits) as (base, server), AsyncExitStack() as stack:
            host, port = base.removeprefix("http://").split(":")
            idle = [
                await stack.enter_async_context(await anyio.connect_tcp(host, int(port)))
                for _ in range(12)
            ]
            with anyio.fail_after(SAFETY):
                while server.waiting_connections < 2 * limits.max_connections:
                    await anyio.sleep(0.02)
            await health_answers(base, TOKEN)  # more idle sockets than the limit, yet served
            kept: list[httpx.AsyncClient] = []
            for _ in range(2 * limits.max_connections):  # answered, then kept alive idle
                client = await stack.enter_async_context(httpx.AsyncClient(timeout=SAFETY))
                assert (await client.get(f"{base}/openapi.json")).status_code == 200
                kept.append(client)
            await health_answers(base, TOKEN)
            for client in kept:
                await client.aclose()
            with anyio.fail_after(SAFETY):
                for stream in idle:
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await stream.receive()
                while server.waiting_connections:  # the kept-alive ones are gone too
                    await anyio.sleep(0.02)
            await health_answers(base, TOKEN)


# --- F: hosts ---


async def test_only_the_allowed_hosts_are_answered():
    async with service(allowed_hosts=["127.0.0.1", "desk.lan"]) as (_, http):
        base = base_of(http)
        evil = {"Host": "evil.example"}
        async with httpx.AsyncClient(base_url=base, timeout=SAFETY) as anonymous:
            redirect = await anonymous.get("/health/", headers=evil)
            assert redirect.status_code == 400
            assert "location" not in redirect.headers
            assert "evil" not in redirect.text
            assert "does not answer for" in redirect.json()["detail"]
            assert (await anonymous.get("/health/")).status_code == 401  # token first
        assert (await http.get("/health/")).status_code == 404  # no redirect to reflect a host
        assert (await http.get("/health", headers=evil)).status_code == 400
        assert (await http.get("/health", headers={"Host": "localhost"})).status_code == 400
        assert (await http.get("/health", headers={"Host": "desk.lan:8000"})).status_code == 200
        await health_answers(base, TOKEN)
    async with service() as (_, http):
        for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
            assert (await http.get("/health", headers={"Host": host})).status_code == 200


# --- G: number and text rules ---

LENIENT: list[dict[str, Any]] = [
    {"limit_price": "1_000", "type": "LIMIT"},
    {"limit_price": " 1.00 ", "type": "LIMIT"},
    {"limit_price": "1e999", "type": "LIMIT"},
    {"size": "1"},
    {"size": 1.0},
    {"size": True},
    {"account_id": True},
    {"account_id": "20258288"},
    {"custom_tag": "a\x00b"},
    {"custom_tag": "tag\r\nX-Injected: 1"},
    {"custom_tag": " padded"},
    {"contract_id": "C" * 1000},
    {"contract_id": "CON F"},
    {"stop_loss": {"ticks": 0, "type": "STOP"}},
    {"stop_loss": {"ticks": 8.0, "type": "STOP"}},
]


async def test_body_values_are_read_strictly():
    async with service() as (_, http):
        mes = await mes_id(http)
        for change in LENIENT:
            refused = await http.post("/orders", json=order(mes, **change))
            assert refused.status_code == 422, (change, refused.text)
            (field,) = change.keys() - {"type"}
            assert refused.json()["detail"][0]["loc"][:2] == ["body", field]
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        window: dict[str, str | int] = {"account_id": ACCOUNT, "start": since}
        assert (await http.get("/orders", params=window)).json() == {"orders": []}  # none sent
        await health_answers(base_of(http), TOKEN)
        assert (await http.post("/orders", json=order(mes, size=2))).status_code == 201


async def test_query_and_path_values_are_read_strictly():
    async with service() as (_, http):
        refusals: list[tuple[str, dict[str, Any]]] = [
            ("/orders/open", {"account_id": "1_0"}),
            ("/orders/open", {"account_id": " 1"}),
            ("/orders/open", {"account_id": "0"}),
            ("/orders/open", {"account_id": "9" * 17}),
            ("/contracts", {"search": "a\x00b"}),
            ("/contracts", {"search": "M" * 300}),
            ("/contracts/" + "C" * 1000, {}),
            ("/contracts/by-symbol/%20MES", {}),
            ("/bars", year_of_seconds("C" * 65, limit=1)),
            ("/bars", year_of_seconds("CON.F.US.MES.Z26", limit="1_0")),
        ]
        for path, params in refusals:
            refused = await http.get(path, params=params)
            assert refused.status_code == 422, (path, params, refused.text)
        for path in ("/orders/1_0", "/orders/" + "9" * 5000, "/orders/-1"):
            assert (await http.get(path, params={"account_id": ACCOUNT})).status_code == 404
        assert (await http.get("/orders/0", params={"account_id": ACCOUNT})).status_code == 422
        await health_answers(base_of(http), TOKEN)
