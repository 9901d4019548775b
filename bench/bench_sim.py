"""How many market records per second the simulator pushes to 1 and to 20 WebSocket clients.

Each client is minimal (WebSocket + SignalR framing, records counted, not decoded), so the
numbers measure the simulator. The side-by-side ratio is what 20 clients receive together
against what one client receives alone: near 20 means fan-out is cheap, near 1 means the
simulator is the limit.
"""

from __future__ import annotations

import sys
import time

import anyio

from tradeforge_proto.core.jsoncodec import dumps, loads
from tradeforge_proto.core.operations import HttpRequest
from tradeforge_proto.http import HttpClientConnection
from tradeforge_proto.signalr import HubConnection, HubRole
from tradeforge_proto.websocket import TextReceived, WebSocketClient
from tradeforge_sim.server import SimServer
from tradeforge_sim.simulation import SimConfig

SUBSCRIBE = ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth")


async def login(sim: SimServer) -> tuple[str, list[str]]:
    stream = await anyio.connect_tcp("127.0.0.1", sim.port)
    http = HttpClientConnection(f"127.0.0.1:{sim.port}")

    async def post(path: str, body: object, token: str | None = None) -> dict[str, object]:
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
        if token:
            headers += (("Authorization", f"Bearer {token}"),)
        await stream.send(http.send_request(HttpRequest("POST", path, headers, dumps(body))))
        while (response := http.receive_data(await stream.receive())) is None:
            pass
        result: dict[str, object] = loads(response.body)
        return result

    config = sim.config
    token = str(
        (await post("/api/Auth/loginKey", {"userName": config.username, "apiKey": config.api_key}))[
            "token"
        ]
    )
    contracts = await post("/api/Contract/available", {"live": False}, token)
    await stream.aclose()
    listed: list[dict[str, object]] = contracts["contracts"]  # type: ignore[assignment]
    ids = [str(c["id"]) for c in listed]
    return token, ids


async def client(
    sim: SimServer, token: str, contracts: list[str], seconds: float, counts: list[int]
) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", sim.port)
    ws = WebSocketClient(f"127.0.0.1:{sim.port}", f"/hubs/market?access_token={token}")
    hub: HubConnection | None = None
    await stream.send(ws.data_to_send())
    records = 0
    subscribed = False
    with anyio.move_on_after(seconds):
        while True:
            for event in ws.receive_data(await stream.receive()):
                if hub is None:
                    hub = HubConnection(HubRole.CLIENT)
                    ws.send_text(hub.data_to_send())
                elif isinstance(event, TextReceived):
                    if not subscribed:
                        hub.receive(event.data)
                        for contract in contracts:
                            for method in SUBSCRIBE:
                                hub.invoke(method, contract)
                        ws.send_text(hub.data_to_send())
                        subscribed = True
                    else:
                        records += event.data.count("\x1e")
            out = ws.data_to_send()
            if out:
                await stream.send(out)
    counts.append(records)
    await stream.aclose()


async def measure(clients: int, seconds: float, rate: float) -> float:
    async with SimServer(SimConfig(rate=rate)) as sim:
        token, contracts = await login(sim)
        counts: list[int] = []
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(client, sim, token, contracts, seconds, counts)
        return sum(counts) / seconds


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 5000.0
    print(f"market rate {rate:g} updates/s per contract, {seconds:g} s per run")
    started = time.perf_counter()
    one = anyio.run(measure, 1, seconds, rate)
    twenty = anyio.run(measure, 20, seconds, rate)
    print(f"{'clients':>8} {'records/s (all clients)':>24} {'records/s per client':>22}")
    print(f"{1:>8} {one:>24,.0f} {one:>22,.0f}")
    print(f"{20:>8} {twenty:>24,.0f} {twenty / 20:>22,.0f}")
    print(f"ratio 20 clients / 1 client (aggregate) = {twenty / one:.2f}")
    print("clients run in the simulator's process and share its CPU: the simulator alone does more")
    print(f"(ran in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
