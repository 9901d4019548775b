"""The service as users run it: uvicorn on a real loopback port, the simulator behind it."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
import anyio.abc
import attrs
import h11
import httpx
from fastapi import FastAPI

from tradeforge_anyio.client import TradingClient
from tradeforge_anyio.service.serving import ServeLimits, ServiceServer, build_server
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME
from tradeforge_sim.server import SimServer

SAFETY: Final = 15.0
"""Seconds any one exchange with the service may take before a test gives up on it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def simulator_client(
    sim: SimServer, api_key: str = DEFAULT_API_KEY, **options: Any
) -> Callable[[], TradingClient]:
    """The client factory ``create_app`` takes, logged in to ``sim``."""

    def factory() -> TradingClient:
        return TradingClient.for_simulator(sim.api_url, DEFAULT_USERNAME, api_key, **options)

    return factory


@asynccontextmanager
async def served(app: FastAPI, limits: ServeLimits | None = None) -> AsyncIterator[str]:
    """Run ``app`` (its lifespan included) on 127.0.0.1 as ``tradeforge serve`` does; yields its
    base URL."""
    async with running(app, limits) as (base, _):
        yield base


@asynccontextmanager
async def running(
    app: FastAPI, limits: ServeLimits | None = None
) -> AsyncIterator[tuple[str, ServiceServer]]:
    """``served``, also yielding the server."""
    port = free_port()
    server = build_server(app, host="127.0.0.1", port=port, limits=limits)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}", server
        finally:
            server.should_exit = True


@attrs.frozen
class Answer:
    """An HTTP answer read off a raw connection."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _address(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


async def send_partially(
    base: str,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body_start: bytes = b"",
) -> Answer:
    """Send a request head and only the start of its body, then read the answer.

    An answer to a request whose declared body was not sent shows the service never waited for
    (or read) the rest.
    """
    host, port = _address(base)
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(method=method, target=target, headers=[("Host", host), *headers])
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(connection.send(request))
        if body_start:
            await stream.send(connection.send(h11.Data(data=body_start)))
        return await _read_answer(stream, connection)


async def _read_answer(stream: anyio.abc.ByteStream, connection: h11.Connection) -> Answer:
    status, headers, body = 0, {}, bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive())
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return Answer(status, headers, bytes(body))


async def health_answers(base: str, token: str) -> None:
    """Another caller, on a connection of its own, is served: GET /health answers 200."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=SAFETY) as other:
        response = await other.get("/health")
    assert response.status_code == 200, response.text
