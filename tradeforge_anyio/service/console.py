"""The pages a person opens in a browser: the API console at ``/docs`` and ``/redoc``.

Both work without internet: their scripts, styles and icon are files installed with the
``fastapi-offline`` package, served here, never fetched from a CDN. The pages hold no data, so
they need no token; the console's Authorize button sends the token with each call it makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response

DOCS: Final = "/docs"
REDOC: Final = "/redoc"
OAUTH2_REDIRECT: Final = "/docs/oauth2-redirect"
ASSETS: Final = "/docs/assets"
ASSET_TYPES: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""Every file the two pages load, with its content type."""

_FILES: Final = Path(fastapi_offline.__file__).resolve().parent / "static"


_FETCHED_ELSEWHERE: Final = {
    # ReDoc draws its maker's logo from their CDN, with no option to leave it out: the page
    # shows the service's icon in its place.
    "redoc.standalone.js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"favicon.png"),
}
"""Addresses of other hosts that an asset would fetch, and what it gets here instead."""


def _asset_route(app: FastAPI, name: str, media_type: str) -> str:
    path = f"{ASSETS}/{name}"
    # The files change only with the installed package: a day in the browser's cache.
    cached = {"Cache-Control": "max-age=86400"}
    if name in _FETCHED_ELSEWHERE:
        remote, local = _FETCHED_ELSEWHERE[name]
        content = (_FILES / name).read_bytes().replace(remote, f"{ASSETS}/".encode() + local)

        async def rewritten() -> Response:
            return Response(content, media_type=media_type, headers=cached)

        app.add_api_route(path, rewritten, include_in_schema=False)
        return path
    file = _FILES / name

    async def asset() -> FileResponse:
        return FileResponse(file, media_type=media_type, headers=cached)

    app.add_api_route(path, asset, include_in_schema=False)
    return path


def install_console(app: FastAPI) -> frozenset[str]:
    """Add the console's pages and files to ``app``; answer the paths that need no token."""
    openapi = app.openapi_url or "/openapi.json"
    assets = {name: _asset_route(app, name, kind) for name, kind in ASSET_TYPES.items()}

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=f"{app.title} - API console",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_js_url=assets["swagger-ui-bundle.js"],
            swagger_css_url=assets["swagger-ui.css"],
            swagger_favicon_url=assets["favicon.png"],
            # No schema validator badge: it would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi,
            title=f"{app.title} - API reference",
            redoc_js_url=assets["redoc.standalone.js"],
            redoc_favicon_url=assets["favicon.png"],
            with_google_fonts=False,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS, docs, include_in_schema=False)
    app.add_api_route(REDOC, redoc, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT, oauth2_redirect, include_in_schema=False)
    return frozenset({DOCS, REDOC, OAUTH2_REDIRECT, openapi, *assets.values()})


__all__ = ["install_console"]
