"""The API console works offline: every file its pages load comes from this service."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

from .test_app import serving

pytestmark = pytest.mark.anyio


class _References(HTMLParser):
    """Every address a page points its browser at: scripts, styles, icons, links, images."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [v for k, v in attrs if k in ("src", "href") and v]


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/"])
async def test_console_pages_load_nothing_from_elsewhere(page: str) -> None:
    async with serving() as (_, http):
        http.headers.pop("Authorization")  # a browser opening the page has no token
        response = await http.get(page)
        assert response.status_code == 200
        html = response.text
        found = references(html)
        assert any(ref.endswith(".js") for ref in found), found
        for ref in found:
            address = urlsplit(ref)
            assert not address.scheme, ref
            assert not address.netloc, ref
            asset = await http.get(ref)
            assert asset.status_code == 200, ref
            assert asset.content, ref
        # No address of another host anywhere in the page, inline scripts included.
        for marker in ("http://", "https://", "//cdn", "fonts.googleapis"):
            assert marker not in html, marker


async def test_the_dashboard_may_load_and_reach_nothing_but_this_service() -> None:
    async with serving() as (_, http):
        http.headers.pop("Authorization")
        page = await http.get("/")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in page.text  # only files: the policy allows no inline script
        script = await http.get("/dashboard/dashboard.js")
        assert script.headers["content-type"].startswith("text/javascript")
        for marker in ("http://", "https://", "//cdn", "import(", "eval("):
            assert marker not in script.text, marker
        assert (await http.get("/dashboard/other.js")).status_code == 401


async def test_console_files_have_their_types_and_the_api_still_needs_the_token() -> None:
    async with serving() as (_, http):
        token = http.headers.pop("Authorization")
        found = references((await http.get("/docs")).text)
        kinds = {(await http.get(ref)).headers["content-type"].split(";")[0] for ref in found}
        assert {"text/javascript", "text/css", "image/png"} <= kinds
        assert (await http.get("/docs/assets/../accounts")).status_code in (401, 404)
        assert (await http.get("/docs/assets/other.js")).status_code == 401
        assert (await http.get("/accounts")).status_code == 401
        assert (await http.get("/accounts", headers={"Authorization": token})).status_code == 200


def _body_examples(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each operation's request body example, by (method, path)."""
    schemas = document["components"]["schemas"]
    found = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"]
            examples = schemas[ref.rsplit("/", 1)[1]].get("examples")
            assert examples, f"{method.upper()} {path} shows no example"
            found[method, path] = examples[0]
    return found


async def test_each_example_of_the_console_is_accepted_by_the_api() -> None:
    """ "Try it out" with the example as shown works on the embedded simulator."""
    async with serving() as (_, http):
        examples = _body_examples((await http.get("/openapi.json")).json())
        assert set(examples) == {
            ("post", "/orders"),
            ("patch", "/orders/{order_id}"),
            ("post", "/positions/close"),
            ("post", "/positions/partial-close"),
        }
        placed = await http.post("/orders", json=examples["post", "/orders"])
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "FILLED"
        order = {k: v for k, v in examples["post", "/orders"].items() if k != "custom_tag"}
        assert (await http.post("/orders", json=order)).status_code == 201  # now 2 long
        reduce = await http.post(
            "/positions/partial-close", json=examples["post", "/positions/partial-close"]
        )
        assert reduce.status_code == 204, reduce.text
        close = await http.post("/positions/close", json=examples["post", "/positions/close"])
        assert close.status_code == 204, close.text
        low = {**order, "type": "LIMIT", "limit_price": "1000"}
        working = (await http.post("/orders", json=low)).json()
        assert working["status"] == "OPEN", working
        change = await http.patch(
            f"/orders/{working['order_id']}",
            params={"account_id": order["account_id"]},
            json=examples["patch", "/orders/{order_id}"],
        )
        assert change.status_code == 204, change.text
        positions = await http.get("/positions", params={"account_id": order["account_id"]})
        assert positions.json()["positions"] == []
