"""Requests outside the published OpenAPI document are refused, not half-understood.

A misspelt query parameter (``onlyActive`` for ``only_active``) would otherwise be ignored and the
call run with the default; it gets 422 instead. A method a path lacks gets 405 with an ``Allow``
header naming every method the path has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

__all__ = ["QueryNames", "method_not_allowed"]


class QueryNames:
    """A dependency refusing query parameters the operation does not declare."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], frozenset[str]] | None = None

    def _table(self, app: FastAPI) -> dict[tuple[str, str], frozenset[str]]:
        if self._known is None:
            self._known = {
                (path, method.upper()): frozenset(
                    p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"
                )
                for path, operations in app.openapi()["paths"].items()
                for method, operation in operations.items()
            }
        return self._known

    def __call__(self, request: Request) -> None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        known = self._table(request.app).get((route.path_format, request.method), frozenset())
        unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
        if unknown:
            raise RequestValidationError(
                [
                    {
                        "type": "extra_forbidden",
                        "loc": ("query", name),
                        "msg": "Unknown query parameter",
                        "input": request.query_params[name],
                    }
                    for name in unknown
                ]
            )


def method_not_allowed(
    app: FastAPI, routers: Sequence[APIRouter], note: str = ""
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A 405 handler naming the methods of every route on the path, not only the first matched.

    ``note`` is added to the message (why methods may be missing, such as a read-only service).
    """

    def methods_on_path(candidates: Iterable[BaseRoute], scope: Scope) -> Iterator[str]:
        for route in candidates:
            methods = route.methods if isinstance(route, Route) else None
            if methods and route.matches(scope)[0] is not Match.NONE:
                yield from methods

    async def handle(request: Request, exc: Exception) -> Response:
        routes = [*app.router.routes, *(route for router in routers for route in router.routes)]
        methods = set(methods_on_path(routes, request.scope))
        return JSONResponse(
            {"detail": f"Method Not Allowed{note}"},
            status_code=405,
            headers={"Allow": ", ".join(sorted(methods))},
        )

    return handle
