"""Small clients for the simulator's tests: REST over the bare core, hubs through the runtime."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc

from tradeforge_anyio.client import TradingClient
from tradeforge_proto.core.events import StreamEvent
from tradeforge_proto.core.operations import HttpRequest, HttpResponse, Operation
from tradeforge_proto.core.secret import Secret
from tradeforge_proto.core.subscriptions import Subscription
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.providers import topstepx
from tradeforge_proto.realtime import HubSpec, StreamConfig
from tradeforge_sim.auth import DEFAULT_API_KEY, DEFAULT_USERNAME

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
    """One hub of the async runtime's stream on the simulator, recording every event it delivers.

    ``spec`` names the hub (its URL points at the simulator); the stream logs in with the
    simulator's credentials and counts each token it fetches.
    """

    def __init__(
        self, spec: HubSpec, token: str | None, config: StreamConfig | None = None
    ) -> None:
        api_url = spec.url.partition("/hubs/")[0]
        self.client = TradingClient.for_simulator(api_url, DEFAULT_USERNAME, DEFAULT_API_KEY)
        self.stream = self.client.stream(config=config)
        self.hub = spec.name
        self.events: list[StreamEvent] = []
        self.token_fetches = 0
        self._wanted: list[Subscription] = []
        fetch = self.client.fresh_token

        async def counted(*, force: bool = False) -> Secret:
            self.token_fetches += 1
            return await fetch(force=force)

        self.client.fresh_token = counted  # type: ignore[method-assign]

    def subscribe(self, sub: Subscription) -> None:
        """Want ``sub`` from the start (call before ``run``)."""
        if not self.stream.session.link_for(sub).name == self.hub:
            raise ValueError(f"{sub} is not served by the {self.hub} hub")
        self._wanted.append(sub)

    async def run(self) -> None:
        async with self.client, self.stream:
            await self.stream.subscribe_all(self._wanted, wait=False)
            async for event in self.stream:
                self.events.append(event)

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[StreamEvent]:
        with anyio.fail_after(timeout):
            while True:
                found = [e for e in self.events if predicate(e)]
                if found:
                    return found
                await anyio.sleep(0.01)
