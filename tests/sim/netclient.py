"""A small client for tests: the sans-IO core over anyio sockets, nothing else."""

from __future__ import annotations

import contextlib
import time
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc

from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.core.operations import HttpRequest, HttpResponse, Operation
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.providers import topstepx
from tradeforge_proto.realtime.machine import (
    CloseConnection,
    FetchToken,
    HubSpec,
    OpenConnection,
    StreamConfig,
    StreamMachine,
)

T = TypeVar("T")


class Rest:
    """One keep-alive HTTP connection to the simulator."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.stream: anyio.abc.SocketStream | None = None
        self.conn: HttpClientConnection | None = None
        self.token: str | None = None

    async def send(self, request: HttpRequest) -> HttpResponse:
        if self.stream is None or self.conn is None or not self.conn.reusable:
            if self.stream is not None:
                await self.stream.aclose()
            self.stream = await anyio.connect_tcp(self.host, self.port)
            self.conn = HttpClientConnection(f"{self.host}:{self.port}")
        if self.token and request.header("authorization") is None:
            request = request.with_header("Authorization", f"Bearer {self.token}")
        await self.stream.send(self.conn.send_request(request))
        while True:
            try:
                data = await self.stream.receive(65536)
            except anyio.EndOfStream:
                data = b""
            response = self.conn.receive_data(data)
            if response is not None:
                return response

    async def run(self, operation: Operation[T]) -> T:
        return operation.parse_response(await self.send(operation.request))

    async def login(self, username: str, api_key: str) -> str:
        token = await self.run(topstepx.login_key(username, api_key))
        self.token = token.reveal()
        return self.token

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()


class Hub:
    """A stream machine driven over a real socket until told to stop."""

    def __init__(self, spec: HubSpec, token: str, config: StreamConfig | None = None) -> None:
        self.machine = StreamMachine(spec, config=config)
        self.token = token
        self.events: list[StreamEvent] = []
        self.stream: anyio.abc.SocketStream | None = None
        self._changed = anyio.Event()
        self.token_fetches = 0

    def subscribe(self, sub: Subscription) -> None:
        self.machine.subscribe(sub, time.time())
        self._changed.set()

    async def run(self) -> None:
        self.machine.start(time.time())
        async with anyio.create_task_group() as tg:
            while True:
                await self._act(tg)
                if self.stream is not None:
                    data = self.machine.data_to_send()
                    if data:
                        try:
                            await self.stream.send(data)
                        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                            self.machine.connection_lost(time.time())
                            self.stream = None
                            continue
                self.events.extend(self.machine.events())
                deadline = self.machine.next_deadline()
                timeout = 0.05 if deadline is None else max(0.0, min(0.05, deadline - time.time()))
                if self.stream is None:
                    await anyio.sleep(timeout)
                else:
                    with anyio.move_on_after(timeout):
                        try:
                            data = await self.stream.receive(65536)
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            data = b""
                        if data:
                            self.machine.receive_data(data, time.time())
                        else:
                            self.machine.connection_lost(time.time())
                            self.stream = None
                self.machine.handle_timer(time.time())

    async def _act(self, tg: anyio.abc.TaskGroup) -> None:
        for action in self.machine.actions():
            now = time.time()
            if isinstance(action, FetchToken):
                self.token_fetches += 1
                self.machine.token_received(Secret(self.token), now)
            elif isinstance(action, OpenConnection):
                try:
                    self.stream = await anyio.connect_tcp(action.host, action.port)
                except OSError as exc:
                    self.machine.connection_failed(exc, time.time())
                else:
                    self.machine.connection_made(time.time())
            elif isinstance(action, CloseConnection) and self.stream is not None:
                data = self.machine.data_to_send()
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    if data:
                        await self.stream.send(data)
                await self.stream.aclose()
                self.stream = None

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[StreamEvent]:
        with anyio.fail_after(timeout):
            while True:
                found = [e for e in self.events if predicate(e)]
                if found:
                    return found
                await anyio.sleep(0.01)
