"""The API console works offline: every file its pages load comes from this service."""

from __future__ import annotations

from html.parser import HTMLParser
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


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
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
