"""The pages a person opens in a browser: the interactive API console at ``/docs``.

They hold no data, so they need no token; the console's Authorize button sends the token with
each call it makes.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

DOCS: str = "/docs"
OAUTH2_REDIRECT: str = "/docs/oauth2-redirect"


def install_console(app: FastAPI) -> frozenset[str]:
    """Add the console's routes to ``app``; answer the paths that need no token."""

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API console",
            oauth2_redirect_url=OAUTH2_REDIRECT,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS, docs, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT, oauth2_redirect, include_in_schema=False)
    return frozenset({DOCS, OAUTH2_REDIRECT, app.openapi_url or "/openapi.json"})


__all__ = ["install_console"]
