"""The REST web service against the embedded simulator, through an in-process ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.net import TransportError
from tradeforge_anyio.service import create_app
from tradeforge_anyio.service.errors import error_response
from tradeforge_proto.calls import RetryPolicy
from tradeforge_proto.core.errors import (
    AuthenticationError,
    ConfigurationError,
    FeatureDisabled,
    RemoteProtocolError,
    ServerError,
    TradeForgeError,
    ValidationFailed,
)
from tradeforge_proto.core.operations import RateBucket
from tradeforge_proto.limits import RateBudget
from tradeforge_sim.accounts import accounts_of
from tradeforge_sim.auth import DEFAULT_API_KEY
from tradeforge_sim.engine import SimAccount
from tradeforge_sim.paper import rules_lookup
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

from .harness import served, simulator_client

pytestmark = pytest.mark.anyio
ACCOUNT = 20258288
TOKEN = "s3rvice-token"
JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def serving(
    *,
    read_only: bool = False,
    api_key: str = DEFAULT_API_KEY,
    token: str = TOKEN,
    config: SimConfig | None = None,
    **client_options: Any,
) -> AsyncIterator[tuple[SimServer, httpx.AsyncClient]]:
    async with SimServer(config) as sim:
        factory = simulator_client(sim, api_key, **client_options)
        app = create_app(factory, token=TOKEN, read_only=read_only)
        async with (
            served(app) as base,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            yield sim, http


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def mes_id(http: httpx.AsyncClient) -> str:
    return str(ok(await http.get("/contracts/by-symbol/MES"))["id"])


async def test_reads():
    async with serving() as (_, http):
        assert ok(await http.get("/health")) == {"status": "ok"}
        assert ok(await http.get("/ready")) == {
            "ready": True,
            "login": "ok",
            "detail": None,
            "provider": "topstepx",
            "environment": "simulator",
            "simulator": True,
            "read_only": False,
            "stream": {
                "running": False,
                "user_hub": "idle",
                "market_hub": "idle",
                "clients": 0,
                "subscriptions": 0,
            },
        }
        accounts = ok(await http.get("/accounts"))["accounts"]
        assert [a["id"] for a in accounts] == [20258288, 20258289]
        assert isinstance(accounts[0]["balance"], str)
        assert ok(await http.get("/accounts", params={"only_active": "false"}))["accounts"]
        mes = ok(await http.get("/contracts/by-symbol/mes"))
        assert mes["symbol_id"] == "F.US.MES"
        assert Decimal(mes["tick_size"]) == Decimal("0.25")
        assert ok(await http.get(f"/contracts/{mes['id']}")) == mes
        assert mes in ok(await http.get("/contracts/available"))["contracts"]
        found = ok(await http.get("/contracts", params={"search": "MES", "live": "false"}))
        assert any(c["id"] == mes["id"] for c in found["contracts"])
        missing = await http.get("/contracts/by-symbol/NOPE")
        assert missing.status_code == 404
        end = datetime.now(UTC).replace(microsecond=0)
        params = {
            "contract_id": mes["id"],
            "unit": "HOUR",
            "unit_number": 1,
            "start": (end - timedelta(hours=5)).isoformat(),
            "end": end.isoformat(),
            "limit": 3,
            "include_partial_bar": "true",
        }
        bars = ok(await http.get("/bars", params=params))["bars"]
        assert len(bars) == 3
        assert Decimal(bars[0]["low"]) <= Decimal(bars[0]["high"])
        naive = {**params, "start": (end - timedelta(hours=5)).replace(tzinfo=None).isoformat()}
        assert (await http.get("/bars", params=naive)).status_code == 422
        # `end` is optional on every windowed read: omitted, the window ends now.
        until_now = {k: v for k, v in params.items() if k != "end"}
        assert len(ok(await http.get("/bars", params=until_now))["bars"]) == 3
        # A number in any form is not read as seconds since 1970.
        for number in ("1700000000", "-2.2747527394229443e-142", "1e9", " 17e8"):
            numbered = ok(await http.get("/bars", params={**params, "start": number}), 422)
            assert "ISO 8601" in str(numbered["detail"])
            refused = await http.get("/journal", params={"since": number})
            assert refused.status_code == 422, number
        since = (end - timedelta(hours=1)).isoformat()
        account = {"account_id": ACCOUNT}
        assert ok(await http.get("/orders/open", params=account)) == {"orders": []}
        assert ok(await http.get("/positions", params=account)) == {"positions": []}
        assert ok(await http.get("/trades", params={**account, "start": since})) == {"trades": []}
        assert ok(await http.get("/orders", params={**account, "start": since})) == {"orders": []}


async def test_order_lifecycle():
    async with serving() as (_, http):
        mes = await mes_id(http)
        market = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
        order_id = ok(await http.post("/orders", json={**market, "size": 2}), 201)["order_id"]
        order = ok(await http.get(f"/orders/{order_id}", params={"account_id": ACCOUNT}))
        assert order["status"] == "FILLED"
        assert order["side"] == "BUY"
        assert order["type"] == "MARKET"
        assert order["custom_tag"].startswith("tf-")
        (position,) = ok(await http.get("/positions", params={"account_id": ACCOUNT}))["positions"]
        assert position["side"] == "LONG"
        assert position["size"] == 2
        price = int(Decimal(position["average_price"])) - 50
        limit = {
            **market,
            "type": "LIMIT",
            "limit_price": str(price),
            "custom_tag": "svc-1",
        }
        resting = ok(await http.post("/orders", json=limit), 201)["order_id"]
        change = {"limit_price": price - 1}
        account = {"account_id": ACCOUNT}  # in the query, as for every route of one order
        assert ok(await http.patch(f"/orders/{resting}", params=account, json=change), 204) is None
        in_body = {**change, "account_id": ACCOUNT}
        assert ok(await http.patch(f"/orders/{resting}", params=account, json=in_body), 422)
        got = ok(await http.get(f"/orders/{resting}", params={"account_id": ACCOUNT}))
        assert Decimal(got["limit_price"]) == price - 1
        assert got["custom_tag"] == "svc-1"
        working = ok(await http.get("/orders/open", params={"account_id": ACCOUNT}))["orders"]
        assert [o["id"] for o in working] == [resting]
        ok(await http.delete(f"/orders/{resting}", params={"account_id": ACCOUNT}), 204)
        reduce = {"account_id": ACCOUNT, "contract_id": mes, "size": 1}
        ok(await http.post("/positions/partial-close", json=reduce), 204)
        flatten = {"account_id": ACCOUNT, "contract_id": mes}
        ok(await http.post("/positions/close", json=flatten), 204)
        assert ok(await http.get("/positions", params={"account_id": ACCOUNT})) == {"positions": []}
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        window: dict[str, str | int] = {"account_id": ACCOUNT, "start": since}
        assert len(ok(await http.get("/orders", params=window))["orders"]) == 4
        fills = ok(await http.get("/trades", params=window))["trades"]
        assert sum(f["size"] for f in fills) == 4
        assert all(isinstance(f["price"], str) for f in fills)
        # The day's realized P&L is what the closing fills made, less every fill's fees.
        day = ok(await http.get("/pnl", params={"account_id": ACCOUNT}))
        made = sum(Decimal(f["profit_and_loss"] or 0) for f in fills)
        costs = sum(Decimal(f["fees"]) + Decimal(f["commissions"] or 0) for f in fills)
        assert Decimal(day["realized_pnl"]) == made - costs
        assert costs > 0
        assert day["fills"] == len(fills)
        assert day["account_id"] == ACCOUNT
        assert day["start"].endswith("Z")
        assert datetime.fromisoformat(day["start"]) <= datetime.now(UTC)


async def test_bracketed_order():
    oco = SimAccount(id=ACCOUNT, name="OCO", balance=Decimal(50_000), auto_oco_brackets=True)
    async with serving(config=SimConfig(accounts=(oco,))) as (_, http):
        mes = await mes_id(http)
        order = {
            "account_id": ACCOUNT,
            "contract_id": mes,
            "side": "SELL",
            "type": "MARKET",
            "stop_loss": {"ticks": 8, "type": "STOP"},
            "take_profit": {"ticks": -8, "type": "LIMIT"},
        }
        order_id = ok(await http.post("/orders", json=order), 201)["order_id"]
        legs = ok(await http.get("/orders/open", params={"account_id": ACCOUNT}))["orders"]
        assert {leg["type"] for leg in legs} == {"STOP", "LIMIT"}
        assert all(leg["parent_order_id"] == order_id for leg in legs)
        wrong_way = {**order, "stop_loss": {"ticks": -8, "type": "STOP"}}
        assert (await http.post("/orders", json=wrong_way)).status_code == 422


async def test_missing_or_wrong_token_is_refused():
    async with serving(token="wrong") as (_, http):
        for response in (
            await http.get("/ready"),
            await http.get("/ready", headers={"Authorization": ""}),
            await http.post("/orders", json={}),
        ):
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "wrong" not in response.text
    async with serving() as (_, http):
        http.headers.pop("Authorization")
        assert (await http.get("/accounts")).status_code == 401
        basic = await http.get("/accounts", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        # The console and its document are public (no data); every API call is not.
        document = ok(await http.get("/openapi.json"))
        assert document["paths"]["/orders"]["post"]
        assert document["components"]["securitySchemes"]
        assert (await http.get("/docs")).status_code == 200


async def test_read_only_hides_every_change():
    async with serving(read_only=True) as (_, http):
        assert ok(await http.get("/ready"))["read_only"] is True
        mes = await mes_id(http)
        order = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
        position = {"account_id": ACCOUNT, "contract_id": mes}
        for response in (
            await http.post("/positions/close", json=position),
            await http.post("/positions/partial-close", json={**position, "size": 1}),
        ):
            assert response.status_code == 404, response.text
        # Where a read shares the path, the change is a method the path no longer has.
        for response in (
            await http.post("/orders", json=order),
            await http.patch("/orders/1", params={"account_id": ACCOUNT}, json={"size": 2}),
            await http.delete("/orders/1", params={"account_id": ACCOUNT}),
        ):
            assert response.status_code == 405, response.text
            assert response.headers["Allow"] == "GET"
            assert response.json()["detail"] == "Method Not Allowed (this service is read-only)"
        assert ok(await http.get("/orders/open", params={"account_id": ACCOUNT})) == {"orders": []}
        # Methods that never existed are still 405s, naming what is left.
        for method, path, allowed in (("POST", "/health", "GET"), ("PUT", "/orders", "GET")):
            refused = await http.request(method, path)
            assert refused.status_code == 405, (method, path)
            assert refused.headers["Allow"] == allowed
        doc = ok(await http.get("/openapi.json"))
        assert "post" not in doc["paths"]["/orders"]
        assert "/positions/close" not in doc["paths"]


async def test_a_finished_order_cannot_be_cancelled_or_changed_and_says_why():
    async with serving() as (_, http):
        mes = await mes_id(http)
        market = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
        filled = ok(await http.post("/orders", json=market), 201)["order_id"]
        account = {"account_id": ACCOUNT}
        refused = ok(await http.delete(f"/orders/{filled}", params=account), 409)
        assert refused["detail"] == f"order {filled} is already FILLED: nothing to cancel"
        change = await http.patch(f"/orders/{filled}", params=account, json={"size": 3})
        assert ok(change, 409)["detail"] == f"order {filled} is already FILLED: nothing to change"
        limit = {**market, "type": "LIMIT", "limit_price": "1000"}
        resting = ok(await http.post("/orders", json=limit), 201)["order_id"]
        ok(await http.delete(f"/orders/{resting}", params=account), 204)
        again = ok(await http.delete(f"/orders/{resting}", params=account), 409)
        assert "already CANCELLED" in again["detail"]
        unknown = ok(await http.delete("/orders/987654321", params=account), 404)
        assert unknown["provider_code_name"] == "OrderNotFound"
        ok(
            await http.post("/positions/close", json={"account_id": ACCOUNT, "contract_id": mes}),
            204,
        )


async def test_rejections_and_invalid_orders():
    async with serving() as (_, http):
        mes = await mes_id(http)
        order = {
            "account_id": ACCOUNT,
            "contract_id": mes,
            "side": "BUY",
            "type": "MARKET",
            "custom_tag": "twice",
        }
        ok(await http.post("/orders", json=order), 201)
        rejected = ok(await http.post("/orders", json=order), 409)
        assert rejected["provider_code_name"] == "OrderRejected"
        assert isinstance(rejected["provider_code"], int)
        assert "twice" in rejected["message"]
        local = ok(await http.post("/orders", json={**order, "type": "LIMIT"}), 422)
        assert "limit_price" in local["detail"][0]["msg"]
        assert (await http.post("/orders", json={**order, "side": "UP"})).status_code == 422
        nothing = await http.patch("/orders/5", params={"account_id": ACCOUNT}, json={})
        assert nothing.status_code == 422


async def test_requests_outside_the_document_are_refused_clearly():
    async with serving() as (_, http):
        misspelt = ok(await http.get("/accounts", params={"onlyActive": "false"}), 422)
        assert misspelt["detail"] == [
            {
                "type": "extra_forbidden",
                "loc": ["query", "onlyActive"],
                "msg": "Unknown query parameter",
                "input": "false",
            }
        ]
        ok(await http.get("/accounts", params={"only_active": "false"}))
        wrong_method = await http.put("/orders")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["Allow"] == "GET, POST"
        assert (await http.patch("/orders/open")).status_code == 405
        assert (await http.get("/orders/not-a-number")).status_code == 404
        garbled = ok(await http.post("/orders", content=b"\xff{", headers=JSON), 400)
        assert garbled["detail"]
        cut = ok(await http.post("/orders", content=b'{"account_id": 1,', headers=JSON), 400)
        assert cut["detail"].startswith("the body is not valid JSON at character 17: ")
        assert (await http.post("/orders", content=b"[]", headers=JSON)).status_code == 422
        assert ok(await http.get("/health", params={"x": "1"}), 422)["detail"][0]["loc"] == [
            "query",
            "x",
        ]
        beyond: dict[str, str | int] = {"account_id": ACCOUNT, "start": "9999-12-31T23:59:59-01:00"}
        out_of_range = ok(await http.get("/orders", params=beyond), 422)["detail"][0]
        assert out_of_range["loc"] == ["request"]
        assert "out of range" in out_of_range["msg"]


async def test_unknown_order_is_not_found():
    async with serving() as (_, http):
        missing = ok(await http.get("/orders/987654", params={"account_id": ACCOUNT}), 404)
        assert missing["provider_code_name"] == "OrderNotFound"
        assert "OrderNotFound" in missing["detail"]
        cancel = await http.delete("/orders/987654", params={"account_id": ACCOUNT})
        assert ok(cancel, 404)["provider_code_name"] == "OrderNotFound"


async def test_lost_answer_to_a_placement_is_uncertain():
    async with serving() as (sim, http):
        mes = await mes_id(http)
        sim.faults.rest_drops = 1
        order = {
            "account_id": ACCOUNT,
            "contract_id": mes,
            "side": "SELL",
            "type": "MARKET",
            "custom_tag": "lost-1",
        }
        uncertain = ok(await http.post("/orders", json=order), 503)
        assert uncertain["status"] == "uncertain"
        assert uncertain["change"] == "PLACE"
        assert uncertain["custom_tag"] == "lost-1"
        assert uncertain["account_id"] == ACCOUNT
        assert uncertain["contract_id"] == mes
        assert datetime.fromisoformat(uncertain["sent_at"]) <= datetime.now(UTC)
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        window: dict[str, str | int] = {"account_id": ACCOUNT, "start": since}
        (placed,) = ok(await http.get("/orders", params=window))["orders"]
        assert placed["custom_tag"] == "lost-1"


async def test_rate_limited_placement_is_not_retried():
    async with serving() as (sim, http):
        mes = await mes_id(http)
        sim.faults.rest_statuses.append(429)
        order = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
        limited = await http.post("/orders", json=order)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert ok(await http.get("/positions", params={"account_id": ACCOUNT})) == {"positions": []}


async def test_spent_rate_budget_answers_429_at_once():
    budgets = {RateBucket.GENERAL: RateBudget(3, 60.0)}
    retry = RetryPolicy(max_rate_wait=1.0)
    async with serving(budgets=budgets, retry=retry) as (_, http):
        statuses = [(await http.get("/accounts")).status_code for _ in range(3)]
        # The login and two searches spent the budget; the third search is not sent at all.
        assert statuses == [200, 200, 429]
        refused = await http.get("/accounts")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        body = refused.json()
        assert body["provider_code"] is None
        assert "rate budget of 'general' is spent" in body["detail"]


async def test_refused_upstream_login_is_a_bad_gateway():
    async with serving(api_key="not-the-key") as (_, http):
        refused = ok(await http.get("/accounts"), 502)
        assert refused["provider_code_name"] == "InvalidCredentials"
        assert "not-the-key" not in str(refused)


async def test_ready_tells_a_refused_login_while_health_still_answers():
    async with serving(api_key="not-the-key") as (_, http):
        refused = ok(await http.get("/ready"), 503)
        assert refused["ready"] is False
        assert refused["login"] == "refused"
        assert "not-the-key" not in str(refused)
        assert refused["simulator"] is True  # still says what it would trade on
        assert ok(await http.get("/health")) == {"status": "ok"}  # the process is alive


async def test_ready_tells_an_unreachable_backend():
    async with serving() as (sim, http):
        sim.faults.rest_statuses = [500] * 20  # the login fails, not for its credentials
        unreachable = ok(await http.get("/ready"), 503)
        assert (unreachable["ready"], unreachable["login"]) == (False, "unreachable")
        assert unreachable["detail"]
        sim.faults.rest_statuses.clear()
        assert ok(await http.get("/ready"))["ready"] is True  # back as soon as it answers


async def test_health_is_public_and_asks_nothing_behind_the_service():
    async with serving(token="wrong") as (sim, http):
        http.headers.pop("Authorization")
        sim.faults.rest_statuses = [500]  # consumed by the first request to the simulator
        assert ok(await http.get("/health")) == {"status": "ok"}
        assert ok(await http.get("/health", headers={"Authorization": "Bearer wrong"}))
        assert sim.faults.rest_statuses == [500]
        assert (await http.get("/ready")).status_code == 401
        assert ok(await http.get("/health", params={"x": "1"}), 422)["detail"][0]["loc"] == [
            "query",
            "x",
        ]
        assert (await http.post("/health")).headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (FeatureDisabled("trailing stops are off"), 403),
        (AuthenticationError("no", endpoint="Auth/loginKey", status=401), 502),
        (ServerError(None, endpoint="Order/place", status=503), 502),
        (TransportError("connect timed out", request_sent=False), 502),
        (RemoteProtocolError("garbled"), 502),
        (ConfigurationError("no username"), 500),
    ],
)
async def test_error_statuses(error: TradeForgeError, status: int):
    assert error_response(error).status_code == status


async def test_provider_validation_lists_fields():
    failed = ValidationFailed(
        "bad", endpoint="Order/place", status=400, errors={"size": ("must be positive",)}
    )
    response = error_response(failed)
    assert response.status_code == 422
    assert b'"loc":["body","size"]' in response.body
    empty = error_response(ValidationFailed("bad", endpoint="x", status=400, errors={}))
    assert b'"msg":"bad"' in empty.body


async def test_cors_preflight_needs_no_token():
    async with SimServer() as sim:
        app = create_app(simulator_client(sim), token=TOKEN, cors_origins=["https://desk.example"])
        async with served(app) as base, httpx.AsyncClient(base_url=base) as http:
            preflight = await http.options(
                "/orders",
                headers={
                    "Origin": "https://desk.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://desk.example"
            assert (await http.get("/ready")).status_code == 401


def test_empty_token_is_refused():
    with pytest.raises(ValueError, match="token"):
        create_app(lambda: TradingClient.for_simulator("http://x", "u", "k"), token="")


async def test_each_operation_is_named_after_the_client_method_it_calls():
    async with serving() as (_, http):
        document = ok(await http.get("/openapi.json"))
    names = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert "search_trades" in names
    assert "get_open_positions" in names
    service_only = {"health", "ready", "journal_entries", "account_risk"}
    assert names - service_only <= {n for n in dir(TradingClient) if not n.startswith("_")}


def _is_named_ref(schema: dict[str, Any]) -> bool:
    return set(schema) == {"$ref"}


async def test_openapi_document_is_fully_typed():
    async with serving() as (_, http):
        document = ok(await http.get("/openapi.json"))
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    assert len(operations) == 21
    for operation in operations:
        body = operation.get("requestBody")
        if body is not None:
            assert _is_named_ref(body["content"]["application/json"]["schema"])
        for code, response in operation["responses"].items():
            content = response.get("content")
            if content is None:
                assert code == "204"
                continue
            assert _is_named_ref(content["application/json"]["schema"]), (operation, code)
    builtin = {"HTTPValidationError", "ValidationError"}
    for name, schema in document["components"]["schemas"].items():
        if name in builtin:
            continue
        if "enum" in schema:  # a named set of values
            assert schema["type"] == "string"
            assert schema["enum"]
            continue
        assert schema["type"] == "object"
        for field, spec in schema["properties"].items():
            typed = "type" in spec or "$ref" in spec or "anyOf" in spec or "const" in spec
            assert typed, (name, field)
            assert spec.get("type") != "object", (name, field)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_risk_tells_what_is_left_of_each_limit_of_a_ruled_account():
    config = SimConfig(accounts=accounts_of(["50K", "PRACTICE-50K"]))
    async with SimServer(config) as sim:
        app = create_app(
            simulator_client(sim), token=TOKEN, account_rules=rules_lookup(sim.simulation)
        )
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with served(app) as base, httpx.AsyncClient(base_url=base, headers=headers) as http:
            fresh = ok(await http.get("/risk", params={"account_id": ACCOUNT}))
            assert fresh["rules"] == "50K Combine"
            assert fresh["status"] == "ACTIVE"
            assert Decimal(fresh["daily_loss_remaining"]) == Decimal(1000)
            assert Decimal(fresh["max_loss_remaining"]) == Decimal(2000)
            assert Decimal(fresh["position_remaining"]) == Decimal(5)
            mes = await mes_id(http)
            buy = {"account_id": ACCOUNT, "contract_id": mes, "side": "BUY", "type": "MARKET"}
            ok(await http.post("/orders", json={**buy, "size": 10}), 201)  # 10 micros: 1 mini
            held = ok(await http.get("/risk", params={"account_id": ACCOUNT}))
            assert Decimal(held["position_remaining"]) == Decimal(4)
            # Fees and the spread already cost something: less is left of both loss limits.
            assert Decimal(held["daily_loss_remaining"]) < Decimal(1000)
            assert Decimal(held["max_loss_remaining"]) < Decimal(2000)
            assert held["breaches"] == []
            practice = ok(await http.get("/risk", params={"account_id": ACCOUNT + 1}))
            assert practice["rules"] is None
            assert practice["daily_loss_remaining"] is None
        # A service told no rules says so for every account.
        async with serving() as (_, http):
            assert ok(await http.get("/risk", params={"account_id": ACCOUNT}))["rules"] is None
