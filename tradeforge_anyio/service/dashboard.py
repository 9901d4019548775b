"""The cockpit at ``/``: one page, its script and its style, shipped with the package.

The page holds no data, so it needs no token; its script asks for the token once (or takes it
from the ``#token=`` fragment of the link ``serve`` prints, which no server ever sees) and then
uses only the service's own REST routes and ``/ws/stream``. A strict Content-Security-Policy
lets the page load nothing but this service's files and talk to nothing but this service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse

__all__ = ["DASHBOARD", "install_dashboard"]

DASHBOARD: Final = "/"
FILES: Final = Path(__file__).resolve().parent / "static"
_ASSETS: Final = {
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _file_route(app: FastAPI, path: str, name: str, media_type: str) -> None:
    file = FILES / name

    async def serve_file() -> FileResponse:
        return FileResponse(file, media_type=media_type, headers=SECURITY_HEADERS)

    app.add_api_route(path, serve_file, include_in_schema=False, name=f"dashboard {name}")


def install_dashboard(app: FastAPI) -> frozenset[str]:
    """Add the page and its files to ``app``; answer their paths (they need no token)."""
    _file_route(app, DASHBOARD, "dashboard.html", "text/html; charset=utf-8")
    for path, (name, media_type) in _ASSETS.items():
        _file_route(app, path, name, media_type)
    return frozenset({DASHBOARD, *_ASSETS})
